#include "paced_seed.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <set>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <libtorrent/bdecode.hpp>
#include <libtorrent/bencode.hpp>
#include <libtorrent/bitfield.hpp>
#include <libtorrent/entry.hpp>
#include <libtorrent/peer_connection.hpp>
#include <libtorrent/peer_connection_handle.hpp>
#include <libtorrent/peer_info.hpp>
#include <libtorrent/socket_io.hpp>
#include <libtorrent/torrent_status.hpp>

namespace ezio {
namespace {

constexpr char kSeedKey[] = "ezio_paced";
constexpr char kReceiverKey[] = "ezio_paced_rx";
// The extension message a pacing seed introduces its receivers with, and
// the id a receiver takes it under (BEP 10: each side numbers the messages
// it accepts; libtorrent's own use 1-8).
constexpr char kPeersKey[] = "ezio_peers";
constexpr int kPeersId = 60;
constexpr int kMaxIntroduced = 100;  // receivers named in one introduction
constexpr int kMaxPeersMessage = 4096;
constexpr char kMsgExtended = 20;
using Clock = std::chrono::steady_clock;

class PacedPeer;

// The seed's picture of its paced receivers. Network thread only.
class PacedTorrent final : public lt::torrent_plugin,
                           public std::enable_shared_from_this<PacedTorrent> {
  public:
    PacedTorrent(lt::torrent_handle handle, std::shared_ptr<const lt::torrent_info> ti,
                 PacingConfig config, std::shared_ptr<NoDelayReport> nodelay_report)
        : handle_(std::move(handle)),
          ti_(ti),
          config_(config),
          nodelay_report_(std::move(nodelay_report)),
          pieces_(ti->num_pieces()),
          piece_length_(std::max(1, ti->piece_length())),
          pending_(static_cast<std::size_t>(pieces_), 0),
          holders_(static_cast<std::size_t>(pieces_), 0),
          shown_at_(static_cast<std::size_t>(pieces_)) {}

    std::shared_ptr<lt::peer_plugin> new_connection(lt::peer_connection_handle const& pc) override;

    void on_state(lt::torrent_status::state_t state) override {
        seeding_ = state == lt::torrent_status::seeding;
    }

    // Once a second: windows follow the measured rates.
    void tick() override;

    bool seeding() const { return seeding_; }
    const PacingConfig& config() const { return config_; }
    NoDelayReport* nodelay_report() const { return nodelay_report_.get(); }
    int pieces() const { return pieces_; }
    int blocks_per_piece() const {
        return (piece_length_ + lt::default_block_size - 1) / lt::default_block_size;
    }
    int piece_size(int piece) const { return ti_->piece_size(lt::piece_index_t{piece}); }
    void attach(PacedPeer& peer);
    void detach(PacedPeer& peer);
    // Receiver side: connect to the receivers a pacing seed introduced.
    void connect(const std::vector<lt::tcp::endpoint>& peers);
    // `peer` holds `piece` now; with `refill_window`, its window is
    // topped up at once (not while a bitfield is being read).
    void received(PacedPeer& peer, lt::piece_index_t piece, bool refill_window = true);
    void refill(PacedPeer& peer);

  private:
    // Up to `count` pieces to show `peer` next.
    std::vector<int> pick(const PacedPeer& peer, int count, Clock::time_point now);
    // How long a shown piece may stay with nobody holding it, and a
    // receiver may go without receiving anything, before the seed helps.
    Clock::duration stale_after() const {
        return std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(2 * config_.window_seconds + 2));
    }

    // Sends `peer` the listen endpoints of the other receivers paced now.
    void introduce(PacedPeer& peer);

