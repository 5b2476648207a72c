// A server's first flight in TLS 1.2, read off the wire: before
// ChangeCipherSpec every handshake message travels in clear (RFC 5246 §7.4),
// so the Certificate it presents and whether it sends a CertificateRequest
// (§7.4.4: it wants a client certificate) can be seen even when the
// handshake then fails, which it does when the server requires one we do not
// have. (TLS 1.3 encrypts both; there the server's certificate_required
// alert says it, see secure.ts.) Sans-IO and bounded: fed the server's bytes
// in order, it stops at the first record that is not a plaintext handshake.

import { X509Certificate } from 'node:crypto';
import { Pieces } from '../../netstack/wire';
import { CONTENT_TYPE_HANDSHAKE, HANDSHAKE_HEADER_LEN, MAX_PLAINTEXT_LEN, RECORD_HEADER_LEN } from '../tls_record';

// RFC 5246 §7.4 HandshakeType.
const HS_CERTIFICATE = 11;
const HS_CERTIFICATE_REQUEST = 13;
const HS_SERVER_HELLO_DONE = 14;
/** A first flight with a long chain is a few KB; past this the scan gives up. */
const MAX_FLIGHT_BYTES = 64 * 1024;
const MAX_CERTS = 16;

export interface ServerFlight {
  /** The server sent CertificateRequest. */
  certificateRequested: boolean;
  /** The chain from its Certificate message, leaf first (empty when none was parsed). */
  chain: X509Certificate[];
  /** ServerHelloDone was seen, or the clear part ended: nothing more to learn. */
  complete: boolean;
}

export class ServerFlightScanner {
  private readonly pending = new Pieces();
  /** Bytes `pending` needs before the next record can be read: its header, then all of it. */
  private recordWant = RECORD_HEADER_LEN;
  private readonly handshake = new Pieces();
  private messageWant = HANDSHAKE_HEADER_LEN;
  private seen = 0;
  readonly flight: ServerFlight = { certificateRequested: false, chain: [], complete: false };

  push(chunk: Buffer): ServerFlight {
    if (this.flight.complete) return this.flight;
    this.seen += chunk.length;
    if (this.seen > MAX_FLIGHT_BYTES) return this.stop();
    this.pending.push(chunk);
    while (!this.flight.complete && this.pending.length >= this.recordWant) {
      const p = this.pending.joined();
      const type = p[0];
      const len = p.readUInt16BE(3);
      if (type !== CONTENT_TYPE_HANDSHAKE || len > MAX_PLAINTEXT_LEN) return this.stop();
      this.recordWant = RECORD_HEADER_LEN + len;
      if (p.length < this.recordWant) break;
      this.handshake.push(p.subarray(RECORD_HEADER_LEN, this.recordWant));
      this.pending.skip(this.recordWant);
      this.recordWant = RECORD_HEADER_LEN;
      this.messages();
    }
    return this.flight;
  }

  private messages(): void {
    while (!this.flight.complete && this.handshake.length >= this.messageWant) {
      const h = this.handshake.joined();
      const type = h[0];
      const len = h.readUIntBE(1, 3);
      this.messageWant = HANDSHAKE_HEADER_LEN + len;
      if (h.length < this.messageWant) return;
      const body = h.subarray(HANDSHAKE_HEADER_LEN, this.messageWant);
      this.handshake.skip(this.messageWant);
      this.messageWant = HANDSHAKE_HEADER_LEN;
      if (type === HS_CERTIFICATE) this.flight.chain = parseCertificateList(body);
      else if (type === HS_CERTIFICATE_REQUEST) this.flight.certificateRequested = true;
      else if (type === HS_SERVER_HELLO_DONE) this.stop();
    }
  }

  private stop(): ServerFlight {
    this.flight.complete = true;
    return this.flight;
  }
}

/** RFC 5246 §7.4.2: certificate_list<0..2^24-1>, each ASN.1Cert<1..2^24-1>; a malformed list yields what parsed before it. */
function parseCertificateList(body: Buffer): X509Certificate[] {
  const out: X509Certificate[] = [];
  if (body.length < 3) return out;
  const end = Math.min(body.length, 3 + body.readUIntBE(0, 3));
  for (let p = 3; p + 3 <= end && out.length < MAX_CERTS; ) {
    const len = body.readUIntBE(p, 3);
    p += 3;
    if (len === 0 || p + len > end) break;
    try {
      out.push(new X509Certificate(body.subarray(p, p + len)));
    } catch {
      break;
    }
    p += len;
  }
  return out;
}
