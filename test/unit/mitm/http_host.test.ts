// The name a plain HTTP request asks for, as policy matches it: the Host
// field or an absolute-form target's authority (RFC 9112 §3.2), lowercased,
// without port; never an address; bounded so that a client cannot push its
// Host past what is read.
import { RequestHostReader, requestHost } from '../../../mitm/http_host';

const read = (...chunks: string[]) => {
  const r = new RequestHostReader(256);
  let last = r.push(Buffer.alloc(0));
  for (const c of chunks) last = r.push(Buffer.from(c, 'latin1'));
  return last;
};

describe('RequestHostReader', () => {
  test('the Host field, whatever the segmentation', () => {
    expect(read('GET / HTTP/1.1\r\nHost: WWW.Example.test:8080\r\n\r\n')).toEqual({ kind: 'done', host: 'www.example.test' });
    expect(read('GET / HT', 'TP/1.1\r\nHo', 'st: a.test\r', '\n\r\n')).toEqual({ kind: 'done', host: 'a.test' });
  });

  test('needs the whole head: a Host seen before the end is not enough to decide on a different one later', () => {
    expect(read('GET / HTTP/1.1\r\nHost: a.test\r\n')).toEqual({ kind: 'need_more' });
  });

  test('an absolute-form target names the host, not the Host field', () => {
    expect(read('GET http://user@b.test:81/x HTTP/1.1\r\nHost: a.test\r\n\r\n')).toEqual({ kind: 'done', host: 'b.test' });
  });

  test('no name: HTTP/1.0 without Host, an IP literal, several Host fields', () => {
    expect(read('GET / HTTP/1.0\r\n\r\n')).toEqual({ kind: 'done', host: null });
    expect(read('GET / HTTP/1.1\r\nHost: 10.0.0.1:80\r\n\r\n')).toEqual({ kind: 'done', host: null });
    expect(read('GET / HTTP/1.1\r\nHost: [fd00::1]:80\r\n\r\n')).toEqual({ kind: 'done', host: null });
    expect(read('GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n')).toEqual({ kind: 'done', host: null });
  });

  test('a head longer than the bound is an error, not a flow without a name', () => {
    expect(read('GET / HTTP/1.1\r\n', `X-Pad: ${'a'.repeat(300)}\r\n`, 'Host: evil.test\r\n\r\n')).toEqual({ kind: 'error', reason: 'head_too_large' });
  });

  test('a malformed request line is an error', () => {
    expect(read('GET\r\n\r\n')).toEqual({ kind: 'error', reason: 'malformed_request' });
  });
});

test('requestHost drops a trailing dot and the port', () => {
  expect(requestHost('/', 'Example.TEST.:443')).toBe('example.test');
});
