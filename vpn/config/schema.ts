// The admin configuration (sightline.yaml). Keys are camelCase and stable:
// later versions add keys; none is renamed without a migration.
import { z } from 'zod';
import { isIP } from 'node:net';
import { totalmem } from 'node:os';

const cidr = (family: 4 | 6) =>
  z.string().refine((s) => {
    const [addr, len, extra] = s.split('/');
    if (extra !== undefined || len === undefined || !/^\d+$/.test(len)) return false;
    const max = family === 4 ? 32 : 128;
    return isIP(addr) === family && Number(len) <= max;
  }, { message: `an IPv${family} prefix like ${family === 4 ? '10.77.0.0/16' : 'fd00:1234:5678::/64'}` });

const hostPort = z.string().refine((s) => parseHostPort(s) !== null, {
  message: 'HOST:PORT (IPv6 as [ADDR]:PORT)',
});

const dnsServer = z.string().refine((s) => isIP(s) !== 0 || parseHostPort(s, true) !== null, {
  message: 'an IP address, or IP:PORT ([IPv6]:PORT)',
});

const port = z.number().int().min(1).max(65535);
const MiB = 1024 * 1024;

export const configSchema = z
  .object({
    listenPort: port.default(51820),
    listenAddress: z.string().refine((s) => isIP(s) !== 0, { message: 'an IP address' }).optional(),
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
            threshold: z.number().int().min(1).max(1000).default(3),
            windowSeconds: z.number().int().min(1).max(86_400).default(300),
            bypass: z.boolean().default(true),
            bypassSeconds: z.number().int().min(60).max(86_400 * 90).default(86_400),
          })
          .strict()
          .prefault({}),
        blockQuic: z.boolean().default(true),
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
      })
      .strict()
      .prefault({}),
  })
  .strict();

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
