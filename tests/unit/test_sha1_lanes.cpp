// Sha1 and sha1_update_lanes(): every stream's digest is the SHA-1 of its
// bytes (checked against libtorrent's hasher), whatever the number of lanes,
// the alignment of the data and the way a stream is split into updates.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <libtorrent/hasher.hpp>

#include "sha1_lanes.hpp"

namespace {

std::vector<char> random_bytes(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<char> v(n);
    for (auto& c : v)
        c = static_cast<char>(rng());
    return v;
}

std::string hex(const lt::sha1_hash& h) {
    static const char digits[] = "0123456789abcdef";
    std::string s;
    for (const char c : h) {
        s += digits[(static_cast<unsigned char>(c) >> 4) & 15];
        s += digits[static_cast<unsigned char>(c) & 15];
    }
    return s;
}

lt::sha1_hash reference(const char* data, std::size_t n) {
    return lt::hasher(data, static_cast<int>(n)).final();
}

TEST(Sha1, KnownDigests) {
    ezio::Sha1 empty;
    EXPECT_EQ(hex(empty.final()), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    ezio::Sha1 abc;
    abc.update("abc", 3);
    EXPECT_EQ(abc.bytes(), 3u);
    EXPECT_EQ(hex(abc.final()), "a9993e364706816aba3e25717850c26c9cd0d89d");
}

// Every lane count from 1 to 16 (below kSha1MinLanes one by one, from it on
// the wide path where the CPU has it), streams at different offsets into
// unaligned buffers, each with its own prefix before the lanes and its own
// tail after them.
TEST(Sha1Lanes, EveryLaneCountMatchesSha1) {
    const std::size_t blocks = 37;
    for (int n = 1; n <= ezio::kSha1Lanes; ++n) {
        std::vector<std::vector<char>> bufs;
        std::vector<ezio::Sha1> streams(static_cast<std::size_t>(n));
        std::vector<ezio::Sha1*> ptrs;
        std::vector<const char*> data;
        for (int i = 0; i < n; ++i) {
            const std::size_t prefix = 64 * static_cast<std::size_t>(i % 3);
            const std::size_t tail = static_cast<std::size_t>(i * 7 % 64);
            const std::size_t skew = static_cast<std::size_t>(i % 5);  // unaligned data
            bufs.push_back(random_bytes(skew + prefix + blocks * 64 + tail,
                                        static_cast<std::uint32_t>(n * 100 + i)));
            const char* p = bufs.back().data() + skew;
            streams[static_cast<std::size_t>(i)].update(p, prefix);
            ptrs.push_back(&streams[static_cast<std::size_t>(i)]);
            data.push_back(p + prefix);
        }
        ezio::sha1_update_lanes(ptrs.data(), data.data(), n, blocks);
        for (int i = 0; i < n; ++i) {
            const auto& buf = bufs[static_cast<std::size_t>(i)];
            const std::size_t skew = static_cast<std::size_t>(i % 5);
            const std::size_t total = buf.size() - skew;
            auto& s = streams[static_cast<std::size_t>(i)];
            s.update(data[static_cast<std::size_t>(i)] + blocks * 64,
                     total - 64 * static_cast<std::size_t>(i % 3) - blocks * 64);
            EXPECT_EQ(s.bytes(), total) << "n=" << n << " lane " << i;
            EXPECT_EQ(s.final(), reference(buf.data() + skew, total)) << "n=" << n << " lane " << i;
        }
    }
}

// A stream updated by the lanes many times in a row, with single updates in
// between, as a piece is when its blocks are hashed as they are written.
TEST(Sha1Lanes, RepeatedUpdatesOfOneStreamSet) {
    const int n = ezio::kSha1Lanes;
    const std::size_t piece = 256 * 1024;
    std::vector<std::vector<char>> bufs;
    std::vector<ezio::Sha1> streams(n);
    std::vector<ezio::Sha1*> ptrs;
    for (int i = 0; i < n; ++i) {
        bufs.push_back(random_bytes(piece, static_cast<std::uint32_t>(i + 1)));
        ptrs.push_back(&streams[static_cast<std::size_t>(i)]);
    }
    for (std::size_t at = 0; at < piece; at += 16 * 1024) {
        if (at == 64 * 1024) {
            // A round of single updates, a whole block each.
            for (int i = 0; i < n; ++i)
                streams[static_cast<std::size_t>(i)].update(
                    bufs[static_cast<std::size_t>(i)].data() + at, 16 * 1024);
            continue;
        }
        std::vector<const char*> data;
        for (int i = 0; i < n; ++i)
            data.push_back(bufs[static_cast<std::size_t>(i)].data() + at);
        ezio::sha1_update_lanes(ptrs.data(), data.data(), n, 16 * 1024 / 64);
    }
    for (int i = 0; i < n; ++i)
        EXPECT_EQ(streams[static_cast<std::size_t>(i)].final(),
                  reference(bufs[static_cast<std::size_t>(i)].data(), piece))
            << "lane " << i;
}

// A stream that is not at a block boundary still gets the right digest (the
// lanes then hash one by one).
TEST(Sha1Lanes, StreamOffABlockBoundaryIsStillRight) {
    const int n = ezio::kSha1Lanes;
    std::vector<std::vector<char>> bufs;
    std::vector<ezio::Sha1> streams(n);
    std::vector<ezio::Sha1*> ptrs;
    std::vector<const char*> data;
    for (int i = 0; i < n; ++i) {
        bufs.push_back(random_bytes(3 + 64 * 8, static_cast<std::uint32_t>(i + 50)));
        auto& s = streams[static_cast<std::size_t>(i)];
        s.update(bufs.back().data(), i == 7 ? 3 : 0);
        ptrs.push_back(&s);
        data.push_back(bufs.back().data() + (i == 7 ? 3 : 0));
    }
    ezio::sha1_update_lanes(ptrs.data(), data.data(), n, 8);
    for (int i = 0; i < n; ++i)
        EXPECT_EQ(streams[static_cast<std::size_t>(i)].final(),
                  reference(bufs[static_cast<std::size_t>(i)].data(), i == 7 ? 3 + 64 * 8 : 64 * 8))
            << "lane " << i;
}

}  // namespace
