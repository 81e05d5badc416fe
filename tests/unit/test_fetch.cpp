// core/fetch and core/torrent_fetch: local files, standard input, and http:// and tftp:// against
// tiny servers on 127.0.0.1 that run inside the test (no network, no
// external tools).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "error.hpp"
#include "fetch.hpp"
#include "torrent_fetch.hpp"

namespace ezio {
namespace {

using namespace std::chrono_literals;

struct Failure {
    Errc code;
    std::string message;
};

Failure failure_of(const std::string& location, const FetchOptions& options = {}) {
    try {
        auto data = fetch(location, options);
        ADD_FAILURE() << location << " fetched " << data.size() << " bytes";
    } catch (const Error& e) {
        return {e.code(), e.what()};
    }
    return {Errc::Failed, ""};
}

std::string as_string(const std::vector<char>& v) {
    return std::string(v.begin(), v.end());
}

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>('a' + i % 26);
    return s;
}

// Binds a socket of `type` to 127.0.0.1 on a free port.
int bound_socket(int type, std::uint16_t& port) {
    int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port = ntohs(addr.sin_port);
    return fd;
}

bool send_all(int fd, const std::string& data) {
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

// A minimal HTTP/1.0 server: one thread per connection, routes by path.
class HttpServer {
  public:
    // Handler writes a complete response to the socket; `stop` tells it to
    // give up (for the stalling route).
    using Handler = std::function<void(int fd, const std::atomic<bool>& stop)>;

    HttpServer() {
        fd_ = bound_socket(SOCK_STREAM, port_);
        EXPECT_EQ(::listen(fd_, 16), 0);
        thread_ = std::thread([this] { serve(); });
    }
    // Serves `routes` on a socket that is bound but not listening yet: until
    // now, connections to it were refused.
    HttpServer(int bound_fd, std::map<std::string, Handler> routes)
        : fd_(bound_fd), routes_(std::move(routes)) {
        sockaddr_in addr{};
        socklen_t len = sizeof addr;
        EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
        port_ = ntohs(addr.sin_port);
        EXPECT_EQ(::listen(fd_, 16), 0);
        thread_ = std::thread([this] { serve(); });
    }
    ~HttpServer() {
        stop_ = true;
        thread_.join();
        for (auto& t : connections_)
            t.join();
        ::close(fd_);
    }
    void route(const std::string& path, Handler h) { routes_[path] = std::move(h); }
    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }
    std::uint16_t port() const { return port_; }

    static void reply(int fd, const std::string& status, const std::string& body,
                      const std::string& extra_headers = "", bool content_length = true) {
        std::string head = "HTTP/1.0 " + status + "\r\n" + extra_headers;
        if (content_length)
            head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
        send_all(fd, head + "Connection: close\r\n\r\n" + body);
    }

  private:
    void serve() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0)
                continue;
            int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0)
                continue;
            connections_.emplace_back([this, c] { handle(c); });
        }
    }
    void handle(int c) {
        std::string request;
        char buf[4096];
        while (request.find("\r\n\r\n") == std::string::npos) {
            ssize_t n = ::recv(c, buf, sizeof buf, 0);
            if (n <= 0)
                break;
            request.append(buf, static_cast<std::size_t>(n));
        }
        // "GET /path HTTP/1.1"
        auto sp1 = request.find(' ');
        auto sp2 = request.find(' ', sp1 + 1);
        std::string path = sp1 == std::string::npos ? "" : request.substr(sp1 + 1, sp2 - sp1 - 1);
        auto it = routes_.find(path);
        if (it == routes_.end())
            reply(c, "404 Not Found", "no such thing\n");
        else
            it->second(c, stop_);
        ::close(c);
    }

    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::map<std::string, Handler> routes_;
    std::thread thread_;
    std::vector<std::thread> connections_;
};

