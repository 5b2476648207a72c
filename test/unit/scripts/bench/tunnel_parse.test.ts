// The tunnel benchmark reads numbers out of iperf3, curl and /proc. A misread
// would print a plausible wrong throughput next to the anchor, so each rule
// that turns tool output into a number (or into "failed") is pinned here.
import { curlMbps, iperfMbps, vmRssKb } from '../../../../scripts/bench/tunnel_parse';

const MB200 = 200 * 1024 * 1024;

describe('iperfMbps', () => {
  test('reads the receiver-side rate of end.sum_received in Mbit/s', () => {
    const json = JSON.stringify({ end: { sum_sent: { bits_per_second: 9e9 }, sum_received: { bits_per_second: 812_500_000 } } });
    expect(iperfMbps(json)).toEqual({ ok: true, value: 812.5 });
  });

  test('an iperf3 error (server unreachable through the tunnel) is a failure with its message', () => {
    const r = iperfMbps(JSON.stringify({ start: {}, end: {}, error: 'unable to connect to server: Connection timed out' }));
    expect(r).toEqual({ ok: false, reason: 'iperf3: unable to connect to server: Connection timed out' });
  });

  test('output that is not JSON (iperf3 killed by the time limit) is a failure, not zero', () => {
    expect(iperfMbps('').ok).toBe(false);
  });

  test('a JSON report without a received rate is a failure', () => {
    expect(iperfMbps(JSON.stringify({ end: { sum_received: { bits_per_second: 0 } } })).ok).toBe(false);
  });
});

describe('curlMbps', () => {
  test('a complete download gives bytes * 8 / seconds in Mbit/s', () => {
    expect(curlMbps(`200 ${MB200} 0 2.000000`, MB200, 'download')).toEqual({ ok: true, value: (MB200 * 8) / 2 / 1e6 });
  });

  test('an upload is measured by the bytes sent, not the tiny response', () => {
    expect(curlMbps(`200 4 ${MB200} 4.0`, MB200, 'upload')).toEqual({ ok: true, value: (MB200 * 8) / 4 / 1e6 });
  });

  test('a short transfer is a failure: a truncated file must not pass for a fast one', () => {
    expect(curlMbps(`200 1000 0 0.01`, MB200, 'download')).toEqual({ ok: false, reason: `download moved 1000 of ${MB200} bytes` });
  });

  test('no HTTP response (connect timed out) is a failure', () => {
    expect(curlMbps('000 0 0 3.001', 1024, 'download').ok).toBe(false);
  });

  test('a transfer cut by the time limit reports its rate so far, marked partial', () => {
    const r = curlMbps(`200 ${MB200 / 2} 0 40.0`, MB200, 'download', true);
    expect(r).toEqual({ ok: true, value: (MB200 / 2 * 8) / 40 / 1e6, note: `partial: ${MB200 / 2} of ${MB200} bytes in the time limit` });
  });

  test('an HTTP error status is a failure', () => {
    expect(curlMbps('404 0 0 0.01', 1024, 'download')).toEqual({ ok: false, reason: 'HTTP status 404' });
  });
});

describe('vmRssKb', () => {
  test('reads VmRSS from /proc/PID/status text', () => {
    expect(vmRssKb('Name:\tnode\nVmPeak:\t  900000 kB\nVmRSS:\t   73464 kB\nRssAnon:\t 40000 kB\n')).toBe(73464);
  });

  test('a status without VmRSS (a kernel thread, or a zombie) gives null', () => {
    expect(vmRssKb('Name:\tkworker\nState:\tZ (zombie)\n')).toBeNull();
  });
});
