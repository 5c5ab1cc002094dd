"""SipHash-2-4 keyed by two 64-bit words, the hash of TensorFlow's
tf.strings.to_hash_bucket_strong (highwayhash's SipHash), which Keras's Hashing uses when
given a salt: the same bins as Keras need the same 64-bit hash, so it is written out here in
Python integers (masked to 64 bits)."""

M64 = (1 << 64) - 1
# "somepseudorandomlygeneratedbytes", the initial state of every SipHash
INIT = (0x736f6d6570736575, 0x646f72616e646f6d, 0x6c7967656e657261, 0x7465646279746573)


def _rot(v, r):
    return ((v << r) | (v >> (64 - r))) & M64


def _rounds(v, n):
    v0, v1, v2, v3 = v
    for _ in range(n):
        v0 = (v0 + v1) & M64
        v1 = _rot(v1, 13) ^ v0
        v0 = _rot(v0, 32)
        v2 = (v2 + v3) & M64
        v3 = _rot(v3, 16) ^ v2
        v0 = (v0 + v3) & M64
        v3 = _rot(v3, 21) ^ v0
        v2 = (v2 + v1) & M64
        v1 = _rot(v1, 17) ^ v2
        v2 = _rot(v2, 32)
    return [v0, v1, v2, v3]


def siphash64(key, data):
    """SipHash-2-4 of the bytes `data` under key = (k0, k1), as an unsigned 64-bit int."""
    k0, k1 = (int(k) & M64 for k in key)
    v = [INIT[0] ^ k0, INIT[1] ^ k1, INIT[2] ^ k0, INIT[3] ^ k1]
    # the last word holds the tail bytes and the length's low byte at the top
    tail = len(data) & ~7
    words = [int.from_bytes(data[i:i + 8], "little") for i in range(0, tail, 8)]
    words.append(int.from_bytes(data[tail:], "little") | ((len(data) & 0xff) << 56))
    for m in words:
        v[3] ^= m
        v = _rounds(v, 2)
        v[0] ^= m
    v[2] ^= 0xff
    v = _rounds(v, 4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def strong_hash_bucket(value, num_buckets, key):
    """tf.strings.to_hash_bucket_strong of one string (str or bytes) under key (k0, k1)."""
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return siphash64(key, data) % num_buckets