    lt::torrent_handle handle_;
    std::shared_ptr<const lt::torrent_info> ti_;
    PacingConfig config_;
    std::shared_ptr<NoDelayReport> nodelay_report_;
    int pieces_;
    int piece_length_;
    bool seeding_ = false;
    // Per piece, among the receivers paced now: those shown it that do not
    // hold it yet, and those known to hold it. A piece with neither is not
    // in the swarm: it goes to the next receiver that has room.
    std::vector<std::uint16_t> pending_;
    std::vector<std::uint16_t> holders_;
    std::vector<Clock::time_point> shown_at_;  // when it was last shown
    int next_ = 0;                             // pieces below are pending or held
    std::set<PacedPeer*> peers_;
    std::minstd_rand rng_{std::random_device{}()};
};

// Makes the connection's piece picks ask for `blocks` contiguous blocks at
// a time. The setter is inline in libtorrent's header (web seed connections
// use it to fetch whole ranges); the class is not exported, so this file is
// built without UBSan's vptr check, which needs its type information.
void request_contiguous(const lt::peer_connection_handle& pc, int blocks) {
    if (const auto c = pc.native_handle())
        c->prefer_contiguous_blocks(blocks);
}

class PacedPeer final : public lt::peer_plugin {
    PacingConfig config_;
    lt::peer_connection_handle pc_;
    std::shared_ptr<PacedTorrent> torrent_;

  public:
    PacedPeer(lt::peer_connection_handle pc, std::shared_ptr<PacedTorrent> torrent)
        : config_(torrent->config()),
          pc_(std::move(pc)),
          torrent_(std::move(torrent)),
          shown_(torrent_->pieces(), false),
          has_(torrent_->pieces(), false),
          asked_all_(torrent_->pieces(), false) {}
    ~PacedPeer() override { stop_pacing(); }

    lt::string_view type() const override { return kSeedKey; }

    void add_handshake(lt::entry& h) override {
        as_seed_ = torrent_->seeding();
        h[as_seed_ ? kSeedKey : kReceiverKey] = 1;
        // A paced receiver that believes the seed has nothing would close a
        // connection to an "upload only" peer as useless.
        if (as_seed_) {
            h.dict().erase("upload_only");
        } else {
            h["reqq"] = config_.relay_requests;
            h["m"][kPeersKey] = kPeersId;
        }
    }

    bool on_extension_handshake(lt::bdecode_node const& h) override {
        if (as_seed_ && h.dict_find_int_value(kReceiverKey, 0) == 1) {
            pacing_ = true;
            // Where it accepts connections: its address as we see it, the
            // port it listens on ("p"; none if it does not listen).
            const auto port = h.dict_find_int_value("p", 0);
            lt::address address = pc_.remote().address();
            if (address.is_v6() && address.to_v6().is_v4_mapped())
                address = lt::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6());
            if (port > 0 && port <= 65535)
                listen_ = lt::tcp::endpoint(address, static_cast<std::uint16_t>(port));
            if (const auto m = h.dict_find_dict("m"))
                peers_msg_ = static_cast<int>(m.dict_find_int_value(kPeersKey, 0));
            torrent_->attach(*this);
        } else if (!as_seed_ && h.dict_find_int_value(kSeedKey, 0) == 1) {
            paced_ = true;
            const int blocks = config_.seed_request_blocks;
            if (blocks > 0 && torrent_->blocks_per_piece() > blocks)
                request_contiguous(pc_, blocks);
        }
        // HAVE messages drive a paced transfer: none may wait for an ACK.
        if (pacing_ || paced_)
            disable_nagle(pc_, torrent_->nodelay_report());
        return true;
    }

    // A paced receiver ignores what a pacing seed says it has at first;
    // the seed's HAVE messages follow. A pacing seed records what its
    // receiver holds.
    bool on_have_all() override {
        if (pacing_) {
            for (int p = 0; p < torrent_->pieces(); ++p)
                torrent_->received(*this, lt::piece_index_t{p}, false);
            torrent_->refill(*this);
        }
        return paced_;
    }
    bool on_bitfield(lt::bitfield const& bits) override {
        if (pacing_) {
            for (int p = 0; p < std::min(bits.size(), torrent_->pieces()); ++p)
                if (bits.get_bit(p))
                    torrent_->received(*this, lt::piece_index_t{p}, false);
            torrent_->refill(*this);
        }
        return paced_;
    }
    bool on_have(lt::piece_index_t piece) override {
        if (pacing_ && static_cast<int>(piece) >= 0 && static_cast<int>(piece) < torrent_->pieces())
            torrent_->received(*this, piece);
        return false;
    }
    // The window is what the receiver was shown and has not asked for yet:
    // a receiver learns of new pieces while it still has requests out, and
    // picks them up with its next request.
    bool on_request(lt::peer_request const& r) override {
        const int p = static_cast<int>(r.piece);
        if (pacing_ && p >= 0 && p < torrent_->pieces() && shown_.get_bit(p) &&
            !asked_all_.get_bit(p) && add(asked_, p, r.length)) {
            asked_all(p);
            torrent_->refill(*this);
        }
        return false;
    }
    // libtorrent sends no HAVE to a peer that it believes has the piece,
    // and this receiver believes it of every piece it was shown: a shown
    // piece counts as received once all of it was sent.
    void sent_piece(lt::peer_request const& r) override {
        const int p = static_cast<int>(r.piece);
        if (pacing_ && p >= 0 && p < torrent_->pieces() && shown_.get_bit(p) && !has_.get_bit(p) &&
            add(sent_, p, r.length)) {
            sent_.erase(p);
            torrent_->received(*this, r.piece);
        }
    }
    void on_disconnect(lt::error_code const&) override { stop_pacing(); }

