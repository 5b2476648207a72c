// validateChain: every failure code and the good chains it must accept.
// Each case is a mistake real interception products made (accepting expired,
// self-signed, wrong-host or weakly signed upstream certificates).

import type { X509Certificate } from 'node:crypto';
import { TrustStore, ValidationInput, ValidationResult, validateChain } from '../../../../mitm/upstream';
import { TestCert, daysFromNow, issueCert, makeIntermediate, makeLeaf, makeRoot } from '../../../helpers/pki';

let root: TestCert;
let intermediate: TestCert;
let rsaIntermediate: TestCert;
let trust: TrustStore;

beforeAll(() => {
  root = makeRoot();
  intermediate = makeIntermediate(root);
  rsaIntermediate = makeIntermediate(root, { key: 'rsa2048', cn: 'RSA Intermediate' });
  trust = new TrustStore([root.cert]);
});

function validate(chain: TestCert[], overrides: Partial<ValidationInput> = {}): ValidationResult {
  return validateChain({
    chain: chain.map((c) => c.cert),
    hostname: 'www.example.com',
    ip: '192.0.2.10',
    now: new Date(),
    trust,
    negotiatedProtocol: 'TLSv1.3',
    ...overrides,
  });
}

function expectFailure(result: ValidationResult, reason: string): void {
  expect(result.ok ? 'ok' : result.reason).toBe(reason);
}

const subjects = (path: X509Certificate[]): string[] => path.map((c) => c.subject);

describe('good chains are accepted', () => {
  it.each([['rsa2048'], ['rsa4096'], ['p256'], ['p384']] as const)('leaf with a %s key', (key) => {
    const leaf = makeLeaf(intermediate, { key, dns: ['www.example.com'] });
    const result = validate([leaf, intermediate]);
    expect(result.ok).toBe(true);
  });

  it('returns the path leaf → intermediate → trust anchor', () => {
    const leaf = makeLeaf(intermediate, { dns: ['www.example.com'] });
    const result = validate([leaf, intermediate]);
    if (!result.ok) throw new Error(result.detail);
    expect(subjects(result.path)).toEqual(subjects([leaf.cert, intermediate.cert, root.cert]));
  });

  it('accepts a chain that also presents the root (servers often send it)', () => {
    const leaf = makeLeaf(intermediate, { dns: ['www.example.com'] });
    expect(validate([leaf, intermediate, root]).ok).toBe(true);
  });

  it('accepts a SAN-only leaf with an empty subject (CA/B BR 7.1.4.2: names live in the SAN)', () => {
    const leaf = makeLeaf(intermediate, { cn: undefined, dns: ['www.example.com'] });
    expect(leaf.cert.subject || '').toBe('');
    expect(validate([leaf, intermediate]).ok).toBe(true);
  });

  it('accepts a wildcard SAN for one left-most label (RFC 6125 6.4.3)', () => {
    const leaf = makeLeaf(intermediate, { dns: ['*.example.com'] });
    expect(validate([leaf, intermediate], { hostname: 'shop.example.com' }).ok).toBe(true);
  });

  it('matches the destination against an IPv4 SAN when the client sent no SNI', () => {
    const leaf = makeLeaf(intermediate, { dns: ['www.example.com'], ips: ['192.0.2.10'] });
    expect(validate([leaf, intermediate], { hostname: null, ip: '192.0.2.10' }).ok).toBe(true);
  });

  it('matches the destination against an IPv6 SAN when the client sent no SNI', () => {
    const leaf = makeLeaf(intermediate, { ips: ['2001:db8::1'] });
    expect(validate([leaf, intermediate], { hostname: null, ip: '2001:db8:0:0::1' }).ok).toBe(true);
  });

  it('completes the path with an AIA-fetched intermediate given as extraIntermediates', () => {
    const leaf = makeLeaf(intermediate, { dns: ['www.example.com'] });
    expect(validate([leaf], { extraIntermediates: [intermediate.cert] }).ok).toBe(true);
  });

  it('accepts a leaf without an extKeyUsage extension (RFC 5280 4.2.1.12 absence = any; documented policy)', () => {
    const leaf = makeLeaf(intermediate, { dns: ['www.example.com'], eku: null });
    expect(validate([leaf, intermediate]).ok).toBe(true);
  });

  it('ignores unrelated extra certificates the server sent', () => {
    const stranger = makeIntermediate(makeRoot({ cn: 'Other Root' }), { cn: 'Unrelated' });
    const leaf = makeLeaf(intermediate, { dns: ['www.example.com'] });
    expect(validate([leaf, stranger, intermediate]).ok).toBe(true);
  });
});

