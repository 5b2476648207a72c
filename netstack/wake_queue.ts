// A min-heap of (time, item) for timer deadlines. Entries are never removed
// in place: a caller that reschedules pushes again and ignores stale pops.
export class WakeQueue<T> {
  private readonly times: number[] = [];
  private readonly items: T[] = [];

  push(time: number, item: T): void {
    const { times, items } = this;
    let i = times.length;
    times.push(time);
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (times[parent] <= time) break;
      times[i] = times[parent];
      items[i] = items[parent];
      i = parent;
    }
    times[i] = time;
    items[i] = item;
  }

  peekTime(): number | null {
    return this.times.length > 0 ? this.times[0] : null;
  }

  popDue(now: number): { time: number; item: T } | null {
    const { times, items } = this;
    if (times.length === 0 || times[0] > now) return null;
    const top = { time: times[0], item: items[0] };
    const lastTime = times.pop() as number;
    const lastItem = items.pop() as T;
    const n = times.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && times[r] < times[l] ? r : l;
        if (times[c] >= lastTime) break;
        times[i] = times[c];
        items[i] = items[c];
        i = c;
      }
      times[i] = lastTime;
      items[i] = lastItem;
    }
    return top;
  }

  get size(): number {
    return this.times.length;
  }
}