// A minimal RFC 1350 TFTP server for read requests, ignoring options (so the
// client must fall back to 512-byte blocks, as with the simplest PXE
// servers). Files not in `files` get error 1, "File not found".
class TftpServer {
  public:
    explicit TftpServer(std::map<std::string, std::string> files) : files_(std::move(files)) {
        fd_ = bound_socket(SOCK_DGRAM, port_);
        thread_ = std::thread([this] { serve(); });
    }
    ~TftpServer() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
    }
    std::string url(const std::string& name) const {
        return "tftp://127.0.0.1:" + std::to_string(port_) + "/" + name;
    }

  private:
    bool wait_readable(std::chrono::milliseconds timeout) {
        pollfd p{fd_, POLLIN, 0};
        return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
    }
    void serve() {
        while (!stop_) {
            if (!wait_readable(50ms))
                continue;
            char buf[1024];
            sockaddr_in peer{};
            socklen_t len = sizeof peer;
            ssize_t n =
                ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len);
            if (n < 4 || buf[0] != 0 || buf[1] != 1)
                continue;  // RRQ only
            std::string name(buf + 2, strnlen(buf + 2, static_cast<std::size_t>(n) - 2));
            if (!name.empty() && name[0] == '/')
                name.erase(0, 1);
            auto it = files_.find(name);
            if (it == files_.end()) {
                std::string err("\0\5\0\1File not found\0", 19);
                ::sendto(fd_, err.data(), err.size(), 0, reinterpret_cast<sockaddr*>(&peer), len);
                continue;
            }
            send_file(it->second, peer, len);
        }
    }
    void send_file(const std::string& data, const sockaddr_in& peer, socklen_t len) {
        for (std::size_t block = 1;; ++block) {
            const std::size_t off = (block - 1) * 512;
            const std::size_t size =
                std::min<std::size_t>(512, data.size() - std::min(off, data.size()));
            std::string packet{'\0', '\3', static_cast<char>((block >> 8) & 0xff),
                               static_cast<char>(block & 0xff)};
            packet += data.substr(std::min(off, data.size()), size);
            bool acked = false;
            for (int attempt = 0; attempt < 5 && !acked && !stop_; ++attempt) {
                ::sendto(fd_, packet.data(), packet.size(), 0,
                         reinterpret_cast<const sockaddr*>(&peer), len);
                auto deadline = std::chrono::steady_clock::now() + 1s;
                while (!acked && std::chrono::steady_clock::now() < deadline) {
                    if (!wait_readable(100ms))
                        continue;
                    unsigned char ack[516];
                    ssize_t n = ::recv(fd_, ack, sizeof ack, 0);
                    if (n >= 4 && ack[1] == 4 &&
                        ((ack[2] << 8) | ack[3]) == static_cast<int>(block & 0xffff))
                        acked = true;
                    if (n >= 4 && ack[1] == 5)
                        return;  // client gave up
                }
            }
            if (!acked || size < 512)
                return;
        }
    }

    std::map<std::string, std::string> files_;
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

class FetchLocal : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/ezio-fetch.XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    std::string write(const std::string& name, const std::string& content) {
        std::string path = dir_ + "/" + name;
        std::ofstream(path, std::ios::binary) << content;
        return path;
    }
    std::string dir_;
};

TEST(FetchUrl, RecognisesSchemes) {
    EXPECT_TRUE(is_fetch_url("http://a/b.torrent"));
    EXPECT_TRUE(is_fetch_url("HTTPS://a/b.torrent"));
    EXPECT_TRUE(is_fetch_url("tftp://10.0.0.1/pxe/sda1.torrent"));
    EXPECT_FALSE(is_fetch_url("sda1.torrent"));
    EXPECT_FALSE(is_fetch_url("/srv/http://x"));
    EXPECT_FALSE(is_fetch_url("ftp://a/b"));
    EXPECT_FALSE(is_fetch_url("file:///a/b"));
    EXPECT_FALSE(is_fetch_url("://x"));
}

