// /metrics and /healthz of a running concentrator (in this process, on
// loopback): the metrics parse as strict Prometheus text with the names the
// README lists, the health check says whether the WireGuard socket is up,
// and admin.listen is validated.
import { createServer } from 'node:net';
import { request } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { Concentrator } from '../../../../vpn/concentrator';
import { parseConfigText } from '../../../../vpn/config';
import { provisionDevice } from '../../../../vpn/control';
import { openDeployment } from '../../../../vpn/control';
import { parsePrometheusText } from '../../../helpers/prom_text';
import { removeTempDirs, tempDir } from '../../mitm/ca_helpers';

jest.setTimeout(30_000);
afterAll(removeTempDirs);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function startConcentrator(adminPort: number): Promise<Concentrator> {
  const dataDir = tempDir('sightline-admin-');
  const udp = await freePort();
  writeFileSync(join(dataDir, 'sightline.yaml'), `listenPort: ${udp}\nlistenAddress: 127.0.0.1\ndns:\n  upstream: ["127.0.0.1:9"]\nadmin:\n  listen: 127.0.0.1:${adminPort}\n`);
  const d = openDeployment({ dataDir });
  provisionDevice(d, { user: 'alice', device: 'laptop', endpoint: `127.0.0.1:${udp}` });
  return Concentrator.start(d, pino({ level: 'silent' }));
}

describe('a running concentrator', () => {
  let c: Concentrator;
  let port: number;
  beforeAll(async () => {
    port = await freePort();
    c = await startConcentrator(port);
  });
  afterAll(async () => {
    await c?.stop();
  });

  test('/metrics is strict Prometheus text with the sightline_ metrics', async () => {
    const res = await get(port, '/metrics');
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = parsePrometheusText(res.body);
    expect(m.value('sightline_peers_configured')).toBe(1);
    expect(m.value('sightline_peers_connected')).toBe(0);
    for (const [name, type] of [
      ['sightline_handshakes_total', 'counter'], ['sightline_bytes_total', 'counter'], ['sightline_flows_total', 'counter'],
      ['sightline_drops_total', 'counter'], ['sightline_certificate_cache_size', 'gauge'], ['sightline_certificate_cache_hit_ratio', 'gauge'],
      ['sightline_certificate_cache_lookups_total', 'counter'], ['sightline_dns_queries_total', 'counter'], ['sightline_nodejs_eventloop_lag_seconds', 'gauge'],
      ['sightline_log_records_total', 'counter'], ['sightline_tcp_flows_open', 'gauge'],
    ]) expect([name, m.types.get(name)]).toEqual([name, type]);
    expect([...m.types.keys()].filter((n) => !n.startsWith('sightline_'))).toEqual([]);
  });

  test("sightline_flows_total counts flows by the policy's action words, each shown from zero", async () => {
    const m = parsePrometheusText((await get(port, '/metrics')).body);
    const actions = m.samples.filter((s) => s.name === 'sightline_flows_total').map((s) => s.labels.action).sort();
    expect(actions).toEqual(['allow', 'block', 'bypass', 'inspect']);
    for (const action of actions) expect(m.value('sightline_flows_total', { action })).toBe(0);
  });

  test('/healthz answers 200 with a small JSON while the WireGuard socket is open', async () => {
    const res = await get(port, '/healthz');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ status: 'ok', up: true, peers: 1, connected: 0, listenPort: c.listenPort });
  });

  test('anything but GET/HEAD of the two paths is refused', async () => {
    expect((await get(port, '/metrics', 'POST')).status).toBe(405);
    expect((await get(port, '/', 'GET')).status).toBe(404);
    expect((await get(port, '/healthz', 'HEAD')).status).toBe(200);
  });
});

test('/healthz answers 503 once the WireGuard socket is closed', async () => {
  const port = await freePort();
  const c = await startConcentrator(port);
  // As during shutdown: the socket closes first, the admin endpoint last.
  await (c as unknown as { edge: { close(): Promise<void> } }).edge.close();
  (c as unknown as { edge: null }).edge = null;
  const res = await get(port, '/healthz');
  expect(res.status).toBe(503);
  expect(JSON.parse(res.body)).toMatchObject({ status: 'unavailable', up: false });
  await c.stop();
});

test('a concentrator whose admin.listen is taken does not start, and says which key to change', async () => {
  const blocker = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => blocker.once('listening', r));
  const port = (blocker.address() as { port: number }).port;
  await expect(startConcentrator(port)).rejects.toThrow(`admin.listen 127.0.0.1:${port} is already in use: set admin.listen`);
  blocker.close();
});

describe('admin.listen in the config', () => {
  test('defaults to loopback port 9810', () => {
    expect(parseConfigText('', 'f.yaml').admin.listen).toBe('127.0.0.1:9810');
  });

  test.each(['0.0.0.0:9810', '[::1]:9900', 'off'])('%s is accepted (an admin chose it)', (v) => {
    expect(parseConfigText(`admin:\n  listen: "${v}"\n`, 'f.yaml').admin.listen).toBe(v);
  });

  test.each(['localhost:9810', '127.0.0.1', '127.0.0.1:0', ':9810', '[::1]9810'])('%j is refused with the expected form', (v) => {
    expect(() => parseConfigText(`admin:\n  listen: "${v}"\n`, 'sightline.yaml')).toThrow(/sightline\.yaml:2:\d+: admin\.listen: expected IP:PORT .*"off"/);
  });
});

describe('log rotation keys in the config', () => {
  test('default to 64 MiB and 30 days', () => {
    expect(parseConfigText('', 'f.yaml').log).toMatchObject({ rotate: { maxBytes: 64 * 1024 * 1024 }, retentionDays: 30 });
  });

  test('out-of-range values are refused with file, line and key', () => {
    expect(() => parseConfigText('log:\n  rotate:\n    maxBytes: 100\n', 'sightline.yaml')).toThrow(/sightline\.yaml:3:\d+: log\.rotate\.maxBytes: .*4096/);
    expect(() => parseConfigText('log:\n  retentionDays: 0\n', 'sightline.yaml')).toThrow(/sightline\.yaml:2:\d+: log\.retentionDays: /);
  });
});
