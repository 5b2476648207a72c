// Reading the tools' outputs for the tunnel benchmark: iperf3 JSON, curl's
// --write-out line and /proc/PID/status. A failed measurement is a value
// with a reason, so one broken path becomes a NaN row, not a crashed run.
export type Measured = { ok: true; value: number; note?: string } | { ok: false; reason: string };

interface IperfJson {
  error?: string;
  end?: { sum_received?: { bits_per_second?: number; bytes?: number } };
}

/**
 * Mbit/s from `iperf3 -J`. sum_received is what the receiving side got: the
 * client for -R (download), the server for upload, so both directions count
 * delivered bytes, not bytes that were merely queued by the sender.
 */
export function iperfMbps(stdout: string): Measured {
  let parsed: IperfJson;
  try {
    parsed = JSON.parse(stdout) as IperfJson;
  } catch {
    return { ok: false, reason: `iperf3 printed no JSON: ${stdout.trim().slice(0, 200) || '(empty)'}` };
  }
  if (parsed.error !== undefined) return { ok: false, reason: `iperf3: ${parsed.error}` };
  const bps = parsed.end?.sum_received?.bits_per_second;
  if (typeof bps !== 'number' || !(bps > 0)) return { ok: false, reason: 'iperf3 JSON has no end.sum_received.bits_per_second' };
  return { ok: true, value: bps / 1e6 };
}

/** The --write-out format whose output curlMbps reads. */
export const CURL_WRITE_OUT = '%{http_code} %{size_download} %{size_upload} %{time_total}';

/**
 * Mbit/s of a curl transfer from its --write-out line. A transfer is counted
 * only when every expected byte went through (a short read is a failure, not
 * a fast run), except when curl's own time limit cut it (`timedOut`, exit
 * code 28): then the rate so far is the measurement, marked partial.
 */
export function curlMbps(writeOut: string, expectedBytes: number, direction: 'download' | 'upload', timedOut = false): Measured {
  const m = /^(\d{3}) (\d+) (\d+) ([\d.]+)\s*$/.exec(writeOut.trim());
  if (m === null) return { ok: false, reason: `unexpected curl output: ${writeOut.trim().slice(0, 200) || '(empty)'}` };
  const [code, down, up, seconds] = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
  const bytes = direction === 'download' ? down : up;
  if (timedOut && bytes > 0 && seconds > 0) return { ok: true, value: (bytes * 8) / seconds / 1e6, note: `partial: ${bytes} of ${expectedBytes} bytes in the time limit` };
  if (code === 0) return { ok: false, reason: 'curl got no HTTP response (connection failed or timed out)' };
  if (code !== 200) return { ok: false, reason: `HTTP status ${code}` };
  if (bytes !== expectedBytes) return { ok: false, reason: `${direction} moved ${bytes} of ${expectedBytes} bytes` };
  if (!(seconds > 0)) return { ok: false, reason: 'curl reported no transfer time' };
  return { ok: true, value: (bytes * 8) / seconds / 1e6 };
}

/** Resident set size in KiB from the text of /proc/PID/status. */
export function vmRssKb(statusText: string): number | null {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(statusText);
  return m === null ? null : Number(m[1]);
}
