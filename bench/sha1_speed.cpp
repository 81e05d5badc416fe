// ezio-sha1-speed MIB: the two SHA-1 rates of this CPU that bound how fast a
// receiver can check pieces, in MiB/s on one core, over MIB MiB each:
//   one stream at a time (OpenSSL, SHA-NI where the CPU has it), and
//   sixteen streams side by side (ezio::sha1_update_lanes(), AVX-512 where
//   the CPU has it), as a receiver hashes small pieces that come fast.
// Prints "ONE LANES". The data is sixteen 256 KiB pieces hashed over and
// over: in the cache, as freshly received blocks are.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "sha1_lanes.hpp"

namespace {

constexpr std::size_t kPiece = 256 * 1024;

double rate(std::size_t mib, const std::chrono::steady_clock::duration d) {
    return static_cast<double>(mib) / std::chrono::duration<double>(d).count();
}

}  // namespace

int main(int argc, char** argv) {
    const long arg = argc == 2 ? std::strtol(argv[1], nullptr, 10) : 0;
    if (arg <= 0 || arg > (1 << 20)) {
        std::fprintf(stderr, "usage: ezio-sha1-speed MIB\n");
        return 2;
    }
    const auto mib = static_cast<std::size_t>(arg);
    std::vector<char> data(ezio::kSha1Lanes * kPiece);
    std::mt19937_64 rng(1);
    for (auto& c : data)
        c = static_cast<char>(rng());
    // Each round hashes every piece once: 4 MiB.
    const std::size_t rounds = std::max<std::size_t>(1, mib * (1 << 20) / data.size());
    volatile unsigned char sink = 0;  // keeps the digests from being optimised away

    auto t0 = std::chrono::steady_clock::now();
    for (std::size_t r = 0; r < rounds; ++r) {
        for (int i = 0; i < ezio::kSha1Lanes; ++i) {
            ezio::Sha1 h;
            h.update(data.data() + static_cast<std::size_t>(i) * kPiece, kPiece);
            sink = sink ^ static_cast<unsigned char>(h.final()[0]);
        }
    }
    const double one = rate(rounds * data.size() >> 20, std::chrono::steady_clock::now() - t0);

    t0 = std::chrono::steady_clock::now();
    for (std::size_t r = 0; r < rounds; ++r) {
        ezio::Sha1 streams[ezio::kSha1Lanes];
        ezio::Sha1* ptrs[ezio::kSha1Lanes];
        const char* at[ezio::kSha1Lanes];
        for (int i = 0; i < ezio::kSha1Lanes; ++i) {
            ptrs[i] = &streams[i];
            at[i] = data.data() + static_cast<std::size_t>(i) * kPiece;
        }
        ezio::sha1_update_lanes(ptrs, at, ezio::kSha1Lanes, kPiece / ezio::kSha1Block);
        for (auto& s : streams)
            sink = sink ^ static_cast<unsigned char>(s.final()[0]);
    }
    const double lanes = rate(rounds * data.size() >> 20, std::chrono::steady_clock::now() - t0);
    std::printf("%.1f %.1f\n", one, lanes);
    return 0;
}
