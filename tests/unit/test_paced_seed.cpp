// Paced seeding (core/paced_seed.hpp) between bare libtorrent sessions on
// 127.0.0.1, peer exchange, DHT and Local Service Discovery off:
// - introductions: a pacing seed tells each new receiver where the
//   receivers it already paces listen, and the newcomer connects to them;
//   without the plugin, two receivers given only the seed never meet;
// - a receiver of large pieces asks its seed for many blocks per pick.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <libtorrent/add_torrent_params.hpp>
#include <libtorrent/alert_types.hpp>
#include <libtorrent/bencode.hpp>
#include <libtorrent/create_torrent.hpp>
#include <libtorrent/hasher.hpp>
#include <libtorrent/peer_info.hpp>
#include <libtorrent/session.hpp>
#include <libtorrent/session_stats.hpp>
#include <libtorrent/settings_pack.hpp>
#include <libtorrent/torrent_flags.hpp>
#include <libtorrent/torrent_handle.hpp>
#include <libtorrent/torrent_info.hpp>
#include <libtorrent/torrent_status.hpp>

#include "paced_seed.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

lt::settings_pack settings() {
    lt::settings_pack sp;
    sp.set_str(lt::settings_pack::listen_interfaces, "127.0.0.1:0");
    sp.set_bool(lt::settings_pack::enable_dht, false);
    sp.set_bool(lt::settings_pack::enable_lsd, false);
    sp.set_bool(lt::settings_pack::enable_upnp, false);
    sp.set_bool(lt::settings_pack::enable_natpmp, false);
    sp.set_bool(lt::settings_pack::enable_outgoing_utp, false);
    sp.set_bool(lt::settings_pack::enable_incoming_utp, false);
    sp.set_bool(lt::settings_pack::allow_multiple_connections_per_ip, true);
    sp.set_int(lt::settings_pack::alert_mask, 0);
    // As eziod does (core/engine.cpp): a first attempt that fails on a
    // loaded machine is retried within seconds, not a minute.
    sp.set_int(lt::settings_pack::peer_connect_timeout, 5);
    sp.set_int(lt::settings_pack::min_reconnect_time, 1);
    // As eziod does: block by block, not whole pieces from a fast peer.
    sp.set_int(lt::settings_pack::whole_pieces_threshold, 0);
    return sp;
}

struct Swarm {
    fs::path dir;
    std::shared_ptr<const lt::torrent_info> info;
    std::vector<std::unique_ptr<lt::session>> sessions;
    std::vector<lt::torrent_handle> torrents;
    int seed_rate;  // the seed's upload limit in bytes/s (0: none)
    ezio::PacingConfig pacing;

    explicit Swarm(const fs::path& d, std::int64_t size = 4 << 20, int piece = 65536,
                   int rate = 128 << 10, ezio::PacingConfig config = {})
        : dir(d), seed_rate(rate), pacing(config) {
        std::vector<char> data(static_cast<std::size_t>(size));
        std::mt19937_64 rng(11);
        for (auto& c : data)
            c = static_cast<char>(rng());
        fs::create_directories(dir / "seed");
        std::ofstream(dir / "seed" / "image.bin", std::ios::binary)
            .write(data.data(), static_cast<std::streamsize>(data.size()));
        // Hashed here, not read back: every piece is a whole piece.
        lt::file_storage files;
        files.add_file("image.bin", size);
        lt::create_torrent ct(files, piece, lt::create_torrent::v1_only);
        for (int p = 0; p < ct.num_pieces(); ++p)
            ct.set_hash(
                lt::piece_index_t{p},
                lt::hasher(data.data() + static_cast<std::ptrdiff_t>(p) * piece, piece).final());
        std::vector<char> buf;
        lt::bencode(std::back_inserter(buf), ct.generate());
        info = std::make_shared<lt::torrent_info>(buf, lt::from_span);
    }

    // A node of the swarm: the seed (slow, so nobody finishes while we
    // look) or a receiver given `peers`.
    lt::torrent_handle add(bool seed, bool paced, const std::vector<lt::tcp::endpoint>& peers) {
        sessions.push_back(std::make_unique<lt::session>(settings()));
        lt::add_torrent_params atp;
        atp.ti = std::make_shared<lt::torrent_info>(*info);
        atp.save_path = seed ? (dir / "seed").string()
                             : (dir / ("r" + std::to_string(sessions.size()))).string();
        atp.flags |= lt::torrent_flags::disable_pex;
        if (seed) {
            atp.flags |= lt::torrent_flags::seed_mode;
            atp.upload_limit = seed_rate;  // a torrent's limit covers local peers too
        }
        atp.peers = peers;
        if (paced) {
            atp.extensions.push_back(
                [ti = info, c = pacing](const lt::torrent_handle& h, lt::client_data_t) {
                    return ezio::make_paced_plugin(h, ti, c);
                });
        }
        torrents.push_back(sessions.back()->add_torrent(std::move(atp)));
        return torrents.back();
    }

    lt::tcp::endpoint endpoint(std::size_t node) const {
        return {lt::make_address("127.0.0.1"),
                static_cast<std::uint16_t>(sessions.at(node)->listen_port())};
    }
};