    // A pacing seed's introduction: the other receivers it paces. Peer
    // exchange would name them too, but libtorrent sends one exchange
    // message per 3 s per process, so 16 receivers found each other only
    // after a second or two, with the seed alone feeding them meanwhile.
    bool on_extended(int length, int msg, lt::span<char const> body) override {
        if (msg != kPeersId)
            return false;
        if (length > kMaxPeersMessage || static_cast<int>(body.size()) < length)
            return true;  // ignored, or not all of it here yet
        if (!paced_ || introduced_)
            return true;  // only a pacing seed introduces, once
        introduced_ = true;
        lt::error_code ec;
        const lt::bdecode_node m = lt::bdecode(body.first(length), ec);
        if (ec || m.type() != lt::bdecode_node::dict_t)
            return true;
        std::vector<lt::tcp::endpoint> peers;
        const auto read = [&](const char* key, int size, auto reader) {
            const auto list = m.dict_find_string_value(key);
            const char* in = list.data();
            for (std::size_t k = 0;
                 k + size <= list.size() && static_cast<int>(peers.size()) < kMaxIntroduced;
                 k += size)
                peers.push_back(reader(in));
        };
        read("added", 6,
             [](const char*& in) { return lt::aux::read_v4_endpoint<lt::tcp::endpoint>(in); });
        read("added6", 18,
             [](const char*& in) { return lt::aux::read_v6_endpoint<lt::tcp::endpoint>(in); });
        torrent_->connect(peers);
        return true;
    }

    // Sends the receiver an introduction (if it takes them).
    void send_peers(const std::vector<lt::tcp::endpoint>& peers) {
        if (peers_msg_ <= 0 || peers_msg_ > 255 || peers.empty())
            return;
        lt::entry e;
        std::string& v4 = e["added"].string();
        std::string& v6 = e["added6"].string();
        for (const auto& ep : peers) {
            auto out = std::back_inserter(ep.address().is_v4() ? v4 : v6);
            lt::aux::write_endpoint(ep, out);
        }
        std::vector<char> body;
        lt::bencode(std::back_inserter(body), e);
        const auto n = static_cast<std::uint32_t>(body.size() + 2);
        const char header[6] = {static_cast<char>(n >> 24),
                                static_cast<char>(n >> 16),
                                static_cast<char>(n >> 8),
                                static_cast<char>(n),
                                kMsgExtended,
                                static_cast<char>(peers_msg_)};
        pc_.send_buffer(header, sizeof header);
        pc_.send_buffer(body.data(), static_cast<int>(body.size()));
    }
    const std::optional<lt::tcp::endpoint>& listen() const { return listen_; }

    // `piece` leaves the window: all of it was asked for, or it is held.
    void asked_all(int piece) {
        if (!shown_.get_bit(piece) || asked_all_.get_bit(piece))
            return;
        asked_all_.set_bit(piece);
        asked_.erase(piece);
        --outstanding_;
    }