describe('validity window (RFC 5280 4.1.2.5)', () => {
  it('rejects an expired leaf', () => {
    const leaf = makeLeaf(intermediate, { dns: ['www.example.com'], notBefore: daysFromNow(-30), notAfter: daysFromNow(-1) });
    expectFailure(validate([leaf, intermediate]), 'expired');
  });

  it('rejects a chain whose intermediate has expired', () => {
    const old = makeIntermediate(root, { cn: 'Expired Intermediate', notBefore: daysFromNow(-400), notAfter: daysFromNow(-2) });
    const leaf = makeLeaf(old, { dns: ['www.example.com'] });
    expectFailure(validate([leaf, old]), 'expired');
  });

  it('rejects a leaf that is not yet valid', () => {
    const leaf = makeLeaf(intermediate, { dns: ['www.example.com'], notBefore: daysFromNow(2), notAfter: daysFromNow(60) });
    expectFailure(validate([leaf, intermediate]), 'not_yet_valid');
  });
});

describe('path building to a trust anchor', () => {
  it('rejects a self-signed server certificate', () => {
    const leaf = issueCert({ cn: 'www.example.com', dns: ['www.example.com'], eku: ['serverAuth'] });
    expectFailure(validate([leaf]), 'self_signed');
  });

  it('rejects a chain ending at a root that is not trusted', () => {
    const rogueRoot = makeRoot({ cn: 'Rogue Root' });
    const rogueIntermediate = makeIntermediate(rogueRoot);
    const leaf = makeLeaf(rogueIntermediate, { dns: ['www.example.com'] });
    expectFailure(validate([leaf, rogueIntermediate, rogueRoot]), 'untrusted_root');
  });

  it('reports a missing intermediate as incomplete_chain with its caIssuers URL', () => {
    const leaf = makeLeaf(intermediate, { dns: ['www.example.com'], caIssuersUrl: 'http://127.0.0.1:9/int.der' });
    const result = validate([leaf]);
    expectFailure(result, 'incomplete_chain');
    expect(result.ok ? null : result.missingIssuerUrl).toBe('http://127.0.0.1:9/int.der');
  });

  it('reports incomplete_chain without a URL when the leaf has no AIA', () => {
    const leaf = makeLeaf(intermediate, { dns: ['www.example.com'] });
    const result = validate([leaf]);
    expectFailure(result, 'incomplete_chain');
    expect(result.ok ? 'ok' : result.missingIssuerUrl).toBeUndefined();
  });

  it('rejects a certificate whose signature does not verify with its issuer key', () => {
    const impostorKey = makeLeaf(intermediate, { key: 'p256' }).key;
    const leaf = makeLeaf(intermediate, { dns: ['www.example.com'], signWith: impostorKey });
    expectFailure(validate([leaf, intermediate]), 'bad_signature');
  });
});