TEST_F(FetchLocal, ReadsAFile) {
    const std::string content = "d8:announce0:4:infod4:name4:sda1ee";
    EXPECT_EQ(as_string(fetch(write("a.torrent", content))), content);
    EXPECT_EQ(as_string(fetch("file://" + write("b.torrent", content))), content);
    const std::string big = pattern(3 << 20);
    EXPECT_EQ(as_string(fetch(write("big.torrent", big))), big);
}

TEST_F(FetchLocal, ReadsStandardInput) {
    const std::string path = write("stdin.torrent", "d4:infod4:name1:xee");
    int saved = ::dup(STDIN_FILENO);
    int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ::dup2(fd, STDIN_FILENO);
    ::close(fd);
    std::vector<char> data;
    EXPECT_NO_THROW(data = fetch("-"));
    ::dup2(saved, STDIN_FILENO);
    ::close(saved);
    EXPECT_EQ(as_string(data), "d4:infod4:name1:xee");
}

TEST_F(FetchLocal, ErrorsSayWhatAndWhere) {
    auto f = failure_of(dir_ + "/missing.torrent");
    EXPECT_EQ(f.code, Errc::InvalidArgs);
    EXPECT_NE(f.message.find("missing.torrent"), std::string::npos) << f.message;
    EXPECT_NE(f.message.find("No such file"), std::string::npos) << f.message;

    f = failure_of(dir_);
    EXPECT_EQ(f.code, Errc::InvalidArgs);
    EXPECT_NE(f.message.find("directory"), std::string::npos) << f.message;

    f = failure_of(write("empty.torrent", ""));
    EXPECT_EQ(f.code, Errc::InvalidTorrent);
    EXPECT_NE(f.message.find("empty"), std::string::npos) << f.message;

    FetchOptions small;
    small.max_bytes = 1000;
    f = failure_of(write("large.torrent", pattern(1001)), small);
    EXPECT_EQ(f.code, Errc::InvalidTorrent);
    EXPECT_NE(f.message.find("larger than"), std::string::npos) << f.message;
    EXPECT_EQ(fetch(write("exact.torrent", pattern(1000)), small).size(), 1000u);

    EXPECT_EQ(failure_of("").code, Errc::InvalidArgs);
    f = failure_of("ftp://127.0.0.1/a.torrent");
    EXPECT_EQ(f.code, Errc::InvalidArgs);
    EXPECT_NE(f.message.find("ftp"), std::string::npos) << f.message;
    EXPECT_EQ(failure_of("file://otherhost/a.torrent").code, Errc::InvalidArgs);
}

TEST(FetchHttp, DownloadsAndFollowsRedirects) {
    HttpServer server;
    const std::string body = pattern(200000);
    server.route("/a.torrent", [&](int fd, auto&) { HttpServer::reply(fd, "200 OK", body); });
    server.route("/moved", [&](int fd, auto&) {
        HttpServer::reply(fd, "302 Found", "", "Location: " + server.url("/a.torrent") + "\r\n");
    });
    server.route("/no-length",
                 [&](int fd, auto&) { HttpServer::reply(fd, "200 OK", body, "", false); });
    EXPECT_EQ(as_string(fetch(server.url("/a.torrent"))), body);
    EXPECT_EQ(as_string(fetch(server.url("/moved"))), body);
    EXPECT_EQ(as_string(fetch(server.url("/no-length"))), body);
}

TEST(FetchHttp, HttpErrorsAreFailedWithTheStatus) {
    HttpServer server;
    auto f = failure_of(server.url("/missing.torrent"));
    EXPECT_EQ(f.code, Errc::Failed);
    EXPECT_NE(f.message.find("404"), std::string::npos) << f.message;
    EXPECT_NE(f.message.find(server.url("/missing.torrent")), std::string::npos) << f.message;

    server.route("/empty", [](int fd, auto&) { HttpServer::reply(fd, "200 OK", ""); });
    EXPECT_EQ(failure_of(server.url("/empty")).code, Errc::InvalidTorrent);
}

