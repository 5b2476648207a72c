// The employee portal's one page: server-rendered HTML, every value escaped,
// no script, no external asset (styles inline), readable without JavaScript.
import type { Decision } from './decisions';
import type { InspectionScope } from './scope';

export interface PortalDevice {
  name: string;
  ipv4: string;
  ipv6: string;
  state: string;
  connected: boolean;
  /** ISO 8601, or null before the first handshake. */
  lastHandshake: string | null;
  /** The device this page was requested from. */
  current: boolean;
}

export interface PortalView {
  user: string;
  company: string;
  /** Exactly as `sightline ca show` prints it: "SHA-256 AB:CD:...". */
  fingerprint: string;
  caSubject: string;
  caValidTo: string;
  scope: InspectionScope;
  devices: PortalDevice[];
  decisions: Decision[];
  now: number;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

const STYLE = `body{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccd}code,.fp{font-family:ui-monospace,monospace}
.fp{word-break:break-all;background:#f3f4f6;padding:.3rem .5rem;display:block}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #e5e7eb;vertical-align:top}.muted{color:#5b6470}
.blocked{color:#a40000}.inspected{color:#7a4b00}.passed,.not-decrypted{color:#11612a}a.dl{margin-right:1rem}`;

function ago(iso: string | null, now: number): string {
  if (iso === null) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

function caSection(v: PortalView): string {
  return `<h2 id="ca">1. The company certificate</h2>
<p>Install this certificate on each of your devices so that inspected sites open without warnings. Check that the fingerprint your device shows is exactly:</p>
<p class="fp" id="fingerprint">${escapeHtml(v.fingerprint)}</p>
<p class="muted">${escapeHtml(v.caSubject)}, valid until ${escapeHtml(v.caValidTo)}</p>
<p><a class="dl" href="/ca.pem" download="sightline-ca.pem">PEM</a><a class="dl" href="/ca.der" download="sightline-ca.cer">DER (.cer)</a><a class="dl" href="/ca.p12" download="sightline-ca.p12">PKCS#12 (.p12, empty password)</a></p>
<ul>
<li><b>Windows</b>: open <code>sightline-ca.cer</code> → Install Certificate → Local Machine → Trusted Root Certification Authorities.</li>
<li><b>macOS</b>: open <code>sightline-ca.pem</code> in Keychain Access (System keychain), then Get Info → Trust → "Always Trust".</li>
<li><b>Linux</b>: <code>sudo cp sightline-ca.pem /usr/local/share/ca-certificates/sightline-ca.crt &amp;&amp; sudo update-ca-certificates</code>; Chromium: <code>certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n Sightline -i sightline-ca.pem</code>.</li>
<li><b>Android</b>: Settings → Security → Encryption &amp; credentials → Install a certificate → CA certificate → <code>sightline-ca.cer</code>.</li>
<li><b>iPhone / iPad</b>: open <code>sightline-ca.pem</code>, install the profile in Settings, then General → About → Certificate Trust Settings → turn on full trust.</li>
<li><b>Firefox</b> (its own store): Settings → Privacy &amp; Security → Certificates → View Certificates → Authorities → Import → tick "Trust this CA to identify websites".</li>
</ul>`;
}

function scopeSection(v: PortalView): string {
  const ports = v.scope.inspectedPorts.join(', ');
  const exempt = v.scope.notDecrypted.map((c) => `<li>${escapeHtml(c)}</li>`).join('');
  const rows = v.decisions.map((d) => `<tr><td>${escapeHtml(new Date(d.time).toISOString().replace('T', ' ').slice(0, 19))}</td><td>${escapeHtml(d.host)}</td><td class="${d.action.replace(' ', '-')}">${escapeHtml(d.action)}</td><td>${escapeHtml(d.reason)}</td></tr>`).join('\n');
  return `<h2 id="inspection">2. What is inspected</h2>
<p>All your traffic goes through the company VPN. Encrypted web traffic (TLS on TCP port${v.scope.inspectedPorts.length > 1 ? 's' : ''} ${escapeHtml(ports)}) is <b>decrypted and checked</b>: the company sees which sites you visit, the addresses of the pages and their sizes. Passwords, cookies and the content of forms and pages are never written to the log.</p>
<p><b>Not decrypted</b>:</p>
<ul id="not-decrypted">${exempt}${v.scope.pinnedListed > 0 ? `<li>Apps known to pin their certificates (${v.scope.pinnedListed} sites on the shipped list)</li>` : ''}${v.scope.pinnedAppsBypassed ? '<li>Apps that refuse the company certificate (certificate pinning), once detected: their connections are passed through, still logged by name.</li>' : ''}<li>Sites that ask your device for its own certificate (mutual TLS), once detected.</li></ul>
<p>Other traffic (other ports, DNS) is not decrypted; its destination, size and the names you look up are logged.</p>
<h3>Your recent connections</h3>
${v.decisions.length === 0 ? '<p class="muted">None recorded yet.</p>' : `<table id="decisions"><thead><tr><th>time (UTC)</th><th>site</th><th>what was done</th><th>why</th></tr></thead><tbody>\n${rows}\n</tbody></table>`}`;
}

function devicesSection(v: PortalView): string {
  const rows = v.devices.map((d) => `<tr><td>${escapeHtml(d.name)}${d.current ? ' <span class="muted">(this device)</span>' : ''}</td><td>${escapeHtml(d.ipv4)}<br>${escapeHtml(d.ipv6)}</td><td>${escapeHtml(d.state)}${d.connected ? ', connected' : ''}</td><td>${escapeHtml(ago(d.lastHandshake, v.now))}</td></tr>`).join('\n');
  return `<h2 id="devices">3. Your devices</h2>
<table><thead><tr><th>device</th><th>tunnel addresses</th><th>state</th><th>last handshake</th></tr></thead><tbody>
${rows}
</tbody></table>
<p class="muted">A device you do not recognise? Tell IT: they can remove it at once.</p>`;
}

export function renderPortal(v: PortalView): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(v.company)} VPN: your connection</title><style>${STYLE}</style></head>
<body><h1>${escapeHtml(v.company)} VPN</h1>
<p>Signed in as <b id="user">${escapeHtml(v.user)}</b>: the VPN recognised your device by its WireGuard key; no password is needed here, and only your own information is shown.</p>
${caSection(v)}
${scopeSection(v)}
${devicesSection(v)}
</body></html>
`;
}
