#include "tcp_nodelay.hpp"

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>

namespace ezio {

namespace {

// The endpoint of `fd` from getsockname/getpeername, or nullopt (not a
// socket, not IP, closed meanwhile).
template <typename Call>
std::optional<lt::tcp::endpoint> endpoint_of(int fd, Call call) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (call(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
        return std::nullopt;
    if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
        return std::nullopt;
    lt::tcp::endpoint ep;
    if (len > ep.capacity())
        return std::nullopt;
    std::memcpy(ep.data(), &ss, len);
    ep.resize(len);
    return ep;
}

bool same(const lt::tcp::endpoint& a, const lt::tcp::endpoint& b) {
    // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d.
    auto norm = [](const lt::address& x) {
        if (x.is_v6() && x.to_v6().is_v4_mapped())
            return lt::address(lt::make_address_v4(lt::v4_mapped, x.to_v6()));
        return x;
    };
    return a.port() == b.port() && norm(a.address()) == norm(b.address());
}

}  // namespace

int set_tcp_nodelay(const lt::tcp::endpoint& local, const lt::tcp::endpoint& remote) {
    DIR* dir = ::opendir("/proc/self/fd");
    if (!dir)
        return errno;
    const int self = ::dirfd(dir);
    int result = ENOENT;
    while (const dirent* e = ::readdir(dir)) {
        char* end = nullptr;
        const long fd = std::strtol(e->d_name, &end, 10);
        if (*e->d_name == '\0' || *end != '\0' || fd == self)
            continue;
        // Other threads open and close descriptors meanwhile: a number that
        // is gone, or is now something else, fails one of the checks.
        const auto mine = endpoint_of(static_cast<int>(fd), ::getsockname);
        if (!mine || !same(*mine, local))
            continue;
        const auto theirs = endpoint_of(static_cast<int>(fd), ::getpeername);
        if (!theirs || !same(*theirs, remote))
            continue;
        const int one = 1;
        result = ::setsockopt(static_cast<int>(fd), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0
                     ? 0
                     : errno;
        break;
    }
    ::closedir(dir);
    return result;
}

void NoDelayReport::failed(const std::string& why) {
    std::lock_guard lock(mutex_);
    ++failures_;
    last_ = why;
}

std::optional<std::string> NoDelayReport::take() {
    std::lock_guard lock(mutex_);
    if (failures_ == 0)
        return std::nullopt;
    std::string text = "Nagle's algorithm stays on for " + std::to_string(failures_) +
                       " paced peer connection(s) (slower pacing, same data): " + last_;
    failures_ = 0;
    last_.clear();
    return text;
}

void disable_nagle(const lt::peer_connection_handle& pc, NoDelayReport* report) {
    if (pc.is_disconnecting())
        return;
    const lt::tcp::endpoint& remote = pc.remote();
    const int err = set_tcp_nodelay(pc.local_endpoint(), remote);
    if (err != 0 && report)
        report->failed("TCP_NODELAY on " + remote.address().to_string() + ":" +
                       std::to_string(remote.port()) + ": " +
                       (err == ENOENT ? std::string("no socket found for the connection")
                                      : std::system_category().message(err)));
}

}  // namespace ezio