TEST(FetchHttp, RedirectToAnotherProtocolIsRefused) {
    HttpServer server;
    server.route("/to-ftp", [](int fd, auto&) {
        HttpServer::reply(fd, "302 Found", "", "Location: ftp://127.0.0.1/a.torrent\r\n");
    });
    server.route("/to-file", [](int fd, auto&) {
        HttpServer::reply(fd, "302 Found", "", "Location: file:///etc/passwd\r\n");
    });
    EXPECT_EQ(failure_of(server.url("/to-ftp")).code, Errc::Failed);
    EXPECT_EQ(failure_of(server.url("/to-file")).code, Errc::Failed);
}

TEST(FetchHttp, SizeLimitHoldsWithAndWithoutContentLength) {
    HttpServer server;
    const std::string body = pattern(5000);
    server.route("/announced", [&](int fd, auto&) { HttpServer::reply(fd, "200 OK", body); });
    server.route("/streamed",
                 [&](int fd, auto&) { HttpServer::reply(fd, "200 OK", body, "", false); });
    FetchOptions small;
    small.max_bytes = 4096;
    for (const char* path : {"/announced", "/streamed"}) {
        auto f = failure_of(server.url(path), small);
        EXPECT_EQ(f.code, Errc::InvalidTorrent) << path << ": " << f.message;
        EXPECT_NE(f.message.find("larger than"), std::string::npos) << f.message;
    }
}

TEST(FetchHttp, StalledServerTimesOut) {
    HttpServer server;
    server.route("/stall", [](int fd, const std::atomic<bool>& stop) {
        // Headers, then nothing: the body never starts.
        send_all(fd, "HTTP/1.0 200 OK\r\nContent-Length: 100000\r\n\r\n");
        while (!stop)
            std::this_thread::sleep_for(20ms);
    });
    FetchOptions quick;
    quick.stall_timeout = 1s;
    quick.total_timeout = 20s;
    const auto start = std::chrono::steady_clock::now();
    auto f = failure_of(server.url("/stall"), quick);
    EXPECT_EQ(f.code, Errc::Failed);
    EXPECT_NE(f.message.find("timed out"), std::string::npos) << f.message;
    // The stall limit, not the total limit, ended it.
    EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

TEST(FetchHttp, RefusedConnectionIsFailed) {
    // A port that was free a moment ago and has no listener now.
    std::uint16_t port = 0;
    ::close(bound_socket(SOCK_STREAM, port));
    auto f = failure_of("http://127.0.0.1:" + std::to_string(port) + "/a.torrent");
    EXPECT_EQ(f.code, Errc::Failed);
    EXPECT_NE(f.message.find("cannot download"), std::string::npos) << f.message;
}

TEST(FetchTftp, DownloadsInBlocks) {
    const std::string torrent = pattern(1300);  // 512 + 512 + 276
    const std::string even = pattern(1024);     // needs a final empty block
    TftpServer server({{"pxe/sda1.torrent", torrent}, {"even.torrent", even}});
    EXPECT_EQ(as_string(fetch(server.url("pxe/sda1.torrent"))), torrent);
    EXPECT_EQ(as_string(fetch(server.url("even.torrent"))), even);
}

TEST(FetchTftp, MissingFileAndSizeLimit) {
    TftpServer server({{"big.torrent", pattern(3000)}});
    FetchOptions quick;
    quick.connect_timeout = 3s;
    quick.total_timeout = 10s;
    auto f = failure_of(server.url("nope.torrent"), quick);
    EXPECT_EQ(f.code, Errc::Failed);
    EXPECT_NE(f.message.find("nope.torrent"), std::string::npos) << f.message;

    quick.max_bytes = 1000;
    f = failure_of(server.url("big.torrent"), quick);
    EXPECT_EQ(f.code, Errc::InvalidTorrent) << f.message;
}

// Polls `f` the way a main loop would, until it settles or `limit` passes;
// returns the events seen, in order.
std::vector<TorrentFetch::Event> drive(TorrentFetch& f, std::chrono::seconds limit) {
    std::vector<TorrentFetch::Event> events;
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        const auto e = f.poll();
        if (e != TorrentFetch::Event::None)
            events.push_back(e);
        if (f.state() == TorrentFetch::State::Done || f.state() == TorrentFetch::State::Failed)
            break;
        std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(f.next_timeout(), 50ms));
    }
    return events;
}

