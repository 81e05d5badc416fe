// Bans that stick: a libtorrent torrent plugin that keeps a peer libtorrent
// banned (for sending data that failed the hash check) out of the torrent
// for good.
//
// Why: eziod allows several connections per IP (many eziod on one host in
// tests and labs behind NAT), and with that setting libtorrent keys peers by
// IP and port. A banned peer that connects *in* again comes from a new port,
// is a new peer to libtorrent, and once it announces its listen port even
// replaces the banned entry, so its corrupt data comes back, and the good
// peers that share pieces with it lose trust until they are banned too
// (tests/system/test_fault_corrupt_peer.sh saw both).
//
// The plugin records a banned peer by its peer id and by its listen
// endpoint (IP and port) and closes any later connection that presents
// either: by peer id right after the BitTorrent handshake, by endpoint after
// the extension handshake. It learns of bans from the disconnects libtorrent
// makes with errors::peer_banned, and from Engine through ban() for
// peer_ban_alert (smart-ban bans peers that are not connected).
//
// Threading: the plugin runs on libtorrent's network thread; ban() and
// banned_count() may be called from any thread (one mutex).
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <set>
#include <utility>

#include <libtorrent/address.hpp>
#include <libtorrent/extensions.hpp>
#include <libtorrent/peer_id.hpp>
#include <libtorrent/socket.hpp>

namespace ezio {

class PeerBans {
  public:
    // A zero peer id or an endpoint with port 0 is not recorded.
    void ban(const lt::tcp::endpoint& endpoint, const lt::peer_id& pid);
    bool banned(const lt::peer_id& pid) const;
    bool banned(const lt::address& address, int port) const;
    // Peer ids plus endpoints recorded.
    std::size_t banned_count() const;

  private:
    mutable std::mutex mutex_;
    std::set<lt::peer_id> ids_;
    std::set<std::pair<lt::address, int>> endpoints_;
};

// The torrent plugin for add_torrent_params::extensions; every torrent gets
// its own PeerBans (a peer bad for one image may serve another one well).
std::shared_ptr<lt::torrent_plugin> make_ban_plugin(std::shared_ptr<PeerBans> bans);

}  // namespace ezio
