// The admin configuration (sightline.yaml). Keys are camelCase and stable:
// later versions add keys; none is renamed without a migration.
import { z } from 'zod';
import { isIP } from 'node:net';
import { groupsSchema, policySchema, refinePolicyReferences, routingSchema } from '../../policy';
import { totalmem } from 'node:os';
import { tunNameProblem, TUN_NAME_MAX_BYTES } from '../../netstack/tun';
import { IpAddress, IpCidr } from '../../netstack/wire';

const CIDR_EXAMPLE = { 4: 'an IPv4 prefix like 10.77.0.0/16', 6: 'an IPv6 prefix like fd00:1234:5678::/64', any: 'an IPv4 or IPv6 prefix like 10.20.0.0/16 or fd00::/8' };

/** "ADDR/LEN" of the given family ('any': either), checked by IpCidr, the parser that reads it at startup. */
const cidr = (family: 4 | 6 | 'any') =>
  z.string().refine((s) => {
    if (!s.includes('/')) return false;
    try {
      const found = IpCidr.parse(s).family;
      return family === 'any' || found === family;
    } catch {
      return false;
    }
  }, { message: CIDR_EXAMPLE[family] });

/**
 * An egress.allow / egress.deny entry: a prefix without host bits. 10.20.1.0/16
 * is a typo for /24 or for 10.20.0.0 (the refusal would silently cover the
 * wider one), refused as policy.rules[].dst and routing.exclude refuse it.
 */
const egressPrefix = cidr('any').superRefine((s, ctx) => {
  let c: IpCidr;
  try {
    c = IpCidr.parse(s);
  } catch {
    return; // not a prefix at all: cidr's own message says what is expected
  }
  if (!c.network.equals(c.address)) {
    ctx.addIssue({ code: 'custom', message: `a prefix without host bits (${c.network.toString()}/${c.prefixLength}, or a longer prefix length)` });
  }
});

const hostPort = z.string().refine((s) => parseHostPort(s) !== null, {
  message: 'HOST:PORT (IPv6 as [ADDR]:PORT)',
});

const dnsServer = z.string().refine((s) => isIP(s) !== 0 || parseHostPort(s, true) !== null, {
  message: 'an IP address, or IP:PORT ([IPv6]:PORT)',
});

const port = z.number().int().min(1).max(65535);
const MiB = 1024 * 1024;

const TUN_NAME_RULE = `an interface name of 1-${TUN_NAME_MAX_BYTES} bytes: letters, digits, '_', '.' and '-' (not first)`;

const PINNING_BYPASS_MIGRATION = 'tls.pinning.mode instead: tls.pinning.bypass was replaced by it '
  + '(`bypass: true` is `mode: learn`, the default; `bypass: false` is closest to `mode: approve`, where learned hosts wait for '
  + '`sightline pinned approve`; `mode: off` never learns); remove the bypass key';