// Polls `done` for up to `limit`; true once it holds.
template <typename F>
bool wait_for(F done, std::chrono::milliseconds limit) {
    const auto end = Clock::now() + limit;
    while (Clock::now() < end) {
        if (done())
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return done();
}

// `h` has a connection to `ep` that finished the BitTorrent handshake (not
// one still connecting).
bool connected_to(const lt::torrent_handle& h, const lt::tcp::endpoint& ep) {
    std::vector<lt::peer_info> peers;
    h.get_peer_info(peers);
    for (const auto& p : peers)
        if (p.ip == ep && !(p.flags & (lt::peer_info::connecting | lt::peer_info::handshake)))
            return true;
    return false;
}

// Adds the seed (node 0) and waits until it listens and seeds.
void add_seed(Swarm& s, bool paced) {
    const auto seed = s.add(true, paced, {});
    EXPECT_TRUE(wait_for(
        [&] {
            return s.sessions[0]->listen_port() > 0 &&
                   seed.status().state == lt::torrent_status::seeding;
        },
        std::chrono::seconds(10)));
}

struct Result {
    bool r1_met_seed = false;
    bool r2_met_seed = false;
    bool r2_dialed_r1 = false;  // R2 connected out to R1's listen port
    int r1_peers = 0;
};

Result run(bool paced) {
    const ezio::test::TempDir tmp;
    const fs::path& dir = tmp.path;
    Result out;
    {
        Swarm s(dir);
        add_seed(s, paced);
        const auto r1 = s.add(false, paced, {s.endpoint(0)});
        out.r1_met_seed =
            wait_for([&] { return connected_to(r1, s.endpoint(0)); }, std::chrono::seconds(10));
        const auto r2 = s.add(false, paced, {s.endpoint(0)});
        out.r2_met_seed =
            wait_for([&] { return connected_to(r2, s.endpoint(0)); }, std::chrono::seconds(10));
        // Introduced, R2 dials R1 within a round trip and a libtorrent
        // tick; 3 s is far more than that, and far less than the download
        // (4 MiB at 128 KiB/s from the seed).
        out.r2_dialed_r1 =
            wait_for([&] { return connected_to(r2, s.endpoint(1)); }, std::chrono::seconds(3));
        // R1's side of that connection, counted once R1 has seen its
        // handshake too (its status lags a little).
        wait_for([&] { return r1.status().num_peers >= 2; },
                 std::chrono::seconds(out.r2_dialed_r1 ? 3 : 0));
        out.r1_peers = r1.status().num_peers;
        EXPECT_FALSE(r1.status().is_seeding) << "the swarm finished before we looked";
    }
    return out;
}

}  // namespace

TEST(PacedSeed, SeedIntroducesANewReceiverToTheOthers) {
    const Result r = run(true);
    ASSERT_TRUE(r.r1_met_seed);
    ASSERT_TRUE(r.r2_met_seed);
    EXPECT_TRUE(r.r2_dialed_r1);
    EXPECT_EQ(r.r1_peers, 2);  // the seed and R2
}

// The control: the same swarm without the plugin (and without peer
// exchange) leaves the two receivers apart, so the test above sees the
// introduction and nothing else.
TEST(PacedSeed, WithoutPacingReceiversGivenOnlyTheSeedDoNotMeet) {
    const Result r = run(false);
    ASSERT_TRUE(r.r1_met_seed);
    ASSERT_TRUE(r.r2_met_seed);
    EXPECT_FALSE(r.r2_dialed_r1);
    EXPECT_EQ(r.r1_peers, 1);
}

namespace {

// A session counter, from a stats snapshot.
std::int64_t session_counter(lt::session& s, const char* name) {
    const int idx = lt::find_metric_idx(name);
    EXPECT_GE(idx, 0) << name;
    s.post_session_stats();
    const auto end = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < end) {
        s.wait_for_alert(std::chrono::milliseconds(100));
        std::vector<lt::alert*> alerts;
        s.pop_alerts(&alerts);
        for (lt::alert* a : alerts)
            if (auto* st = lt::alert_cast<lt::session_stats_alert>(a))
                return st->counters()[static_cast<std::size_t>(idx)];
    }
    ADD_FAILURE() << "no session stats";
    return -1;
}

// Picks the receiver's libtorrent made for blocks that arrived, in a whole
// download of 8 MiB in 2 MiB pieces (512 blocks, 128 to a piece) from a
// pacing seed.
std::int64_t picks_downloading_from_seed(int seed_request_blocks) {
    const ezio::test::TempDir tmp;
    ezio::PacingConfig pacing;
    pacing.seed_request_blocks = seed_request_blocks;
    Swarm s(tmp.path, 8 << 20, 2 << 20, 0, pacing);
    add_seed(s, true);
    const auto r = s.add(false, true, {s.endpoint(0)});
    EXPECT_TRUE(wait_for([&] { return r.status().is_seeding; }, std::chrono::seconds(30)))
        << "the receiver did not complete the download";
    return session_counter(*s.sessions[1], "picker.incoming_piece_picks");
}

}  // namespace

TEST(PacedSeed, ReceiverAsksItsSeedForManyBlocksPerPick) {
    // 64 blocks at a time: 8 picks would do (9 measured). Block by block,
    // a pick per block or two that arrives (256 measured).
    const std::int64_t batched = picks_downloading_from_seed(64);
    const std::int64_t single = picks_downloading_from_seed(0);
    EXPECT_LE(batched, 32) << "block by block: " << single;
    EXPECT_GE(single, 128) << "64 blocks a pick: " << batched;
}
