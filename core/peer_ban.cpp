#include "peer_ban.hpp"

#include <libtorrent/bdecode.hpp>
#include <libtorrent/error_code.hpp>
#include <libtorrent/operations.hpp>
#include <libtorrent/peer_connection_handle.hpp>

namespace ezio {

void PeerBans::ban(const lt::tcp::endpoint& endpoint, const lt::peer_id& pid) {
    std::lock_guard lock(mutex_);
    if (!pid.is_all_zeros())
        ids_.insert(pid);
    if (endpoint.port() != 0)
        endpoints_.emplace(endpoint.address(), endpoint.port());
}

bool PeerBans::banned(const lt::peer_id& pid) const {
    std::lock_guard lock(mutex_);
    return !pid.is_all_zeros() && ids_.count(pid) != 0;
}

bool PeerBans::banned(const lt::address& address, int port) const {
    std::lock_guard lock(mutex_);
    return endpoints_.count({address, port}) != 0;
}

std::size_t PeerBans::banned_count() const {
    std::lock_guard lock(mutex_);
    return ids_.size() + endpoints_.size();
}

namespace {

class BanPeerPlugin final : public lt::peer_plugin {
  public:
    BanPeerPlugin(lt::peer_connection_handle pc, std::shared_ptr<PeerBans> bans)
        : pc_(std::move(pc)), bans_(std::move(bans)) {
        // An outgoing connection goes to the peer's listen port.
        if (pc_.is_outgoing())
            listen_port_ = pc_.remote().port();
    }

    // The peer id is known here: a banned peer is closed before any data.
    bool on_handshake(lt::span<char const>) override {
        if (bans_->banned(pc_.pid()))
            refuse();
        return true;
    }

    // An incoming connection names its listen port here ("p").
    bool on_extension_handshake(lt::bdecode_node const& h) override {
        const auto port = h.dict_find_int_value("p", 0);
        if (port > 0 && port < 65536) {
            listen_port_ = static_cast<int>(port);
            if (bans_->banned(pc_.remote().address(), listen_port_))
                refuse();
        }
        return true;
    }

    void on_disconnect(lt::error_code const& ec) override {
        if (ec != lt::errors::make_error_code(lt::errors::peer_banned))
            return;
        bans_->ban(
            lt::tcp::endpoint(pc_.remote().address(), static_cast<unsigned short>(listen_port_)),
            pc_.pid());
    }

  private:
    void refuse() {
        if (!pc_.is_disconnecting())
            pc_.disconnect(lt::errors::make_error_code(lt::errors::peer_banned),
                           lt::operation_t::bittorrent);
    }

    lt::peer_connection_handle pc_;
    std::shared_ptr<PeerBans> bans_;
    int listen_port_ = 0;
};

class BanTorrentPlugin final : public lt::torrent_plugin {
  public:
    explicit BanTorrentPlugin(std::shared_ptr<PeerBans> bans) : bans_(std::move(bans)) {}

    std::shared_ptr<lt::peer_plugin> new_connection(lt::peer_connection_handle const& pc) override {
        return std::make_shared<BanPeerPlugin>(pc, bans_);
    }

  private:
    std::shared_ptr<PeerBans> bans_;
};

}  // namespace

std::shared_ptr<lt::torrent_plugin> make_ban_plugin(std::shared_ptr<PeerBans> bans) {
    return std::make_shared<BanTorrentPlugin>(std::move(bans));
}

}  // namespace ezio