describe('algorithms (CA/B BR 6.1.5, 7.1.3)', () => {
  it('rejects a leaf signed with sha1WithRSAEncryption', () => {
    const leaf = makeLeaf(rsaIntermediate, { dns: ['www.example.com'], hash: 'sha1' });
    expectFailure(validate([leaf, rsaIntermediate]), 'weak_signature_sha1');
  });

  it('rejects a leaf signed with ecdsa-with-SHA1', () => {
    const leaf = makeLeaf(intermediate, { dns: ['www.example.com'], hash: 'sha1' });
    expectFailure(validate([leaf, intermediate]), 'weak_signature_sha1');
  });

  it('rejects a leaf signed with md5WithRSAEncryption', () => {
    const leaf = makeLeaf(rsaIntermediate, { dns: ['www.example.com'], hash: 'md5' });
    expectFailure(validate([leaf, rsaIntermediate]), 'weak_signature_md5');
  });

  it('rejects an intermediate signed with SHA-1', () => {
    const weakInt = makeIntermediate(root, { cn: 'SHA1 Intermediate', hash: 'sha1' });
    const leaf = makeLeaf(weakInt, { dns: ['www.example.com'] });
    expectFailure(validate([leaf, weakInt]), 'weak_signature_sha1');
  });

  it('rejects a 1024-bit RSA leaf key', () => {
    const leaf = makeLeaf(intermediate, { key: 'rsa1024', dns: ['www.example.com'] });
    expectFailure(validate([leaf, intermediate]), 'weak_rsa_key');
  });
});

describe('issuer constraints (RFC 5280 6.1.4)', () => {
  it('rejects an intermediate with basicConstraints cA=false', () => {
    const notCa = issueCert({ cn: 'Not A CA', issuer: root, ca: false, keyUsage: ['keyCertSign'], eku: null });
    const leaf = makeLeaf(notCa, { dns: ['www.example.com'] });
    expectFailure(validate([leaf, notCa]), 'not_a_ca');
  });

  it('rejects an intermediate without basicConstraints', () => {
    const notCa = issueCert({ cn: 'No BC', issuer: root, ca: 'omit', keyUsage: ['keyCertSign'], eku: null });
    const leaf = makeLeaf(notCa, { dns: ['www.example.com'] });
    expectFailure(validate([leaf, notCa]), 'not_a_ca');
  });

  it('rejects an intermediate whose keyUsage lacks keyCertSign', () => {
    const noSign = makeIntermediate(root, { cn: 'No keyCertSign', keyUsage: ['digitalSignature'] });
    const leaf = makeLeaf(noSign, { dns: ['www.example.com'] });
    expectFailure(validate([leaf, noSign]), 'not_a_ca');
  });

  it('rejects a path longer than an intermediate pathLenConstraint allows', () => {
    const capped = makeIntermediate(root, { cn: 'Capped', ca: { pathLen: 0 } });
    const below = makeIntermediate(capped, { cn: 'Below Capped' });
    const leaf = makeLeaf(below, { dns: ['www.example.com'] });
    expectFailure(validate([leaf, below, capped]), 'path_len_exceeded');
  });
});

describe('extended key usage', () => {
  it('rejects a leaf whose EKU is clientAuth only', () => {
    const leaf = makeLeaf(intermediate, { dns: ['www.example.com'], eku: ['clientAuth'] });
    expectFailure(validate([leaf, intermediate]), 'missing_server_auth_eku');
  });

  it('rejects a chain through an intermediate restricted to clientAuth', () => {
    const clientOnly = makeIntermediate(root, { cn: 'Client CA', eku: ['clientAuth'] });
    const leaf = makeLeaf(clientOnly, { dns: ['www.example.com'] });
    expectFailure(validate([leaf, clientOnly]), 'missing_server_auth_eku');
  });
});

describe('server identity (RFC 6125)', () => {
  it('rejects a certificate for another host', () => {
    const leaf = makeLeaf(intermediate, { dns: ['other.example.net'] });
    expectFailure(validate([leaf, intermediate]), 'hostname_mismatch');
  });

  it('does not let a wildcard cover two labels', () => {
    const leaf = makeLeaf(intermediate, { dns: ['*.example.com'] });
    expectFailure(validate([leaf, intermediate], { hostname: 'a.b.example.com' }), 'hostname_mismatch');
  });

  it('does not let a wildcard cover the bare domain', () => {
    const leaf = makeLeaf(intermediate, { dns: ['*.example.com'] });
    expectFailure(validate([leaf, intermediate], { hostname: 'example.com' }), 'hostname_mismatch');
  });

  it('ignores the subject CN when there is no matching SAN', () => {
    const leaf = makeLeaf(intermediate, { cn: 'www.example.com', dns: ['cdn.example.com'] });
    expectFailure(validate([leaf, intermediate]), 'hostname_mismatch');
  });

  it('rejects a DNS-only certificate when there is no SNI to match', () => {
    const leaf = makeLeaf(intermediate, { dns: ['www.example.com'] });
    expectFailure(validate([leaf, intermediate], { hostname: null }), 'hostname_mismatch');
  });

  it('rejects an IP SAN for a different destination address', () => {
    const leaf = makeLeaf(intermediate, { ips: ['192.0.2.11'] });
    expectFailure(validate([leaf, intermediate], { hostname: null, ip: '192.0.2.10' }), 'hostname_mismatch');
  });
});

