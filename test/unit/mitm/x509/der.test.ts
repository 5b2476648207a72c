// The DER reader/writer under X.509 and OCSP parsing (X.690), with known bytes.

import { DerError, TAG_SEQUENCE, TAG_UTC_TIME, TAG_GENERALIZED_TIME, children, decodeOid, decodeTime, encode, encodeOid, readTlv } from '../../../../mitm/x509/der';

const SHA256_WITH_RSA = Buffer.from('06092a864886f70d01010b', 'hex');

it('encodes an OID as X.690 8.19 base-128 arcs', () => {
  expect(encodeOid('1.2.840.113549.1.1.11').equals(SHA256_WITH_RSA)).toBe(true);
});

it('decodes the same OID back', () => {
  expect(decodeOid(readTlv(SHA256_WITH_RSA).content)).toBe('1.2.840.113549.1.1.11');
});

it('uses the long length form above 127 bytes and reads it back', () => {
  const big = encode(TAG_SEQUENCE, Buffer.alloc(300, 0x05));
  expect([big.subarray(0, 4).toString('hex'), readTlv(big).content.length]).toEqual(['3082012c', 300]);
});

it('lists the children of a constructed element in order', () => {
  const seq = encode(TAG_SEQUENCE, [encodeOid('2.5.29.19'), encode(0x01, Buffer.from([0xff]))]);
  expect(children(readTlv(seq)).map((c) => c.tag)).toEqual([0x06, 0x01]);
});

it('reads UTCTime years 50-99 as 19xx and 00-49 as 20xx (RFC 5280 4.1.2.5.1)', () => {
  const t = (s: string): number => decodeTime(readTlv(encode(TAG_UTC_TIME, Buffer.from(s)))).getUTCFullYear();
  expect([t('491231235959Z'), t('500101000000Z')]).toEqual([2049, 1950]);
});

it('reads GeneralizedTime with fractional seconds', () => {
  const d = decodeTime(readTlv(encode(TAG_GENERALIZED_TIME, Buffer.from('20260102030405.5Z'))));
  expect(d.toISOString()).toBe('2026-01-02T03:04:05.000Z');
});

it('rejects content running past the buffer', () => {
  expect(() => readTlv(Buffer.from('3005020101', 'hex'))).toThrow(DerError);
});

it('rejects the indefinite length form, which DER forbids (X.690 10.1)', () => {
  expect(() => readTlv(Buffer.from('30800000', 'hex'))).toThrow(DerError);
});
