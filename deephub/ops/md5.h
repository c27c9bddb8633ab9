// MD5 (RFC 1321), streaming, for the md5 of TFRecord files in the scan op.
//
// TensorFlow exports no md5 and OpenSSL's headers are not on every machine,
// so this is the RFC's algorithm with its 64 steps unrolled (the same shape
// as coreutils' md5sum, so about its speed). The step lines were generated
// from the RFC's table (T[i] = floor(|sin(i + 1)| * 2^32)); tests compare the
// result with Python's hashlib on every file they scan.

#ifndef DEEPHUB_OPS_MD5_H_
#define DEEPHUB_OPS_MD5_H_

#include <cstdint>
#include <cstring>
#include <string>

namespace deephub {

class Md5 {
 public:
  Md5() : state_{0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u} {}

  void Update(const char* data, size_t n) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(data);
    total_bytes_ += n;
    if (pending_ > 0) {
      size_t take = n < 64 - pending_ ? n : 64 - pending_;
      std::memcpy(block_ + pending_, bytes, take);
      pending_ += take;
      bytes += take;
      n -= take;
      if (pending_ < 64) return;
      Transform(block_, 1);
      pending_ = 0;
    }
    size_t whole = n / 64;
    if (whole > 0) Transform(bytes, whole);
    bytes += whole * 64;
    n -= whole * 64;
    std::memcpy(block_, bytes, n);
    pending_ = n;
  }

  // The digest as 32 lowercase hex digits; the object is spent afterwards.
  std::string HexDigest() {
    uint64_t bits = total_bytes_ * 8;
    uint8_t padding[72] = {0x80};
    size_t pad = (pending_ < 56 ? 56 : 120) - pending_;
    for (int i = 0; i < 8; ++i) padding[pad + i] = static_cast<uint8_t>(bits >> (8 * i));
    Update(reinterpret_cast<const char*>(padding), pad + 8);
    static const char kHex[] = "0123456789abcdef";
    std::string hex(32, '0');
    for (int i = 0; i < 16; ++i) {
      uint8_t byte = static_cast<uint8_t>(state_[i / 4] >> (8 * (i % 4)));
      hex[2 * i] = kHex[byte >> 4];
      hex[2 * i + 1] = kHex[byte & 15];
    }
    return hex;
  }

 private:
  static inline uint32_t F(uint32_t x, uint32_t y, uint32_t z) { return z ^ (x & (y ^ z)); }
  static inline uint32_t G(uint32_t x, uint32_t y, uint32_t z) { return y ^ (z & (x ^ y)); }
  static inline uint32_t H(uint32_t x, uint32_t y, uint32_t z) { return x ^ y ^ z; }
  static inline uint32_t I(uint32_t x, uint32_t y, uint32_t z) { return y ^ (x | ~z); }
  static inline uint32_t Rotl(uint32_t v, int s) { return (v << s) | (v >> (32 - s)); }

