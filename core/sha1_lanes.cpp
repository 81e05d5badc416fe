#include "sha1_lanes.hpp"

#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#define EZIO_SHA1_X16 1
#endif

namespace ezio {

Sha1::Sha1() {
    SHA1_Init(&ctx_);
}

void Sha1::update(const void* data, std::size_t len) {
    if (len > 0)
        SHA1_Update(&ctx_, data, len);
}

lt::sha1_hash Sha1::final() {
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1_Final(md, &ctx_);
    return lt::sha1_hash(reinterpret_cast<const char*>(md));
}

std::uint64_t Sha1::bytes() const {
    // OpenSSL counts bits in two 32-bit halves.
    return ((static_cast<std::uint64_t>(ctx_.Nh) << 32) | ctx_.Nl) / 8;
}

#ifdef EZIO_SHA1_X16
namespace {

#define EZIO_AVX512 __attribute__((target("avx512f,avx512bw")))

// GCC 12 takes the self-initialised "undefined" vector inside some AVX-512
// intrinsics for an uninitialised read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

// The SHA-1 compression of `blocks` 64-byte blocks for 16 streams, lane i
// of every vector being stream i. h[k][i] is word k of stream i's state.
EZIO_AVX512 void compress_x16(std::uint32_t h[5][kSha1Lanes], const char* const data[kSha1Lanes],
                              std::size_t blocks) {
    const __m512i bswap = _mm512_set4_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203);
    const __m512i k1 = _mm512_set1_epi32(0x5a827999);
    const __m512i k2 = _mm512_set1_epi32(0x6ed9eba1);
    const __m512i k3 = _mm512_set1_epi32(static_cast<int>(0x8f1bbcdcu));
    const __m512i k4 = _mm512_set1_epi32(static_cast<int>(0xca62c1d6u));
    __m512i a = _mm512_loadu_si512(h[0]);
    __m512i b = _mm512_loadu_si512(h[1]);
    __m512i c = _mm512_loadu_si512(h[2]);
    __m512i d = _mm512_loadu_si512(h[3]);
    __m512i e = _mm512_loadu_si512(h[4]);
    for (std::size_t blk = 0; blk < blocks; ++blk) {
        // Row i is stream i's block; transposed, w[t] holds word t of all.
        __m512i r[16];
        for (int i = 0; i < 16; ++i)
            r[i] = _mm512_loadu_si512(data[i] + blk * kSha1Block);
        __m512i t0[16];
        for (int i = 0; i < 16; i += 2) {
            t0[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
            t0[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
        }
        __m512i t1[16];
        for (int i = 0; i < 16; i += 4) {
            t1[i] = _mm512_unpacklo_epi64(t0[i], t0[i + 2]);
            t1[i + 1] = _mm512_unpackhi_epi64(t0[i], t0[i + 2]);
            t1[i + 2] = _mm512_unpacklo_epi64(t0[i + 1], t0[i + 3]);
            t1[i + 3] = _mm512_unpackhi_epi64(t0[i + 1], t0[i + 3]);
        }
        // t1[4g + k], 128-bit lane L: word 4L + k of rows 4g .. 4g + 3.
        __m512i u[16];
        for (int k = 0; k < 4; ++k) {
            u[k] = _mm512_shuffle_i32x4(t1[k], t1[4 + k], 0x88);
            u[4 + k] = _mm512_shuffle_i32x4(t1[k], t1[4 + k], 0xdd);
            u[8 + k] = _mm512_shuffle_i32x4(t1[8 + k], t1[12 + k], 0x88);
            u[12 + k] = _mm512_shuffle_i32x4(t1[8 + k], t1[12 + k], 0xdd);
        }
        __m512i w[16];
        for (int k = 0; k < 4; ++k) {
            w[k] = _mm512_shuffle_epi8(_mm512_shuffle_i32x4(u[k], u[8 + k], 0x88), bswap);
            w[8 + k] = _mm512_shuffle_epi8(_mm512_shuffle_i32x4(u[k], u[8 + k], 0xdd), bswap);
            w[4 + k] = _mm512_shuffle_epi8(_mm512_shuffle_i32x4(u[4 + k], u[12 + k], 0x88), bswap);
            w[12 + k] = _mm512_shuffle_epi8(_mm512_shuffle_i32x4(u[4 + k], u[12 + k], 0xdd), bswap);
        }
        const __m512i a0 = a, b0 = b, c0 = c, d0 = d, e0 = e;
        // One round; the round functions are ternary-logic tables: 0xca is
        // Ch (b ? c : d), 0x96 parity, 0xe8 majority.
#define EZIO_SHA1_ROUND(f_imm, k, t)                                                         \
    do {                                                                                     \
        __m512i wt;                                                                          \
        if ((t) < 16) {                                                                      \
            wt = w[(t)&15];                                                                  \
        } else {                                                                             \
            wt = _mm512_rol_epi32(                                                           \
                _mm512_xor_si512(_mm512_ternarylogic_epi32(w[((t)-3) & 15], w[((t)-8) & 15], \
                                                           w[((t)-14) & 15], 0x96),          \
                                 w[(t)&15]),                                                 \
                1);                                                                          \
            w[(t)&15] = wt;                                                                  \
        }                                                                                    \
        const __m512i f = _mm512_ternarylogic_epi32(b, c, d, f_imm);                         \
        const __m512i tmp = _mm512_add_epi32(_mm512_add_epi32(_mm512_rol_epi32(a, 5), f),    \
                                             _mm512_add_epi32(e, _mm512_add_epi32(wt, k)));  \
        e = d;                                                                               \
        d = c;                                                                               \
        c = _mm512_rol_epi32(b, 30);                                                         \
        b = a;                                                                               \
        a = tmp;                                                                             \
    } while (0)
#define EZIO_SHA1_ROUND5(f, k, t)   \
    EZIO_SHA1_ROUND(f, k, (t));     \
    EZIO_SHA1_ROUND(f, k, (t) + 1); \
    EZIO_SHA1_ROUND(f, k, (t) + 2); \
    EZIO_SHA1_ROUND(f, k, (t) + 3); \
    EZIO_SHA1_ROUND(f, k, (t) + 4)
#define EZIO_SHA1_ROUND20(f, k, t)    \
    EZIO_SHA1_ROUND5(f, k, (t));      \
    EZIO_SHA1_ROUND5(f, k, (t) + 5);  \
    EZIO_SHA1_ROUND5(f, k, (t) + 10); \
    EZIO_SHA1_ROUND5(f, k, (t) + 15)
        EZIO_SHA1_ROUND20(0xca, k1, 0);
        EZIO_SHA1_ROUND20(0x96, k2, 20);
        EZIO_SHA1_ROUND20(0xe8, k3, 40);
        EZIO_SHA1_ROUND20(0x96, k4, 60);
#undef EZIO_SHA1_ROUND20
#undef EZIO_SHA1_ROUND5
#undef EZIO_SHA1_ROUND
        a = _mm512_add_epi32(a, a0);
        b = _mm512_add_epi32(b, b0);
        c = _mm512_add_epi32(c, c0);
        d = _mm512_add_epi32(d, d0);
        e = _mm512_add_epi32(e, e0);
    }
    _mm512_storeu_si512(h[0], a);
    _mm512_storeu_si512(h[1], b);
    _mm512_storeu_si512(h[2], c);
    _mm512_storeu_si512(h[3], d);
    _mm512_storeu_si512(h[4], e);
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

bool cpu_has_avx512() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}

}  // namespace
#endif

bool sha1_lanes_fast() {
#ifdef EZIO_SHA1_X16
    static const bool fast = cpu_has_avx512();
    return fast;
#else
    return false;
#endif
}

bool sha1_update_lanes(Sha1* const* streams, const char* const* data, int n, std::size_t blocks) {
    if (n <= 0 || blocks == 0)
        return false;
#ifdef EZIO_SHA1_X16
    bool aligned = true;
    for (int i = 0; i < n; ++i)
        aligned = aligned && streams[i]->at_block_boundary();
    if (aligned && n >= kSha1MinLanes && n <= kSha1Lanes && sha1_lanes_fast()) {
        std::uint32_t h[5][kSha1Lanes];
        const char* ptr[kSha1Lanes];
        for (int i = 0; i < kSha1Lanes; ++i) {
            // Lanes past n hash stream 0's data again; their state is dropped.
            const SHA_CTX& c = streams[i < n ? i : 0]->ctx_;
            h[0][i] = c.h0;
            h[1][i] = c.h1;
            h[2][i] = c.h2;
            h[3][i] = c.h3;
            h[4][i] = c.h4;
            ptr[i] = data[i < n ? i : 0];
        }
        compress_x16(h, ptr, blocks);
        const std::uint64_t bits = static_cast<std::uint64_t>(blocks) * kSha1Block * 8;
        for (int i = 0; i < n; ++i) {
            SHA_CTX& c = streams[i]->ctx_;
            c.h0 = h[0][i];
            c.h1 = h[1][i];
            c.h2 = h[2][i];
            c.h3 = h[3][i];
            c.h4 = h[4][i];
            const std::uint64_t total = ((static_cast<std::uint64_t>(c.Nh) << 32) | c.Nl) + bits;
            c.Nl = static_cast<SHA_LONG>(total & 0xffffffffu);
            c.Nh = static_cast<SHA_LONG>(total >> 32);
        }
        return true;
    }
#endif
    for (int i = 0; i < n; ++i)
        streams[i]->update(data[i], blocks * kSha1Block);
    return false;
}

}  // namespace ezio
