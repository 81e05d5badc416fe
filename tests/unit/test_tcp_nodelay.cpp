// TCP_NODELAY on peer sockets (tcp_nodelay.hpp): the socket is found by its
// endpoints among the process's descriptors, only that one is changed, and a
// paced deploy between two Engines runs with Nagle off at both ends.
#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include <libtorrent/bencode.hpp>
#include <libtorrent/create_torrent.hpp>

#include "engine.hpp"
#include "tcp_nodelay.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;

namespace {

class Fd {
  public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    ~Fd() {
        if (fd_ >= 0)
            ::close(fd_);
    }
    int get() const { return fd_; }

  private:
    int fd_;
};

int nodelay_of(int fd) {
    int v = -1;
    socklen_t len = sizeof v;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) != 0)
        return -1;
    return v;
}

lt::tcp::endpoint endpoint(int fd, bool peer) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int rc = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                        : ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    EXPECT_EQ(rc, 0) << std::strerror(errno);
    lt::tcp::endpoint ep;
    std::memcpy(ep.data(), &ss, len);
    ep.resize(len);
    return ep;
}

// A connected pair over loopback: {client, accepted}. `family` is the
// listener's: AF_INET6 listens on :: (dual stack) and sees the IPv4 client
// as ::ffff:127.0.0.1.
std::pair<Fd, Fd> connected_pair(int family) {
    Fd listener(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_GE(listener.get(), 0);
    sockaddr_storage ss{};
    socklen_t len;
    if (family == AF_INET6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_any;
        len = sizeof *a;
        const int off = 0;
        ::setsockopt(listener.get(), IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    }
    EXPECT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&ss), len), 0)
        << std::strerror(errno);
    EXPECT_EQ(::listen(listener.get(), 1), 0);
    len = sizeof ss;
    ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&ss), &len);
    const std::uint16_t port = family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                                  : reinterpret_cast<sockaddr_in*>(&ss)->sin_port;
    Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = port;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&to), sizeof to), 0)
        << std::strerror(errno);
    Fd accepted(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    EXPECT_GE(accepted.get(), 0) << std::strerror(errno);
    return {std::move(client), std::move(accepted)};
}

}  // namespace

TEST(TcpNoDelay, SetsItOnTheSocketWithBothEndpointsAndNoOther) {
    auto [client, accepted] = connected_pair(AF_INET);
    ASSERT_EQ(nodelay_of(client.get()), 0);
    ASSERT_EQ(nodelay_of(accepted.get()), 0);

    EXPECT_EQ(ezio::set_tcp_nodelay(endpoint(client.get(), false), endpoint(client.get(), true)),
              0);
    EXPECT_EQ(nodelay_of(client.get()), 1);
    EXPECT_EQ(nodelay_of(accepted.get()), 0) << "the other end of the connection was changed";

    EXPECT_EQ(
        ezio::set_tcp_nodelay(endpoint(accepted.get(), false), endpoint(accepted.get(), true)), 0);
    EXPECT_EQ(nodelay_of(accepted.get()), 1);
}

TEST(TcpNoDelay, MatchesAnIpv4PeerOnADualStackSocket) {
    if (Fd probe(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0)); probe.get() < 0)
        GTEST_SKIP() << "no IPv6 sockets on this machine: " << std::strerror(errno);
    auto [client, accepted] = connected_pair(AF_INET6);
    // libtorrent names the peer 127.0.0.1; the socket says ::ffff:127.0.0.1.
    const auto local = endpoint(accepted.get(), false);
    ASSERT_TRUE(local.address().is_v6());
    const lt::tcp::endpoint local_v4(lt::make_address("127.0.0.1"), local.port());
    const auto remote = endpoint(client.get(), false);
    ASSERT_TRUE(remote.address().is_v4());
    EXPECT_EQ(ezio::set_tcp_nodelay(local_v4, remote), 0);
    EXPECT_EQ(nodelay_of(accepted.get()), 1);
    EXPECT_EQ(nodelay_of(client.get()), 0);
}

TEST(TcpNoDelay, NoSocketWithTheEndpointsIsENOENT) {
    auto [client, accepted] = connected_pair(AF_INET);
    const auto local = endpoint(client.get(), false);
    // Right local endpoint, wrong peer port.
    const auto remote = endpoint(client.get(), true);
    const lt::tcp::endpoint other(remote.address(), static_cast<unsigned short>(remote.port() + 1));
    EXPECT_EQ(ezio::set_tcp_nodelay(local, other), ENOENT);
    EXPECT_EQ(nodelay_of(client.get()), 0);
}

TEST(TcpNoDelay, ReportSumsFailuresUntilTaken) {
    ezio::NoDelayReport report;
    EXPECT_FALSE(report.take());
    report.failed("first");
    report.failed("second");
    const auto text = report.take();
    ASSERT_TRUE(text);
    EXPECT_NE(text->find("2 paced peer connection(s)"), std::string::npos) << *text;
    EXPECT_NE(text->find("second"), std::string::npos) << *text;
    EXPECT_FALSE(report.take());
}