describe('protocol version (RFC 8996)', () => {
  it.each([['TLSv1'], ['TLSv1.1'], ['SSLv3']])('rejects a session negotiated as %s', (protocol) => {
    const leaf = makeLeaf(intermediate, { dns: ['www.example.com'] });
    expectFailure(validate([leaf, intermediate], { negotiatedProtocol: protocol }), 'protocol_too_old');
  });
});

describe('name constraints (RFC 5280 4.2.1.10)', () => {
  const constrained = (): TestCert => makeIntermediate(root, { cn: 'Corp-only CA', nameConstraints: { permittedDns: ['corp.example'], permittedIps: ['10.0.0.0/8'] } });

  it('accepts a name inside the permitted subtree', () => {
    const ca = constrained();
    const leaf = makeLeaf(ca, { dns: ['intranet.corp.example'] });
    expect(validate([leaf, ca], { hostname: 'intranet.corp.example' }).ok).toBe(true);
  });

  it('rejects a constrained CA vouching for a name outside its permitted subtree', () => {
    const ca = constrained();
    const leaf = makeLeaf(ca, { dns: ['www.example.com'] });
    expectFailure(validate([leaf, ca]), 'name_constraints_violation');
  });

  it('rejects an address outside the permitted range', () => {
    const ca = constrained();
    const leaf = makeLeaf(ca, { ips: ['192.0.2.10'] });
    expectFailure(validate([leaf, ca], { hostname: null, ip: '192.0.2.10' }), 'name_constraints_violation');
  });

  it('rejects a name inside an excluded subtree', () => {
    const ca = makeIntermediate(root, { cn: 'No-bank CA', nameConstraints: { excludedDns: ['bank.example'] } });
    const leaf = makeLeaf(ca, { dns: ['login.bank.example'] });
    expectFailure(validate([leaf, ca], { hostname: 'login.bank.example' }), 'name_constraints_violation');
  });
});

describe('certificate parsing', () => {
  it('rejects a certificate carrying a critical extension it does not understand (RFC 5280 4.2)', () => {
    // The CT precertificate poison (RFC 6962 3.1): a precertificate must never be accepted as a certificate.
    const poison = { oid: '1.3.6.1.4.1.11129.2.4.3', critical: true, valueDer: Buffer.from([0x05, 0x00]) };
    const leaf = makeLeaf(intermediate, { dns: ['www.example.com'], extraExtensions: [poison] });
    expectFailure(validate([leaf, intermediate]), 'unknown_critical_extension');
  });

  it('accepts an unknown extension that is not critical', () => {
    const note = { oid: '1.3.6.1.4.1.99999.1', critical: false, valueDer: Buffer.from([0x05, 0x00]) };
    const leaf = makeLeaf(intermediate, { dns: ['www.example.com'], extraExtensions: [note] });
    expect(validate([leaf, intermediate]).ok).toBe(true);
  });
});

it('reports a server certificate whose extensions cannot be decoded as malformed_certificate', () => {
  // OpenSSL decodes extensions lazily, so node accepts this certificate; our reader must fail it, not throw.
  const garbled = { oid: '2.5.29.19', critical: true, valueDer: Buffer.from([0x04, 0x03, 0xff, 0xff, 0xff]) };
  const leaf = makeLeaf(intermediate, { dns: ['www.example.com'], ca: 'omit', extraExtensions: [garbled] });
  expectFailure(validate([leaf, intermediate]), 'malformed_certificate');
});