export const configSchema = z
  .object({
    listenPort: port.default(51820),
    listenAddress: z.string().refine((s) => IpAddress.tryParse(s) !== null, { message: 'an IP address' }).optional(),
    endpoint: hostPort.optional(),
    mtu: z.number().int().min(1280).max(9000).default(1420),
    tunnel: z
      .object({
        ipv4Pool: cidr(4).default('10.77.0.0/16'),
        ipv6Pool: cidr(6).optional(),
      })
      .strict()
      .prefault({}),
    dns: z
      .object({
        upstream: z.array(dnsServer).min(1).optional(),
        // Queries waiting for an upstream answer; beyond either cap: SERVFAIL at once.
        maxInFlightPerUser: z.number().int().min(1).max(16_384).default(64),
        maxInFlight: z.number().int().min(1).max(16_384).default(4096),
        // Queries per user: a bucket of queryBurstPerUser refilled at maxQueriesPerSecondPerUser;
        // beyond it: REFUSED, not recorded one by one.
        maxQueriesPerSecondPerUser: z.number().int().min(1).max(100_000).default(20),
        queryBurstPerUser: z.number().int().min(1).max(1_000_000).default(1000),
      })
      .strict()
      .prefault({}),
    udp: z
      .object({
        idleTimeoutSeconds: z.number().int().min(1).max(3600).default(60),
        maxFlowsPerUser: z.number().int().min(1).max(1_000_000).default(1024),
      })
      .strict()
      .prefault({}),
    tcp: z
      .object({
        idleTimeoutSeconds: z.number().int().min(10).max(86_400 * 5).default(3600),
        maxFlowsPerUser: z.number().int().min(1).max(1_000_000).default(4096),
        maxSynPerSecond: z.number().int().min(1).max(1_000_000).default(200),
      })
      .strict()
      .prefault({}),
    tls: z
      .object({
        inspectPorts: z.array(port).default([443]),
        upstreamCaFile: z.string().min(1).optional(),
        onUpstreamError: z.enum(['block', 'untrusted-ca']).default('block'),
        revocation: z.enum(['soft', 'hard', 'off']).default('soft'),
        pinning: z
          .object({
            mode: z.enum(['learn', 'approve', 'off']).default('learn'),
            threshold: z.number().int().min(1).max(1000).default(3),
            windowSeconds: z.number().int().min(1).max(86_400).default(300),
            // Replaced by `mode`; named in the error so an old config says how to migrate.
            bypass: z.unknown().optional().refine((v) => v === undefined, { message: PINNING_BYPASS_MIGRATION }).transform(() => undefined),
            bypassSeconds: z.number().int().min(60).max(86_400 * 90).default(43_200),
          })
          .strict()
          .prefault({}),
        nonTls: z.enum(['block', 'allow']).default('block'),
        blockQuic: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    egress: z
      .object({
        deny: z.array(egressPrefix).default([]),
        allow: z.array(egressPrefix).default([]),
        // Routed mode (issue 11): packets not terminated here go to a TUN and the kernel routes them.
        mode: z.enum(['socket', 'routed']).default('socket'),
        tun: z
          .object({
            name: z.string().refine((s) => tunNameProblem(s) === null, { message: TUN_NAME_RULE }).default('sightline0'),
          })
          .strict()
          .prefault({}),
        nat: z.enum(['masquerade', 'none']).default('masquerade'),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        // What one user's flows may buffer (TCP queues, reassembly, UDP and DNS waiting to leave).
        maxBufferedBytesPerUser: z.number().int().min(256 * 1024).max(2 ** 40).default(64 * MiB),
        // What all flows together may buffer: a quarter of the host's memory, at most 4 GiB, by default.
        maxBufferedBytes: z.number().int().min(MiB).max(2 ** 44).default(() => Math.min(4096 * MiB, Math.floor(totalmem() / 4))),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
        // Per-user tunnel logs (vpn/logs): rotated by size and at each UTC day, deleted after retentionDays.
        rotate: z
          .object({ maxBytes: z.number().int().min(4096).max(2 ** 40).default(64 * 1024 * 1024) })
          .strict()
          .prefault({}),
        retentionDays: z.number().int().min(1).max(3650).default(30),
      })
      .strict()
      .prefault({}),
    admin: z
      .object({
        // /metrics and /healthz (vpn/http); loopback unless an admin configures otherwise.
        listen: z.string().refine((s) => s === 'off' || parseHostPort(s, true) !== null, {
          message: 'IP:PORT (IPv6 as [ADDR]:PORT), e.g. 127.0.0.1:9810, or "off"',
        }).default('127.0.0.1:9810'),
      })
      .strict()
      .prefault({}),
    // Who may reach what, inspected or not, and what stays out of the tunnel (policy/).
    groups: groupsSchema,
    policy: policySchema,
    routing: routingSchema,
  })
  .strict()
  .superRefine(refinePolicyReferences);

export type Config = z.infer<typeof configSchema>;

/** "host:port" or "[v6]:port"; with ipOnly the host must be an IP literal. */
export function parseHostPort(s: string, ipOnly = false): { host: string; port: number } | null {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:[\]]+):(\d+)$/.exec(s);
  if (!m) return null;
  const p = Number(m[2]);
  if (!Number.isInteger(p) || p < 1 || p > 65535) return null;
  if (m[0].startsWith('[') && isIP(m[1]) !== 6) return null;
  if (ipOnly && isIP(m[1]) === 0) return null;
  return { host: m[1], port: p };
}
