# Independent WireGuard handshake vector (Python hashlib/hmac + pyca/cryptography).
import hashlib, hmac, struct, json
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization as s

def H(*p):
    h = hashlib.blake2s()
    for x in p: h.update(x)
    return h.digest()
def MAC(k, m): return hashlib.blake2s(m, digest_size=16, key=k).digest()
def HMAC(k, m): return hmac.new(k, m, hashlib.blake2s).digest()
def KDF(n, k, x):
    t0 = HMAC(k, x); out = []; t = b''
    for i in range(1, n + 1):
        t = HMAC(t0, t + bytes([i])); out.append(t)
    return out
def PUB(priv): return X25519PrivateKey.from_private_bytes(priv).public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
def DH(priv, pub): return X25519PrivateKey.from_private_bytes(priv).exchange(X25519PublicKey.from_public_bytes(pub))
def AEAD(k, c, pt, ad): return ChaCha20Poly1305(k).encrypt(b'\0' * 4 + struct.pack('<Q', c), pt, ad)

Si = bytes.fromhex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a')  # RFC 7748 Alice
Sr = bytes.fromhex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb')  # RFC 7748 Bob
Ei = hashlib.sha256(b'initiator ephemeral').digest()
Er = hashlib.sha256(b'responder ephemeral').digest()
psk = bytes(range(0x40, 0x60))
Ii, Ir = 0x11223344, 0x55667788
secs, nanos = 1767225600, 123456789   # 2026-01-01T00:00:00.123456789Z
ts = struct.pack('>QI', 0x400000000000000a + secs, nanos & ~0xffffff)
Spub_i, Spub_r = PUB(Si), PUB(Sr)

C = H(b'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s')
Hh = H(C, b'WireGuard v1 zx2c4 Jason@zx2c4.com')
Hh = H(Hh, Spub_r)
Epub_i = PUB(Ei)
C = KDF(1, C, Epub_i)[0]
Hh = H(Hh, Epub_i)
C, k = KDF(2, C, DH(Ei, Spub_r))
enc_static = AEAD(k, 0, Spub_i, Hh); Hh = H(Hh, enc_static)
C, k = KDF(2, C, DH(Si, Spub_r))
enc_ts = AEAD(k, 0, ts, Hh); Hh = H(Hh, enc_ts)
init = struct.pack('<I', 1) + struct.pack('<I', Ii) + Epub_i + enc_static + enc_ts
mac1 = MAC(H(b'mac1----', Spub_r), init)
init = init + mac1 + bytes(16)

Epub_r = PUB(Er)
C = KDF(1, C, Epub_r); C = C[0]
Hh = H(Hh, Epub_r)
C = KDF(1, C, DH(Er, Epub_i))[0]
C = KDF(1, C, DH(Er, Spub_i))[0]
C, tau, k = KDF(3, C, psk)
Hh = H(Hh, tau)
enc_empty = AEAD(k, 0, b'', Hh); Hh = H(Hh, enc_empty)
resp = struct.pack('<I', 2) + struct.pack('<I', Ir) + struct.pack('<I', Ii) + Epub_r + enc_empty
resp = resp + MAC(H(b'mac1----', Spub_i), resp) + bytes(16)
Ti_send, Ti_recv = KDF(2, C, b'')

# A 20-byte IPv4 header + 5 bytes payload, padded to 32, as the initiator's first data message.
pkt = bytes.fromhex('4500001900000000401100000a0000010a000002') + b'hello'
padded = pkt + bytes((-len(pkt)) % 16)
data = struct.pack('<I', 4) + struct.pack('<I', Ir) + struct.pack('<Q', 0) + AEAD(Ti_send, 0, padded, b'')

# mac2 with a known cookie, and a cookie reply sealed by the responder for that initiation.
cookie = bytes(range(0xa0, 0xb0))
mac2 = MAC(cookie, init[:-16])
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305 as _C
nonce = bytes(range(24))
# XChaCha20-Poly1305 is not in pyca; the cookie reply vector is checked by round trip instead.
print(json.dumps({
  'initiation': init.hex(), 'response': resp.hex(), 'sendKeyInitiator': Ti_send.hex(), 'recvKeyInitiator': Ti_recv.hex(),
  'data': data.hex(), 'mac2WithCookie': mac2.hex(), 'timestamp': ts.hex(),
  'ephemeralInitiator': Ei.hex(), 'ephemeralResponder': Er.hex(),
  'hmac': HMAC(b'key', b'The quick brown fox').hex(),
  'kdf3': [x.hex() for x in KDF(3, bytes(32), b'input')],
  'keyedBlake2s16': MAC(bytes(range(32)), b'abc').hex(),
  'keyedKatEmpty': hashlib.blake2s(b'', key=bytes(range(32))).hexdigest(),
}, indent=1))
