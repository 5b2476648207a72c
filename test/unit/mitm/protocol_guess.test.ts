// The protocol guess for `non_tls` records: a label from the first bytes of
// whichever side spoke first, stable however the bytes were segmented.

import { guessProtocol } from '../../../mitm/protocol_guess';

const b = (s: string | number[]): Buffer => (typeof s === 'string' ? Buffer.from(s, 'latin1') : Buffer.from(s));

describe('from the client\'s first bytes', () => {
  test.each([
    ['GET / HTTP/1.1\r\n', 'http'],
    ['POST /upload HTTP/1.1\r\n', 'http'],
    ['CONNECT example.test:22 HTTP/1.1\r\n', 'http'],
    ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'http2'],
    ['SSH-2.0-OpenSSH_9.6\r\n', 'ssh'],
    ['EHLO client.example\r\n', 'smtp'],
    ['NICK mallory\r\n', 'irc'],
    ['\x13BitTorrent protocol\0\0\0\0\0\0\0\0', 'bittorrent'],
    ['HELLO friend, some line protocol\r\n', 'text'],
  ])('%j is %s', (bytes, guess) => {
    expect(guessProtocol(b(bytes), 'client', false)).toBe(guess);
  });

  test('SOCKS greetings (RFC 1928 §3; SOCKS4 CONNECT) and an SSLv2 CLIENT-HELLO', () => {
    expect(guessProtocol(b([0x05, 0x01, 0x00]), 'client', false)).toBe('socks5');
    expect(guessProtocol(b([0x04, 0x01, 0x00, 0x50, 10, 0, 0, 1, 0x00]), 'client', false)).toBe('socks4');
    expect(guessProtocol(b([0x80, 0x2e, 0x01, 0x00, 0x02]), 'client', false)).toBe('sslv2');
  });

  test('binary that matches nothing is unknown', () => {
    expect(guessProtocol(b([0x00, 0xff, 0x13, 0x37, 0x99]), 'client', true)).toBe('unknown');
  });

  test('a prefix of a signature waits for more bytes unless the stream is final', () => {
    expect(guessProtocol(b('SS'), 'client', false)).toBeNull();
    expect(guessProtocol(b('GE'), 'client', false)).toBeNull();
    expect(guessProtocol(b('SS'), 'client', true)).toBe('text');
    expect(guessProtocol(Buffer.alloc(0), 'client', true)).toBe('unknown');
  });
});

describe('from a server that spoke first', () => {
  test.each([
    ['SSH-2.0-OpenSSH_9.6\r\n', 'ssh'],
    ['220 mail.example.test ESMTP Postfix\r\n', 'smtp'],
    ['220 (vsFTPd 3.0.5)\r\n', 'ftp'],
    ['220 welcome\r\n', 'text'],
    ['+OK POP3 server ready\r\n', 'pop3'],
    ['* OK [CAPABILITY IMAP4rev1] ready\r\n', 'imap'],
  ])('%j is %s', (bytes, guess) => {
    expect(guessProtocol(b(bytes), 'server', false)).toBe(guess);
  });

  test('a MySQL initial handshake packet (protocol version 10)', () => {
    const body = Buffer.concat([Buffer.from([0x0a]), Buffer.from('8.0.36\0', 'latin1'), Buffer.alloc(20, 1)]);
    const packet = Buffer.concat([Buffer.from([body.length & 0xff, (body.length >> 8) & 0xff, 0, 0]), body]);
    expect(guessProtocol(packet, 'server', false)).toBe('mysql');
  });

  test('a 220 greeting waits for its line end to tell SMTP from FTP', () => {
    expect(guessProtocol(b('220 mail.exa'), 'server', false)).toBeNull();
    expect(guessProtocol(b('220 mail.exa'), 'server', true)).toBe('text');
  });
});
