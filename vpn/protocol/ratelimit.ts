// Handshake messages per source address while under load (wireguard-go's
// ratelimiter). A cookie (mac2, §5.3) proves that a sender owns its source
// address, not that it is honest: one address flooding initiations with valid
// cookies would still buy a Diffie-Hellman per message and keep every other
// peer under load. Under load each source gets HANDSHAKE_BURST messages,
// refilled at HANDSHAKES_PER_SECOND. Sans-IO: time is passed in.
import { fixedIpv4Form } from '../../netstack/wire';
import { endpointAddress, type Endpoint } from './endpoint';

export const HANDSHAKES_PER_SECOND = 20;
export const HANDSHAKE_BURST = 5;
/** Sources tracked at most: past it, those idle are swept, and a new source waits while none is. */
export const MAX_TRACKED_SOURCES = 65_536;
/** A bucket untouched this long is full again, so it is dropped. */
const IDLE_MS = (HANDSHAKE_BURST * 1000) / HANDSHAKES_PER_SECOND;

interface Bucket {
  tokens: number;
  at: number;
}

export class HandshakeRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private sweptAt = -Infinity;

  /** Whether one more handshake message from `source` (sourceKey()) is taken now. */
  allow(source: string, now: number): boolean {
    if (now - this.sweptAt >= IDLE_MS) this.sweep(now);
    let b = this.buckets.get(source);
    if (b === undefined) {
      if (this.buckets.size >= MAX_TRACKED_SOURCES) {
        this.sweep(now);
        if (this.buckets.size >= MAX_TRACKED_SOURCES) return false;
      }
      b = { tokens: HANDSHAKE_BURST, at: now };
      this.buckets.set(source, b);
    } else {
      b.tokens = Math.min(HANDSHAKE_BURST, b.tokens + ((now - b.at) * HANDSHAKES_PER_SECOND) / 1000);
      b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  get tracked(): number {
    return this.buckets.size;
  }

  private sweep(now: number): void {
    this.sweptAt = now;
    for (const [key, b] of this.buckets) if (now - b.at >= IDLE_MS) this.buckets.delete(key);
  }
}

/**
 * What a source is limited by: its IPv4 address (also when the socket reports
 * it IPv4-mapped), or its IPv6 /64, which one host usually holds whole.
 */
export function sourceKey(e: Endpoint): string {
  const ip = endpointAddress(e);
  if (ip === null) return e.address;
  const b = ip.bytes;
  if (ip.family === 4) return b.toString('hex');
  return fixedIpv4Form(b, 0) === 'ipv4_mapped' ? b.toString('hex', 12) : b.toString('hex', 0, 8);
}
