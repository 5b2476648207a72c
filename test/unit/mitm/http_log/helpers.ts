// Shared drivers for the HTTP log tests: replay a recorded exchange (a list
// of chunks with their direction) into a parser, whole or re-split.
import type { RelayTap } from '../../../../netstack';
import { HttpRequestRecord } from '../../../../mitm/http_log/record';

export type Dir = 'c2s' | 's2c';
export interface Event {
  dir: Dir;
  data: Buffer;
}

export const c2s = (s: string | Buffer): Event => ({ dir: 'c2s', data: typeof s === 'string' ? Buffer.from(s, 'latin1') : s });
export const s2c = (s: string | Buffer): Event => ({ dir: 's2c', data: typeof s === 'string' ? Buffer.from(s, 'latin1') : s });

export type Factory = (emit: (r: HttpRequestRecord) => void) => RelayTap;

export function replay(make: Factory, events: Event[], end = true): HttpRequestRecord[] {
  const out: HttpRequestRecord[] = [];
  const p = make((r) => out.push(r));
  for (const e of events) {
    if (e.dir === 'c2s') p.clientToServer(e.data);
    else p.serverToClient(e.data);
  }
  if (end) p.end();
  return out;
}

/** Every variant of `events` with one event split in two at one byte boundary. */
export function* splitsAtEveryBoundary(events: Event[]): Generator<Event[]> {
  for (let i = 0; i < events.length; i++) {
    const d = events[i].data;
    for (let k = 1; k < d.length; k++) {
      yield [
        ...events.slice(0, i),
        { dir: events[i].dir, data: d.subarray(0, k) },
        { dir: events[i].dir, data: d.subarray(k) },
        ...events.slice(i + 1),
      ];
    }
  }
}

/** The exchange fed one byte at a time. */
export function byteByByte(events: Event[]): Event[] {
  const out: Event[] = [];
  for (const e of events) for (let i = 0; i < e.data.length; i++) out.push({ dir: e.dir, data: e.data.subarray(i, i + 1) });
  return out;
}
