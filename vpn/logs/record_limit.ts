// Records a user can cause as fast as the tunnel carries packets (refused
// destinations, blocked flows) are rate-limited per user with a token bucket;
// what a bucket suppresses is counted and named in that user's next record,
// so a flood costs a few log lines, never the disk. The DNS forwarder meters
// each user's queries with the same bucket (dns/forwarder.ts).

/** Records per second per user, and the burst allowed after a quiet spell. */
export const RECORDS_PER_SECOND = 10;
export const RECORDS_BURST = 20;
/** Users with a bucket; beyond this the idlest are forgotten (a forgotten bucket starts full). */
const MAX_USERS = 100_000;

interface Bucket {
  tokens: number;
  at: number;
  suppressed: number;
}

export class PerUserRecordLimit {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    /** Monotonic ms. */
    private readonly now: () => number,
    private readonly perSecond = RECORDS_PER_SECOND,
    private readonly burst = RECORDS_BURST,
  ) {}

  /**
   * null when the user's bucket is empty (the record is suppressed and
   * counted); else how many were suppressed since the last record (0 or more).
   */
  take(user: string): number | null {
    const b = this.bucket(user);
    if (b.tokens < 1) {
      b.suppressed++;
      return null;
    }
    b.tokens -= 1;
    const suppressed = b.suppressed;
    b.suppressed = 0;
    return suppressed;
  }

  private bucket(user: string): Bucket {
    const now = this.now();
    let b = this.buckets.get(user);
    if (b === undefined) {
      b = { tokens: this.burst, at: now, suppressed: 0 };
      if (this.buckets.size >= MAX_USERS) this.buckets.delete(this.buckets.keys().next().value as string);
    } else {
      this.buckets.delete(user);
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
      b.at = now;
    }
    this.buckets.set(user, b);
    return b;
  }
}
