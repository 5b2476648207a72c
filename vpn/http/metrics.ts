// Prometheus metrics (prom-client), every name prefixed sightline_. Values
// are read from the layers' own counters when Prometheus scrapes, so the
// packet path pays nothing for them. Node's default process metrics come
// with the same prefix (event-loop lag: sightline_nodejs_eventloop_lag_seconds).
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Action } from './decisions';

/** A decision's label in sightline_flows_total: the policy's own action words (policy.rules[].action), as `policy explain` prints them. */
const POLICY_ACTION: Record<Action, 'inspect' | 'bypass' | 'allow' | 'block'> = {
  inspected: 'inspect',
  'not decrypted': 'bypass',
  passed: 'allow',
  blocked: 'block',
};

/** What the metrics read; the concentrator provides it. */
export interface MetricsSource {
  peersConfigured(): number;
  peersConnected(): number;
  /** Counters of the layers, as in status.json. */
  wireguardCounters(): Record<string, number>;
  tunnelCounters(): Record<string, number>;
  stackCounters(): Record<string, number>;
  dnsCounters(): Record<string, number>;
  /** WireGuard messages' bytes received and sent on the UDP socket. */
  bytes(): { in: number; out: number };
  tcpFlowsOpen(): number;
  flowsByAction(): Record<Action, number>;
  certificateCache(): { size: number; hits: number; misses: number };
  /** Drops the WireGuard device reported, by reason. */
  wireguardDrops(): Record<string, number>;
  logs(): { written: number; dropped: number; errors: number };
}

/** Stack counters that are drops without the drop_ prefix. */
const STACK_DROPS = new Set(['tcp_flow_limit', 'tcp_syn_rate_limit', 'tcp_no_handler', 'udp_flow_limit', 'udp_blocked_port']);

export function createMetrics(src: MetricsSource): Registry {
  const registry = new Registry();
  const gauge = (name: string, help: string, read: () => number): void => {
    new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
  };
  const counter = <L extends string>(name: string, help: string, labelNames: L[], read: () => Array<[Record<L, string>, number]>): void => {
    new Counter({
      name, help, labelNames, registers: [registry],
      collect() {
        this.reset();
        for (const [labels, v] of read()) this.inc(labels, Math.max(0, v));
      },
    });
  };

  gauge('sightline_peers_configured', 'Devices known to the concentrator (active, disabled and expired)', () => src.peersConfigured());
  gauge('sightline_peers_connected', 'Devices with a live WireGuard session', () => src.peersConnected());
  counter('sightline_handshakes_total', 'WireGuard handshakes completed', [], () => [[{}, src.wireguardCounters().handshake_complete ?? 0]]);
  counter('sightline_bytes_total', 'WireGuard bytes on the UDP socket, by direction (in: from devices)', ['direction'], () => {
    const b = src.bytes();
    return [[{ direction: 'in' }, b.in], [{ direction: 'out' }, b.out]];
  });
  gauge('sightline_tcp_flows_open', 'TCP flows terminated in the userspace stack right now', () => src.tcpFlowsOpen());
  counter('sightline_flows_total', "Flows by the policy's action that was carried out: inspect, bypass (not decrypted), allow (passed as is), block", ['action'], () =>
    Object.entries(src.flowsByAction()).map(([done, v]) => [{ action: POLICY_ACTION[done as Action] }, v]));
  counter('sightline_drops_total', 'Packets and flows dropped, by layer and reason', ['layer', 'reason'], () => drops(src));
  gauge('sightline_certificate_cache_size', 'Minted leaf certificates cached', () => src.certificateCache().size);
  counter('sightline_certificate_cache_lookups_total', 'Leaf certificate lookups, by result (hit: served from the cache)', ['result'], () => {
    const c = src.certificateCache();
    return [[{ result: 'hit' }, c.hits], [{ result: 'miss' }, c.misses]];
  });
  gauge('sightline_certificate_cache_hit_ratio', 'Share of leaf lookups served from the cache since start (0 when none)', () => {
    const c = src.certificateCache();
    return c.hits + c.misses === 0 ? 0 : c.hits / (c.hits + c.misses);
  });
  counter('sightline_dns_queries_total', 'DNS queries from devices to the concentrator, by outcome', ['outcome'], () => {
    const d = src.dnsCounters();
    return [[{ outcome: 'received' }, d.queries ?? 0], [{ outcome: 'answered' }, d.answers ?? 0], [{ outcome: 'upstream_timeout' }, d.timeouts ?? 0], [{ outcome: 'malformed' }, d.malformed ?? 0]];
  });
  counter('sightline_log_records_total', 'Per-user log records, by outcome', ['outcome'], () => {
    const l = src.logs();
    return [[{ outcome: 'written' }, l.written], [{ outcome: 'dropped' }, l.dropped], [{ outcome: 'error' }, l.errors]];
  });
  collectDefaultMetrics({ register: registry, prefix: 'sightline_' });
  return registry;
}

function drops(src: MetricsSource): Array<[{ layer: string; reason: string }, number]> {
  const out: Array<[{ layer: string; reason: string }, number]> = [];
  for (const [reason, v] of Object.entries(src.wireguardDrops())) out.push([{ layer: 'wireguard', reason }, v]);
  for (const [reason, v] of Object.entries(src.tunnelCounters())) out.push([{ layer: 'tunnel', reason }, v]);
  for (const [key, v] of Object.entries(src.stackCounters())) {
    if (key.startsWith('drop_')) out.push([{ layer: 'stack', reason: key.slice(5) }, v]);
    else if (STACK_DROPS.has(key)) out.push([{ layer: 'stack', reason: key }, v]);
  }
  return out;
}