namespace {

class Recorder : public ezio::EngineObserver {
  public:
    void job_added(const ezio::JobStatus& s) override { last[s.id] = s; }
    void job_changed(const ezio::JobStatus& s) override { last[s.id] = s; }
    void job_finished(const ezio::JobStatus& s, bool ok, const std::string& msg) override {
        last[s.id] = s;
        finished[s.id] = {ok, msg};
    }
    void job_log(const ezio::JobStatus&, const std::string& msg) override { logs.push_back(msg); }
    std::map<ezio::JobId, ezio::JobStatus> last;
    std::map<ezio::JobId, std::pair<bool, std::string>> finished;
    std::vector<std::string> logs;
};

void write_all(const fs::path& p, const std::vector<char>& data) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

// TCP_NODELAY of every connected TCP socket of this process with `port` at
// one end, keyed by "local->remote".
std::map<std::string, int> sockets_on_port(int port) {
    std::map<std::string, int> out;
    DIR* dir = ::opendir("/proc/self/fd");
    if (!dir)
        return out;
    while (const dirent* e = ::readdir(dir)) {
        const int fd = std::atoi(e->d_name);
        if (fd <= 2 || fd == ::dirfd(dir))
            continue;
        sockaddr_storage a{}, b{};
        socklen_t la = sizeof a, lb = sizeof b;
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &la) != 0 ||
            ::getpeername(fd, reinterpret_cast<sockaddr*>(&b), &lb) != 0 || a.ss_family != AF_INET)
            continue;
        const auto* sa = reinterpret_cast<sockaddr_in*>(&a);
        const auto* sb = reinterpret_cast<sockaddr_in*>(&b);
        if (ntohs(sa->sin_port) != port && ntohs(sb->sin_port) != port)
            continue;
        out[std::to_string(ntohs(sa->sin_port)) + "->" + std::to_string(ntohs(sb->sin_port))] =
            nodelay_of(fd);
    }
    ::closedir(dir);
    return out;
}

// Two Engines in this process, a rate-limited deploy: the TCP_NODELAY of
// both ends of the connection (the receiver's and the seed's) once data
// flows, and what the Engines logged.
struct DeploySockets {
    bool completed = false;
    std::map<std::string, int> seen;
    std::vector<std::string> logs;
};

DeploySockets deploy_and_look(bool paced) {
    DeploySockets out;
    const ezio::test::TempDir tmp;
    const fs::path& dir = tmp.path;

    constexpr std::size_t kSize = 4 << 20;
    std::vector<char> image(kSize);
    std::mt19937_64 rng(7);
    for (auto& c : image)
        c = static_cast<char>(rng());
    fs::create_directories(dir / "t" / "sda1");
    write_all(dir / "t" / "sda1" / "00000000000000000000000000000000", image);
    lt::file_storage files;
    lt::add_files(files, (dir / "t" / "sda1").string());
    lt::create_torrent ct(files, 65536, lt::create_torrent::v1_only);
    lt::set_piece_hashes(ct, (dir / "t").string());
    std::vector<char> torrent;
    lt::bencode(std::back_inserter(torrent), ct.generate());
    write_all(dir / "source.img", image);
    write_all(dir / "target.img", std::vector<char>(kSize, 0));

    ezio::EngineConfig c;
    c.listen_interface = "127.0.0.1";
    c.listen_port = 0;
    c.local_discovery = false;
    c.io_threads = 1;
    c.paced_seeding = paced;
    Recorder rs, rr;
    ezio::Engine seeder(c, &rs), receiver(c, &rr);
    seeder.seed(torrent, (dir / "source.img").string(), ezio::JobOptions{});
    const auto step = [&](std::initializer_list<ezio::Engine*> engines) {
        std::vector<pollfd> fds;
        for (auto* e : engines)
            fds.push_back({e->event_fd(), POLLIN, 0});
        ::poll(fds.data(), fds.size(), 50);
        for (auto* e : engines)
            e->process();
    };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (seeder.listen_port() <= 0 && std::chrono::steady_clock::now() < deadline)
        step({&seeder});
    EXPECT_GT(seeder.listen_port(), 0);
    if (seeder.listen_port() <= 0)
        return out;

    ezio::JobOptions opts;
    opts.peers = {"127.0.0.1:" + std::to_string(seeder.listen_port())};
    opts.max_download_rate = 1 << 20;  // 4 s: time to look while data flows
    const auto job = receiver.deploy(torrent, (dir / "target.img").string(), opts, true);

    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!rr.finished.count(job) && std::chrono::steady_clock::now() < end) {
        step({&seeder, &receiver});
        if (out.seen.empty() && rr.last.count(job) && rr.last[job].bytes_done > 0)
            out.seen = sockets_on_port(seeder.listen_port());
    }
    EXPECT_TRUE(rr.finished.count(job)) << "the deploy did not finish";
    out.completed = rr.finished.count(job) && rr.finished[job].first;
    for (const auto& r : {&rs, &rr})
        out.logs.insert(out.logs.end(), r->logs.begin(), r->logs.end());
    return out;
}

// The deploy completed, and its one connection was seen from both ends,
// each with TCP_NODELAY `want`.
void expect_both_ends(const DeploySockets& d, int want) {
    EXPECT_TRUE(d.completed);
    ASSERT_EQ(d.seen.size(), 2u);
    for (const auto& [name, nodelay] : d.seen)
        EXPECT_EQ(nodelay, want) << "TCP_NODELAY of " << name;
}

}  // namespace

TEST(TcpNoDelay, BothEndsOfAPacedConnectionHaveNagleOff) {
    const auto d = deploy_and_look(true);
    expect_both_ends(d, 1);
    for (const auto& line : d.logs)
        EXPECT_EQ(line.find("Nagle"), std::string::npos) << line;
}

// Without pacing, small messages do not drive the transfer: Nagle stays on
// and merges them (fewer packets in a swarm).
TEST(TcpNoDelay, PlainBitTorrentConnectionsKeepNagle) {
    expect_both_ends(deploy_and_look(false), 0);
}