TEST_F(FetchLocal, TorrentFetchDeliversTheBytesOnce) {
    const std::string path = write("a.torrent", "d4:infod4:name1:xee");
    TorrentFetch f(path, {}, {});
    const auto events = drive(f, 10s);
    ASSERT_EQ(events, std::vector{TorrentFetch::Event::Done});
    EXPECT_EQ(as_string(f.take()), "d4:infod4:name1:xee");
    EXPECT_TRUE(f.take().empty());
    EXPECT_EQ(f.attempts(), 1);
}

TEST_F(FetchLocal, TorrentFetchDoesNotRetryWhatCannotGetBetter) {
    TorrentFetch f(dir_ + "/missing.torrent", {}, {});
    const auto events = drive(f, 10s);
    ASSERT_EQ(events, std::vector{TorrentFetch::Event::Failed});
    EXPECT_EQ(f.attempts(), 1);
    EXPECT_EQ(f.error_code(), Errc::InvalidArgs);
    EXPECT_NE(f.error().find("missing.torrent"), std::string::npos) << f.error();
}

TEST(TorrentFetch, RetriesNetworkErrorsUntilThePolicyGivesUp) {
    std::uint16_t port = 0;
    ::close(bound_socket(SOCK_STREAM, port));
    RetryPolicy policy;
    policy.first_delay = 1s;
    policy.max_delay = 1s;
    policy.give_up_after = 3s;
    TorrentFetch f("http://127.0.0.1:" + std::to_string(port) + "/a.torrent", {}, policy);
    const auto start = std::chrono::steady_clock::now();
    const auto events = drive(f, 20s);
    const auto took = std::chrono::steady_clock::now() - start;
    // Attempts at about 0, 1 and 2 s; the next would start after 3 s.
    using E = TorrentFetch::Event;
    EXPECT_EQ(events, (std::vector{E::AttemptFailed, E::AttemptFailed, E::Failed}));
    EXPECT_EQ(f.attempts(), 3);
    EXPECT_EQ(f.error_code(), Errc::Failed);
    EXPECT_GE(took, 2s);
    EXPECT_LT(took, 10s);
}

TEST(TorrentFetch, ServerThatComesUpLaterIsFetched) {
    // The first attempts meet a bound port with no listener (refused); then
    // the server comes up on it.
    std::uint16_t port = 0;
    const int reserved = bound_socket(SOCK_STREAM, port);
    RetryPolicy policy;
    policy.first_delay = 1s;
    TorrentFetch f("http://127.0.0.1:" + std::to_string(port) + "/a.torrent", {}, policy);
    auto events = drive(f, 1s);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.front(), TorrentFetch::Event::AttemptFailed);
    EXPECT_EQ(f.state(), TorrentFetch::State::WaitingRetry);
    HttpServer server(reserved, {{"/a.torrent", [](int fd, const std::atomic<bool>&) {
                                      HttpServer::reply(fd, "200 OK", "d4:infod4:name1:yee");
                                  }}});
    events = drive(f, 20s);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back(), TorrentFetch::Event::Done) << f.error();
    EXPECT_EQ(as_string(f.take()), "d4:infod4:name1:yee");
    EXPECT_GE(f.attempts(), 2);
}

}  // namespace
}  // namespace ezio
