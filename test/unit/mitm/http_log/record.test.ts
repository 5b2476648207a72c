// Query strings often carry tokens and passwords: the logged path keeps the
// parameter names and replaces every value.
import { logHost, redactTarget } from '../../../../mitm/http_log/record';
import { createHttpLogger } from '../../../../mitm/http_log/logger';
import { HttpRequestRecord } from '../../../../mitm/http_log/record';

describe('redactTarget', () => {
  test('keeps keys and redacts values', () => {
    expect(redactTarget('/login?user=alice&next=/home')).toBe('/login?user=[redacted]&next=[redacted]');
  });
  test('leaves a path without query untouched', () => {
    expect(redactTarget('/a/b.html')).toBe('/a/b.html');
  });
  test('redacts a bare token without "=" whole', () => {
    expect(redactTarget('/cb?eyJhbGciOiJIUzI1NiJ9.payload')).toBe('/cb?[redacted]');
  });
  test('keeps empty values and separators recognisable', () => {
    expect(redactTarget('/s?a=&b=2&&c')).toBe('/s?a=[redacted]&b=[redacted]&&[redacted]');
  });
  test('a value containing "=" or "?" is redacted entirely', () => {
    expect(redactTarget('/x?sig=abc==?d=1')).toBe('/x?sig=[redacted]');
  });
  test('redacts a fragment (implicit-flow access tokens travel there)', () => {
    expect(redactTarget('/cb#access_token=abc')).toBe('/cb#[redacted]');
  });
  test('drops scheme, authority and userinfo of an absolute-form target', () => {
    expect(redactTarget('http://user:pass@h.example/p?k=v')).toBe('/p?k=[redacted]');
  });
  test('bounds the logged length', () => {
    expect(redactTarget('/' + 'a'.repeat(10_000)).length).toBeLessThan(2100);
  });
});

describe('logHost', () => {
  test('lowercases and strips userinfo', () => {
    expect(logHost(' User:pw@Example.COM:8443 ', null)).toBe('example.com:8443');
  });
  test('falls back to the SNI when the host is absent or empty', () => {
    expect(logHost(null, 'sni.example')).toBe('sni.example');
    expect(logHost('', 'sni.example')).toBe('sni.example');
  });
});

describe('createHttpLogger safety net', () => {
  test('an exception from the record sink ends logging with one error record and never reaches the relay', () => {
    const seen: HttpRequestRecord[] = [];
    let calls = 0;
    const logger = createHttpLogger({
      alpn: 'http/1.1', sniHost: 'sni.example', now: () => 0,
      emit: (r) => { calls++; seen.push(r); if (calls === 1) throw new Error('sink down'); },
    });
    expect(() => {
      logger.clientToServer(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
      logger.serverToClient(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
      logger.clientToServer(Buffer.from('GET /2 HTTP/1.1\r\nHost: a\r\n\r\n'));
      logger.end();
    }).not.toThrow();
    expect(seen.map((r) => r.error)).toEqual([undefined, 'internal logger error; logging stopped']);
  });
});
