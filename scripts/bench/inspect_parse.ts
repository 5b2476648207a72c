// Reading inspect_client's JSON lines into measurements. The probe decides
// whether a pipeline inspects at all: a certificate that does not chain to
// the pipeline's own CA means the flow was passed through (or broken), and
// every number measured on it would describe something else.
import type { Measured } from './tunnel_parse';

export interface ProbeResult {
  inspected: boolean;
  /** Why not, for the row's unit; empty when inspected. */
  reason: string;
}

interface ProbeJson {
  ok?: boolean;
  error?: string;
  status?: number;
  authorized?: boolean;
  authorizationError?: string | null;
  issuer?: string;
}

export function parseProbe(stdout: string, originIssuer: string): ProbeResult {
  const p = parseJson<ProbeJson>(stdout);
  if (p === null) return { inspected: false, reason: `probe printed no JSON: ${stdout.trim().slice(0, 120) || '(empty)'}` };
  if (p.ok !== true) return { inspected: false, reason: `not inspected: TLS through the pipeline failed (${p.error ?? 'unknown error'})` };
  if (p.authorized !== true) {
    const whose = p.issuer === originIssuer ? ", the origin's: passed through" : '';
    return { inspected: false, reason: `not inspected: the client saw a certificate issued by ${p.issuer ?? '?'} (${p.authorizationError ?? 'not trusted'}${whose})` };
  }
  if (p.status !== 200) return { inspected: false, reason: `inspected, but the tiny response came back with HTTP ${p.status ?? '?'}` };
  return { inspected: true, reason: '' };
}

interface ConnsJson {
  done?: number;
  failed?: number;
  ms?: number;
  firstError?: string | null;
  error?: string;
}

/** Completed fresh connections per second; failures are noted, a run with none done is a failure. */
export function connsPerSecond(stdout: string): Measured {
  const c = parseJson<ConnsJson>(stdout);
  if (c === null) return { ok: false, reason: `client printed no JSON: ${stdout.trim().slice(0, 120) || '(empty)'}` };
  if (c.error !== undefined) return { ok: false, reason: c.error };
  const done = c.done ?? 0;
  const ms = c.ms ?? 0;
  if (done === 0 || !(ms > 0)) return { ok: false, reason: `no request completed${c.firstError ? ` (${c.firstError})` : ''}` };
  const failed = c.failed ?? 0;
  const note = `${done} in ${(ms / 1000).toFixed(1)} s${failed > 0 ? `, ${failed} failed: ${c.firstError ?? '?'}` : ''}`;
  return { ok: true, value: (done * 1000) / ms, note };
}

interface FirstJson {
  samples?: Array<{ name: string; firstMs: number; warmMs: number[] }>;
  firstError?: string | null;
  error?: string;
}

/**
 * What a first visit adds, over the client's outputs of every batch: per
 * name, the first request's time to response headers minus the faster of two
 * repeats (same name, fresh connection, leaf cached); the median over names.
 * Taking the faster repeat errs toward a larger added latency, never a
 * smaller one.
 */
export function firstVisitExtraMs(outputs: string[]): Measured {
  const extras: number[] = [];
  let firstError: string | null = null;
  for (const stdout of outputs) {
    const f = parseJson<FirstJson>(stdout);
    if (f === null) return { ok: false, reason: `client printed no JSON: ${stdout.trim().slice(0, 120) || '(empty)'}` };
    if (f.error !== undefined) return { ok: false, reason: f.error };
    for (const s of f.samples ?? []) if (s.warmMs.length > 0) extras.push(s.firstMs - Math.min(...s.warmMs));
    firstError ??= f.firstError ?? null;
  }
  if (extras.length === 0) return { ok: false, reason: `no name answered${firstError ? ` (${firstError})` : ''}` };
  return { ok: true, value: median(extras), note: `median of ${extras.length} names` };
}

/**
 * A pipeline that moves within this fraction of the uninspected rate through
 * the same tunnel is limited by the tunnel (wireguard-go, CPU), not by its
 * proxy: its ratio to another pipeline says little about either proxy.
 */
export const TUNNEL_BOUND_FRACTION = 0.85;

/** Adds a "tunnel-bound" note to an inspected rate close to the uninspected one. */
export function markTunnelBound(m: Measured, uninspected: Measured): Measured {
  if (!m.ok || !uninspected.ok || m.value < TUNNEL_BOUND_FRACTION * uninspected.value) return m;
  const note = `tunnel-bound: ${Math.round((m.value / uninspected.value) * 100)}% of the uninspected rate`;
  return { ...m, note: m.note ? `${m.note}; ${note}` : note };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function parseJson<T>(stdout: string): T | null {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    const v = JSON.parse(line) as unknown;
    return typeof v === 'object' && v !== null ? (v as T) : null;
  } catch {
    return null;
  }
}
