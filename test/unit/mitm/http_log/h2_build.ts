// Builders for hand-made HTTP/2 byte streams in tests: frames (RFC 9113 §4.1)
// and HPACK blocks using literals without indexing, no Huffman (RFC 7541 §6.2.2).
import { CONNECTION_PREFACE, encodeFrame } from '../../../../mitm/http_log/h2_frames';

export const frame = encodeFrame;

function hpackInt(value: number, prefixBits: number, first: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  value -= max;
  while (value >= 128) {
    out.push((value % 128) + 128);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return Buffer.from(out);
}

function hpackString(s: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  return Buffer.concat([hpackInt(b.length, 7, 0), b]);
}

export function hpackBlock(fields: Array<[string, string]>): Buffer {
  return Buffer.concat(fields.flatMap(([n, v]) => [Buffer.from([0]), hpackString(n), hpackString(v)]));
}

export function hpackSizeUpdate(n: number): Buffer {
  return hpackInt(n, 5, 0x20);
}

export function settings(pairs: Array<[number, number]> = []): Buffer {
  const p = Buffer.alloc(pairs.length * 6);
  pairs.forEach(([id, v], i) => { p.writeUInt16BE(id, i * 6); p.writeUInt32BE(v, i * 6 + 2); });
  return frame(4, 0, 0, p);
}

export const PREFACE = CONNECTION_PREFACE;

export function u32(...vals: number[]): Buffer {
  const b = Buffer.alloc(vals.length * 4);
  vals.forEach((v, i) => b.writeUInt32BE(v >>> 0, i * 4));
  return b;
}
