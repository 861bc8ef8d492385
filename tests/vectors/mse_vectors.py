# Computes the MSE vectors of src/mse/keys.rs apart from Rivulet: Python's pow, hashlib and a
# textbook RC4. Run: python3 tests/vectors/mse_vectors.py
import hashlib
P = int("FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563", 16)
xa = int.from_bytes(b"\x11" * 20, "big"); xb = int.from_bytes(b"\x22" * 20, "big")
ya = pow(2, xa, P); yb = pow(2, xb, P)
s = pow(yb, xa, P); assert s == pow(ya, xb, P)
b96 = lambda n: n.to_bytes(96, "big")
S = b96(s); ih = b"\xab" * 20
sha = lambda *p: hashlib.sha1(b"".join(p)).digest()
def rc4(key, n):
    st = list(range(256)); j = 0
    for i in range(256):
        j = (j + st[i] + key[i % len(key)]) % 256; st[i], st[j] = st[j], st[i]
    i = j = 0; out = []
    for _ in range(n):
        i = (i + 1) % 256; j = (j + st[i]) % 256; st[i], st[j] = st[j], st[i]
        out.append(st[(st[i] + st[j]) % 256])
    return bytes(out)
req23 = bytes(x ^ y for x, y in zip(sha(b"req2", ih), sha(b"req3", S)))
print('const VECTOR_YA_HEAD: &str = "%s";' % b96(ya)[:8].hex())
print('const VECTOR_YB_HEAD: &str = "%s";' % b96(yb)[:8].hex())
print('const VECTOR_S_HEAD: &str = "%s";' % S[:8].hex())
print('const VECTOR_REQ1: &str = "%s";' % sha(b"req1", S).hex())
print('const VECTOR_REQ23: &str = "%s";' % req23.hex())
print('const VECTOR_KEYA_STREAM: &str = "%s";' % rc4(sha(b"keyA", S, ih), 1024 + 8)[1024:].hex())