    // Tells the receiver the seed has `piece` (a HAVE message).
    void show(int piece) {
        shown_.set_bit(piece);
        ++outstanding_;
        const auto p = static_cast<std::uint32_t>(piece);
        const char msg[9] = {0,
                             0,
                             0,
                             5,
                             4,  // HAVE
                             static_cast<char>(p >> 24),
                             static_cast<char>(p >> 16),
                             static_cast<char>(p >> 8),
                             static_cast<char>(p)};
        pc_.send_buffer(msg, sizeof msg);
    }
    // Bytes per second the seed sends this receiver, refreshed by tick().
    void measure() {
        lt::peer_info info;
        pc_.get_peer_info(info);
        rate_ = std::max(0, info.payload_up_speed);
    }
    bool connected() const { return !pc_.is_disconnecting(); }

    lt::bitfield shown_;      // pieces it was shown
    lt::bitfield has_;        // pieces it holds
    lt::bitfield asked_all_;  // shown pieces it asked for in full (or holds)
    int outstanding_ = 0;     // shown, not asked for in full, not held
    int rate_ = 0;
    Clock::time_point progress_ = Clock::now();  // when it last got a piece
    // It went stale_after() without getting a piece while it lacked some:
    // it cannot get them from the other receivers (it does not reach them,
    // or they do not serve it), so the seed shows it pieces others hold.
    bool starved_ = false;

  private:
    // Adds `bytes` to what `counts` holds for `piece`; true once that
    // reaches the piece's size.
    bool add(std::unordered_map<int, int>& counts, int piece, int bytes) {
        int& n = counts[piece];
        n += bytes;
        return n >= torrent_->piece_size(piece);
    }
    std::unordered_map<int, int> asked_;  // bytes requested of shown pieces
    std::unordered_map<int, int> sent_;   // bytes sent of shown pieces

    void stop_pacing() {
        if (!pacing_)
            return;
        pacing_ = false;
        torrent_->detach(*this);
    }

    std::optional<lt::tcp::endpoint> listen_;  // a paced receiver's listen endpoint
    int peers_msg_ = 0;                        // its id for introductions; 0: it takes none
    bool as_seed_ = false;                     // we announced ourselves as a pacing seed
    bool pacing_ = false;                      // we pace this receiver
    bool paced_ = false;                       // this seed paces us
    bool introduced_ = false;                  // it introduced us to others
};

std::shared_ptr<lt::peer_plugin> PacedTorrent::new_connection(
    lt::peer_connection_handle const& pc) {
    if (!config_.enabled || pieces_ <= 0)
        return nullptr;
    return std::make_shared<PacedPeer>(pc, shared_from_this());
}

void PacedTorrent::attach(PacedPeer& peer) {
    peers_.insert(&peer);
    introduce(peer);
    refill(peer);
}

void PacedTorrent::introduce(PacedPeer& peer) {
    // A newcomer connects to those before it; they learn of it from its
    // connection. Everyone ends up connected to everyone (up to the
    // connection limits) within a round trip of joining.
    std::vector<lt::tcp::endpoint> others;
    for (const PacedPeer* other : peers_) {
        if (other != &peer && other->connected() && other->listen())
            others.push_back(*other->listen());
    }
    if (static_cast<int>(others.size()) > kMaxIntroduced) {
        std::shuffle(others.begin(), others.end(), rng_);
        others.resize(kMaxIntroduced);
    }
    peer.send_peers(others);
}

void PacedTorrent::connect(const std::vector<lt::tcp::endpoint>& peers) {
    for (const auto& ep : peers) {
        if (ep.port() == 0 || ep.address().is_unspecified())
            continue;
        try {
            handle_.connect_peer(ep, lt::peer_info::pex);
        } catch (const lt::system_error&) {
            return;  // the torrent is being removed
        }
    }
}

void PacedTorrent::detach(PacedPeer& peer) {
    if (peers_.erase(&peer) == 0)
        return;
    // What it was shown or held leaves the swarm with it (unless others
    // hold it too).
    for (int p = 0; p < pieces_; ++p) {
        const auto i = static_cast<std::size_t>(p);
        auto& n = peer.has_.get_bit(p) ? holders_[i] : pending_[i];
        if ((peer.has_.get_bit(p) || peer.shown_.get_bit(p)) && n > 0) {
            --n;
            if (pending_[i] == 0 && holders_[i] == 0)
                next_ = std::min(next_, p);
        }
    }
}

