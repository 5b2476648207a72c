// FirstBytesReader over a flow's two streams, for callers that only want the
// verdict (vpn/flow_policy reads a name before deciding whether the engine
// takes the flow). The engine itself feeds the reader through its adapter.

import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ClientHelloReader } from '../client_hello';
import { type FirstBytes, type FirstBytesStep, FirstBytesReader, GUESS_WAIT_MS } from './first_bytes';

/** Reads both sides until the first bytes decide, a side ends, or `timeoutMs` passes; both streams are left paused. */
export function readFirstBytes(client: Duplex, upstream: Socket, reader: ClientHelloReader, timeoutMs: number): Promise<FirstBytes> {
  const first = new FirstBytesReader(reader);
  return new Promise((resolve) => {
    let guessTimer: NodeJS.Timeout | undefined;
    let settled = false;
    const step = (s: FirstBytesStep): void => {
      if (s === null || settled) return;
      if (s === 'wait_guess') {
        guessTimer = setTimeout(() => step(first.guessWaitOver()), GUESS_WAIT_MS);
        return;
      }
      settled = true;
      // pause() before removing the listener: a flowing stream without 'data' listeners drops bytes.
      client.pause();
      upstream.pause();
      client.off('data', onClientData);
      client.off('end', onClientEnd);
      client.off('close', onClientClose);
      upstream.off('data', onServerData);
      upstream.off('end', onServerEnd);
      clearTimeout(timer);
      clearTimeout(guessTimer);
      resolve(s);
    };
    const onClientData = (chunk: Buffer): void => step(first.clientData(chunk));
    const onClientEnd = (): void => step(first.clientEnd());
    const onClientClose = (): void => step(first.clientClose());
    const onServerData = (chunk: Buffer): void => step(first.serverData(chunk));
    const onServerEnd = (): void => step(first.serverEnd());
    const timer = setTimeout(() => step(first.deadline(timeoutMs)), timeoutMs);
    client.on('data', onClientData);
    client.once('end', onClientEnd);
    client.once('close', onClientClose);
    upstream.on('data', onServerData);
    upstream.once('end', onServerEnd);
    // A stream already gone emits nothing more.
    if (client.destroyed || client.readableEnded) onClientClose();
  });
}
