// TCP_NODELAY on BitTorrent peer connections: a libtorrent torrent plugin.
//
// Why: libtorrent 2.0 leaves Nagle's algorithm on for its peer sockets. A
// receiver's block requests are small writes (13 bytes each); with Nagle,
// one that follows an unacknowledged one waits for its ACK, and a seed that
// has sent everything it was asked for acknowledges late (delayed ACK, about
// 40 ms on Linux). So each time the receiver's request pipeline drains, the
// link idles for ~40 ms. Measured over loopback (1 GiB image, 1 MiB
// pieces): 2.0-2.7 s per deploy with Nagle, 1.35-1.4 s without, and a
// trace of the seed showed it idle in 40-50 ms gaps, waiting for requests
// the receiver had already written.
//
// How: libtorrent does not expose a peer's socket. When the BitTorrent
// handshake has been received (the connection is up, in either direction),
// the plugin looks for the process's TCP socket whose local and remote
// endpoints are the peer connection's and sets TCP_NODELAY on it.
//
// Threading: the plugin runs on libtorrent's network thread; NoDelayReport
// may be read from any thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <libtorrent/extensions.hpp>
#include <libtorrent/socket.hpp>

namespace ezio {

// Sets TCP_NODELAY on this process's TCP socket connected from `local` to
// `remote`. Returns 0, ENOENT when no open socket has both endpoints, or
// the errno of the failing call.
int set_tcp_nodelay(const lt::tcp::endpoint& local, const lt::tcp::endpoint& remote);

// Connections on which Nagle stayed on, for the job's log. A failure costs
// speed only, never data.
class NoDelayReport {
  public:
    void failed(const std::string& why);
    // "N peer connection(s) ...: last reason" once per batch of failures
    // since the last call; nothing if there were none.
    std::optional<std::string> take();

  private:
    std::mutex mutex_;
    int failures_ = 0;
    std::string last_;
};

std::shared_ptr<lt::torrent_plugin> make_nodelay_plugin(std::shared_ptr<NoDelayReport> report);

}  // namespace ezio
