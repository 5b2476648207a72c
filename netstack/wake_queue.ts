// A min-heap of timer deadlines where every item sits at most once and knows
// its own slot, so a reschedule moves it and a removal takes it out, both in
// O(log n). A heap that only ever pushed (and skipped stale pops) kept one
// entry per reschedule: with a TCP idle timeout of an hour and a reschedule on
// every received segment, that is one dead entry per segment for an hour.

/** What the queue stores on each item: its deadline and its slot (-1 = not queued). */
export interface Wakeable {
  wakeAt: number;
  wakeIndex: number;
}

export class WakeQueue<T extends Wakeable> {
  private readonly heap: T[] = [];

  /** Queues `item` for `time`, or moves it there if it is queued already. */
  schedule(item: T, time: number): void {
    if (item.wakeIndex < 0) {
      item.wakeAt = time;
      item.wakeIndex = this.heap.length;
      this.heap.push(item);
      this.up(item.wakeIndex);
      return;
    }
    const before = item.wakeAt;
    item.wakeAt = time;
    if (time < before) this.up(item.wakeIndex);
    else if (time > before) this.down(item.wakeIndex);
  }

  /** Takes `item` out of the queue; nothing when it is not queued. */
  cancel(item: T): void {
    const i = item.wakeIndex;
    if (i < 0) return;
    const last = this.heap.pop() as T;
    item.wakeIndex = -1;
    item.wakeAt = Infinity;
    if (last === item) return;
    this.heap[i] = last;
    last.wakeIndex = i;
    this.up(i);
    this.down(last.wakeIndex);
  }

  peekTime(): number | null {
    return this.heap.length > 0 ? this.heap[0].wakeAt : null;
  }

  /** Removes and returns the earliest item if its deadline is at or before `now`. */
  popDue(now: number): T | null {
    const top = this.heap[0];
    if (top === undefined || top.wakeAt > now) return null;
    this.cancel(top);
    return top;
  }

  get size(): number {
    return this.heap.length;
  }

  private up(i: number): void {
    const { heap } = this;
    const item = heap[i];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent];
      if (p.wakeAt <= item.wakeAt) break;
      heap[i] = p;
      p.wakeIndex = i;
      i = parent;
    }
    heap[i] = item;
    item.wakeIndex = i;
  }

  private down(i: number): void {
    const { heap } = this;
    const n = heap.length;
    const item = heap[i];
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && heap[r].wakeAt < heap[l].wakeAt ? r : l;
      const child = heap[c];
      if (child.wakeAt >= item.wakeAt) break;
      heap[i] = child;
      child.wakeIndex = i;
      i = c;
    }
    heap[i] = item;
    item.wakeIndex = i;
  }
}
