// TCP_NODELAY on a BitTorrent peer connection.
//
// Why: libtorrent 2.0 leaves Nagle's algorithm on for its peer sockets. A
// small write (a HAVE, a block request) that follows unacknowledged data
// waits for its ACK, and a peer with nothing to send acknowledges late
// (delayed ACK, about 40 ms on Linux). Where small messages drive the
// transfer, that is 40 ms of idle link each time the pipeline drains: a
// paced seed feeds its receiver pieces with HAVE messages (paced_seed.hpp),
// and over loopback with 1 MiB pieces a trace of the seed showed it idle in
// 40-50 ms gaps, waiting for requests that followed a HAVE held back by
// Nagle: 2.0-2.7 s per GiB deployed, 1.3-1.6 s without Nagle. Elsewhere
// Nagle stays on: between receivers of a swarm it merges small writes into
// fewer packets (with it off everywhere, eziod used 15-20% more CPU in the
// 16-receiver bench and finished no sooner).
//
// How: libtorrent does not expose a peer's socket, so the process's TCP
// socket whose local and remote endpoints are the connection's is looked
// up and TCP_NODELAY set on it.
//
// Threading: disable_nagle() runs on libtorrent's network thread;
// NoDelayReport may be used from any thread.
#pragma once

#include <mutex>
#include <optional>
#include <string>

#include <libtorrent/peer_connection_handle.hpp>
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

// set_tcp_nodelay() for a connected peer; a failure goes to `report` (if
// any).
void disable_nagle(const lt::peer_connection_handle& pc, NoDelayReport* report);

}  // namespace ezio