  void Transform(const uint8_t* data, size_t blocks) {
    uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3];
    for (; blocks > 0; --blocks, data += 64) {
      uint32_t x[16];
      std::memcpy(x, data, 64);  // MD5 words are little-endian, like x86 and ARM.
      const uint32_t a0 = a, b0 = b, c0 = c, d0 = d;
#define DEEPHUB_MD5_STEP(f, a, b, c, d, x, t, s) \
  a += f(b, c, d) + (x) + (t);                   \
  a = Rotl(a, s) + (b);
    DEEPHUB_MD5_STEP(F, a, b, c, d, x[0], 0xd76aa478u, 7);
    DEEPHUB_MD5_STEP(F, d, a, b, c, x[1], 0xe8c7b756u, 12);
    DEEPHUB_MD5_STEP(F, c, d, a, b, x[2], 0x242070dbu, 17);
    DEEPHUB_MD5_STEP(F, b, c, d, a, x[3], 0xc1bdceeeu, 22);
    DEEPHUB_MD5_STEP(F, a, b, c, d, x[4], 0xf57c0fafu, 7);
    DEEPHUB_MD5_STEP(F, d, a, b, c, x[5], 0x4787c62au, 12);
    DEEPHUB_MD5_STEP(F, c, d, a, b, x[6], 0xa8304613u, 17);
    DEEPHUB_MD5_STEP(F, b, c, d, a, x[7], 0xfd469501u, 22);
    DEEPHUB_MD5_STEP(F, a, b, c, d, x[8], 0x698098d8u, 7);
    DEEPHUB_MD5_STEP(F, d, a, b, c, x[9], 0x8b44f7afu, 12);
    DEEPHUB_MD5_STEP(F, c, d, a, b, x[10], 0xffff5bb1u, 17);
    DEEPHUB_MD5_STEP(F, b, c, d, a, x[11], 0x895cd7beu, 22);
    DEEPHUB_MD5_STEP(F, a, b, c, d, x[12], 0x6b901122u, 7);
    DEEPHUB_MD5_STEP(F, d, a, b, c, x[13], 0xfd987193u, 12);
    DEEPHUB_MD5_STEP(F, c, d, a, b, x[14], 0xa679438eu, 17);
    DEEPHUB_MD5_STEP(F, b, c, d, a, x[15], 0x49b40821u, 22);
    DEEPHUB_MD5_STEP(G, a, b, c, d, x[1], 0xf61e2562u, 5);
    DEEPHUB_MD5_STEP(G, d, a, b, c, x[6], 0xc040b340u, 9);
    DEEPHUB_MD5_STEP(G, c, d, a, b, x[11], 0x265e5a51u, 14);
    DEEPHUB_MD5_STEP(G, b, c, d, a, x[0], 0xe9b6c7aau, 20);
    DEEPHUB_MD5_STEP(G, a, b, c, d, x[5], 0xd62f105du, 5);
    DEEPHUB_MD5_STEP(G, d, a, b, c, x[10], 0x02441453u, 9);
    DEEPHUB_MD5_STEP(G, c, d, a, b, x[15], 0xd8a1e681u, 14);
    DEEPHUB_MD5_STEP(G, b, c, d, a, x[4], 0xe7d3fbc8u, 20);
    DEEPHUB_MD5_STEP(G, a, b, c, d, x[9], 0x21e1cde6u, 5);
    DEEPHUB_MD5_STEP(G, d, a, b, c, x[14], 0xc33707d6u, 9);
    DEEPHUB_MD5_STEP(G, c, d, a, b, x[3], 0xf4d50d87u, 14);
    DEEPHUB_MD5_STEP(G, b, c, d, a, x[8], 0x455a14edu, 20);
    DEEPHUB_MD5_STEP(G, a, b, c, d, x[13], 0xa9e3e905u, 5);
    DEEPHUB_MD5_STEP(G, d, a, b, c, x[2], 0xfcefa3f8u, 9);
    DEEPHUB_MD5_STEP(G, c, d, a, b, x[7], 0x676f02d9u, 14);
    DEEPHUB_MD5_STEP(G, b, c, d, a, x[12], 0x8d2a4c8au, 20);
    DEEPHUB_MD5_STEP(H, a, b, c, d, x[5], 0xfffa3942u, 4);
    DEEPHUB_MD5_STEP(H, d, a, b, c, x[8], 0x8771f681u, 11);
    DEEPHUB_MD5_STEP(H, c, d, a, b, x[11], 0x6d9d6122u, 16);
    DEEPHUB_MD5_STEP(H, b, c, d, a, x[14], 0xfde5380cu, 23);
    DEEPHUB_MD5_STEP(H, a, b, c, d, x[1], 0xa4beea44u, 4);
    DEEPHUB_MD5_STEP(H, d, a, b, c, x[4], 0x4bdecfa9u, 11);
    DEEPHUB_MD5_STEP(H, c, d, a, b, x[7], 0xf6bb4b60u, 16);
    DEEPHUB_MD5_STEP(H, b, c, d, a, x[10], 0xbebfbc70u, 23);
    DEEPHUB_MD5_STEP(H, a, b, c, d, x[13], 0x289b7ec6u, 4);
    DEEPHUB_MD5_STEP(H, d, a, b, c, x[0], 0xeaa127fau, 11);
    DEEPHUB_MD5_STEP(H, c, d, a, b, x[3], 0xd4ef3085u, 16);
    DEEPHUB_MD5_STEP(H, b, c, d, a, x[6], 0x04881d05u, 23);
    DEEPHUB_MD5_STEP(H, a, b, c, d, x[9], 0xd9d4d039u, 4);
    DEEPHUB_MD5_STEP(H, d, a, b, c, x[12], 0xe6db99e5u, 11);
    DEEPHUB_MD5_STEP(H, c, d, a, b, x[15], 0x1fa27cf8u, 16);
    DEEPHUB_MD5_STEP(H, b, c, d, a, x[2], 0xc4ac5665u, 23);
    DEEPHUB_MD5_STEP(I, a, b, c, d, x[0], 0xf4292244u, 6);
    DEEPHUB_MD5_STEP(I, d, a, b, c, x[7], 0x432aff97u, 10);
    DEEPHUB_MD5_STEP(I, c, d, a, b, x[14], 0xab9423a7u, 15);
    DEEPHUB_MD5_STEP(I, b, c, d, a, x[5], 0xfc93a039u, 21);
    DEEPHUB_MD5_STEP(I, a, b, c, d, x[12], 0x655b59c3u, 6);
    DEEPHUB_MD5_STEP(I, d, a, b, c, x[3], 0x8f0ccc92u, 10);
    DEEPHUB_MD5_STEP(I, c, d, a, b, x[10], 0xffeff47du, 15);
    DEEPHUB_MD5_STEP(I, b, c, d, a, x[1], 0x85845dd1u, 21);
    DEEPHUB_MD5_STEP(I, a, b, c, d, x[8], 0x6fa87e4fu, 6);
    DEEPHUB_MD5_STEP(I, d, a, b, c, x[15], 0xfe2ce6e0u, 10);
    DEEPHUB_MD5_STEP(I, c, d, a, b, x[6], 0xa3014314u, 15);
    DEEPHUB_MD5_STEP(I, b, c, d, a, x[13], 0x4e0811a1u, 21);
    DEEPHUB_MD5_STEP(I, a, b, c, d, x[4], 0xf7537e82u, 6);
    DEEPHUB_MD5_STEP(I, d, a, b, c, x[11], 0xbd3af235u, 10);
    DEEPHUB_MD5_STEP(I, c, d, a, b, x[2], 0x2ad7d2bbu, 15);
    DEEPHUB_MD5_STEP(I, b, c, d, a, x[9], 0xeb86d391u, 21);
#undef DEEPHUB_MD5_STEP
      a += a0;
      b += b0;
      c += c0;
      d += d0;
    }
    state_[0] = a;
    state_[1] = b;
    state_[2] = c;
    state_[3] = d;
  }

  uint32_t state_[4];
  uint8_t block_[64];
  size_t pending_ = 0;
  uint64_t total_bytes_ = 0;
};

}  // namespace deephub

#endif  // DEEPHUB_OPS_MD5_H_