void PacedTorrent::received(PacedPeer& peer, lt::piece_index_t piece, bool refill_window) {
    const int p = static_cast<int>(piece);
    if (peer.has_.get_bit(p))
        return;
    const auto i = static_cast<std::size_t>(p);
    if (peer.shown_.get_bit(p) && pending_[i] > 0)
        --pending_[i];
    peer.has_.set_bit(p);
    peer.progress_ = Clock::now();
    if (holders_[i] < UINT16_MAX)
        ++holders_[i];
    peer.asked_all(p);
    if (refill_window)
        refill(peer);
}

void PacedTorrent::tick() {
    for (PacedPeer* peer : peers_) {
        peer->measure();
        refill(*peer);
    }
}

void PacedTorrent::refill(PacedPeer& peer) {
    if (!seeding_ || !peer.connected())
        return;
    const double ahead = config_.window_seconds * peer.rate_ / piece_length_;
    const int most = std::max(1, pieces_);
    const int least = std::min(std::max(1, config_.min_window), most);
    const int window = std::clamp(static_cast<int>(std::ceil(ahead)), least, most);
    if (peer.outstanding_ >= window)
        return;
    const auto now = Clock::now();
    if (!peer.starved_ && now - peer.progress_ > stale_after() && peer.has_.count() < pieces_)
        peer.starved_ = true;
    for (int p : pick(peer, window - peer.outstanding_, now)) {
        const auto i = static_cast<std::size_t>(p);
        if (pending_[i] < UINT16_MAX)
            ++pending_[i];
        shown_at_[i] = now;
        peer.show(p);
    }
}

std::vector<int> PacedTorrent::pick(const PacedPeer& peer, int count, Clock::time_point now) {
    std::vector<int> out;
    auto wanted = [&](int p) { return !peer.has_.get_bit(p) && !peer.shown_.get_bit(p); };
    // First pieces nobody was shown and nobody holds, in order (the seed
    // reads its disk ahead, and receivers write in runs).
    while (next_ < pieces_ && (pending_[static_cast<std::size_t>(next_)] > 0 ||
                               holders_[static_cast<std::size_t>(next_)] > 0))
        ++next_;
    for (int p = next_; p < pieces_ && static_cast<int>(out.size()) < count; ++p) {
        const auto i = static_cast<std::size_t>(p);
        if (pending_[i] == 0 && holders_[i] == 0 && wanted(p))
            out.push_back(p);
    }
    if (!out.empty())
        return out;
    // Every piece is out. A piece shown long ago that no receiver holds yet
    // (its receiver is slow, or stuck) is shown to this one too, the
    // longest waiting first.
    const auto stale = stale_after();
    std::vector<std::tuple<Clock::time_point, int>> candidates;
    for (int p = 0; p < pieces_; ++p) {
        const auto i = static_cast<std::size_t>(p);
        if (wanted(p) && holders_[i] == 0 && now - shown_at_[i] > stale)
            candidates.emplace_back(shown_at_[i], p);
    }
    // Adds the pieces of the `count - out.size()` smallest (key, piece) pairs.
    auto take_smallest = [&](auto& pairs) {
        const auto n = std::min(pairs.size(), static_cast<std::size_t>(count) - out.size());
        std::partial_sort(pairs.begin(), pairs.begin() + static_cast<long>(n), pairs.end());
        for (std::size_t k = 0; k < n; ++k)
            out.push_back(std::get<1>(pairs[k]));
    };
    take_smallest(candidates);
    if (!peer.starved_ || static_cast<int>(out.size()) >= count)
        return out;
    // A starved receiver gets what others hold from the seed, the rarest
    // first: pieces pass between receivers only where they reach each other.
    std::vector<std::tuple<std::uint16_t, int>> held;
    for (int p = 0; p < pieces_; ++p) {
        const auto i = static_cast<std::size_t>(p);
        if (wanted(p) && holders_[i] > 0)
            held.emplace_back(holders_[i], p);
    }
    take_smallest(held);
    return out;
}

}  // namespace

std::shared_ptr<lt::torrent_plugin> make_paced_plugin(
    lt::torrent_handle handle, std::shared_ptr<const lt::torrent_info> torrent, PacingConfig config,
    std::shared_ptr<NoDelayReport> nodelay_report) {
    return std::make_shared<PacedTorrent>(std::move(handle), std::move(torrent), config,
                                          std::move(nodelay_report));
}

}  // namespace ezio
