// The one clock of the data path: monotonic milliseconds. Layers are passed
// `now`; only edges read a clock, where something arrives from the outside
// (a datagram, a timer, an upstream socket's data), and tests give them a
// fake one.
import { performance } from 'node:perf_hooks';

export type Clock = () => number;

export const monotonicNow: Clock = () => performance.now();
