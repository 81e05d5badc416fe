#include "engine.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include <libtorrent/add_torrent_params.hpp>
#include <libtorrent/alert_types.hpp>
#include <libtorrent/read_resume_data.hpp>
#include <libtorrent/session.hpp>
#include <libtorrent/session_params.hpp>
#include <libtorrent/settings_pack.hpp>
#include <libtorrent/socket_io.hpp>
#include <libtorrent/torrent_flags.hpp>
#include <libtorrent/torrent_handle.hpp>
#include <libtorrent/torrent_status.hpp>
#include <libtorrent/write_resume_data.hpp>
#include <nlohmann/json.hpp>

#include "atomic_file.hpp"
#include "disk_lock.hpp"
#include "layout.hpp"
#include "paced_seed.hpp"
#include "peer_ban.hpp"
#include "piece_verifier.hpp"
#include "raw_disk_io.hpp"
#include "target.hpp"
#include "target_safety.hpp"
#include "tcp_nodelay.hpp"
#include "verify.hpp"
#include "work_queue.hpp"

namespace ezio {

std::string_view to_string(Operation op) {
    return op == Operation::Deploy ? "deploy" : "seed";
}

std::string_view to_string(JobState state) {
    switch (state) {
        case JobState::Queued:
            return "queued";
        case JobState::Checking:
            return "checking";
        case JobState::Downloading:
            return "downloading";
        case JobState::Finishing:
            return "finishing";
        case JobState::Seeding:
            return "seeding";
        case JobState::Completed:
            return "completed";
        case JobState::Failed:
            return "failed";
        case JobState::Cancelled:
            return "cancelled";
        case JobState::Paused:
            return "paused";
    }
    return "unknown";
}

bool is_final(JobState state) {
    return state == JobState::Completed || state == JobState::Failed ||
           state == JobState::Cancelled;
}

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kUpdateInterval = std::chrono::milliseconds(500);

std::uint64_t now_us() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

// "host:port" or "[v6]:port" to endpoints; throws InvalidArgs.
std::vector<lt::tcp::endpoint> resolve_peer(const std::string& peer) {
    std::string host, port;
    if (!peer.empty() && peer.front() == '[') {
        const auto close = peer.find(']');
        if (close == std::string::npos || close + 1 >= peer.size() || peer[close + 1] != ':')
            throw Error(Errc::InvalidArgs, "peer '" + peer + "' is not [address]:port");
        host = peer.substr(1, close - 1);
        port = peer.substr(close + 2);
    } else {
        const auto colon = peer.rfind(':');
        if (colon == std::string::npos || colon == 0)
            throw Error(Errc::InvalidArgs, "peer '" + peer + "' is not host:port");
        host = peer.substr(0, colon);
        port = peer.substr(colon + 1);
    }
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) == 0 ||
        std::stoi(port) > 65535)
        throw Error(Errc::InvalidArgs, "peer '" + peer + "' has no valid port");
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0)
        throw Error(Errc::InvalidArgs, "cannot resolve peer '" + peer + "': " + ::gai_strerror(rc));
    std::vector<lt::tcp::endpoint> out;
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
        lt::tcp::endpoint ep;
        if (ai->ai_addrlen > ep.capacity())
            continue;
        std::memcpy(ep.data(), ai->ai_addr, ai->ai_addrlen);
        ep.resize(ai->ai_addrlen);
        out.push_back(ep);
    }
    ::freeaddrinfo(res);
    if (out.empty())
        throw Error(Errc::InvalidArgs, "peer '" + peer + "' has no usable address");
    return out;
}

std::string describe_storage_error(const lt::file_error_alert& a) {
    std::string msg = a.error.message();
    std::string op = lt::operation_name(a.op);
    return op + " failed: " + msg;
}

nlohmann::json options_to_json(const JobOptions& o) {
    return {{"peers", o.peers},
            {"verify", o.verify},
            {"seed_after", o.seed_after},
            {"max_upload_rate", o.max_upload_rate},
            {"max_download_rate", o.max_download_rate},
            {"max_connections", o.max_connections},
            {"sequential", o.sequential},
            {"force", o.force},
            {"seed_verified", o.seed_verified}};
}

JobOptions options_from_json(const nlohmann::json& j) {
    JobOptions o;
    o.peers = j.at("peers").get<std::vector<std::string>>();
    o.verify = j.at("verify").get<bool>();
    o.seed_after = j.at("seed_after").get<std::int64_t>();
    o.max_upload_rate = j.at("max_upload_rate").get<int>();
    o.max_download_rate = j.at("max_download_rate").get<int>();
    o.max_connections = j.at("max_connections").get<int>();
    o.sequential = j.at("sequential").get<bool>();
    o.force = j.at("force").get<bool>();
    o.seed_verified = j.at("seed_verified").get<bool>();
    return o;
}

}  // namespace

struct Engine::Impl {
    // A libtorrent session and its disk I/O (owned by the session).
    struct Lane {
        RawDiskIO* disk = nullptr;
        std::unique_ptr<lt::session> session;
    };

    struct Job {
        JobStatus status;
        JobOptions options;
        ImageTorrent torrent;
        std::shared_ptr<Target> target;
        lt::torrent_handle handle;
        Lane* lane = nullptr;  // the session holding the torrent
        bool in_session = false;
        bool held = true;             // added paused, until torrent_checked_alert resumes it
        bool paused_by_user = false;  // Engine::pause() (libtorrent's flag also means `held`)
        bool dirty = true;
        JobState last_emitted_state = JobState::Queued;
        Clock::time_point last_emit{};
        Clock::time_point last_sample{};  // rates: time and smoothed values
        double down_rate = 0, up_rate = 0;
        bool allow_file = false;
        // A block-device deploy holds its whole disk flock()ed so udev does
        // not probe half-written data; released with a rescan at the end.
        std::unique_ptr<WholeDiskLock> disk_lock;
        std::string disk_name;                        // kernel name of the target ("sda1")
        bool whole_disk = false;                      // target is a whole disk: reread partitions
        bool deployed = false;                        // data durable on the target
        std::optional<Clock::time_point> seed_until;  // when seeding after deploy ends
        std::thread finisher;                         // flush + verify
        // Checks pieces as they pass, for `verify` (see piece_verifier.hpp).
        std::unique_ptr<PieceVerifier> verifier;
        std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);
        // Peers banned for corrupt data stay out (see peer_ban.hpp).
        std::shared_ptr<PeerBans> bans = std::make_shared<PeerBans>();
        // Paced connections whose Nagle stayed on (see tcp_nodelay.hpp).
        std::shared_ptr<NoDelayReport> nodelay = std::make_shared<NoDelayReport>();
    };

    Impl(EngineConfig cfg, EngineObserver* obs) : config(std::move(cfg)), observer(obs) {
        event = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (event < 0)
            throw Error(Errc::Failed, std::string("eventfd: ") + std::strerror(errno));

        lanes.push_back(make_lane(config.listen_port));
        next_update = Clock::now();
    }

    ~Impl() {
        shutdown();
        if (event >= 0)
            ::close(event);
    }

    static void wake(int fd) {
        const std::uint64_t one = 1;
        // EAGAIN means the counter is already non-zero: the owner will wake.
        [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof one);
    }

    // One libtorrent session. libtorrent holds a torrent once per session,
    // so a second job of the same image (the duplicator's bays, two targets
    // of one deploy) runs in a lane of its own: a further session listening
    // on a free port, whose jobs are peers of the first lane's.
    std::unique_ptr<Lane> make_lane(int port) {
        auto lane = std::make_unique<Lane>();
        lt::session_params params;
        params.settings = settings(port);
        const int threads =
            config.io_threads > 0
                ? config.io_threads
                : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
        Lane* raw = lane.get();
        params.disk_io_constructor =
            [raw, threads](lt::io_context& ioc, lt::settings_interface const& sett, lt::counters&) {
                auto io = std::make_unique<RawDiskIO>(ioc, sett, threads);
                raw->disk = io.get();
                return io;
            };
        lane->session = std::make_unique<lt::session>(std::move(params));
        const int fd = event;
        lane->session->set_alert_notify([fd] { wake(fd); });
        return lane;
    }

    // The lane for a new job of `info_hash`: the first one without it,
    // created when every lane has it.
    Lane& lane_for(const std::string& info_hash) {
        for (auto& lane : lanes) {
            const bool taken = std::any_of(jobs.begin(), jobs.end(), [&](const auto& entry) {
                const Job& j = *entry.second;
                return j.in_session && j.lane == lane.get() && j.status.info_hash == info_hash;
            });
            if (!taken)
                return *lane;
        }
        if (lanes.size() >= kMaxLanes)
            throw Error(Errc::TargetBusy, "torrent " + info_hash + " already runs in " +
                                              std::to_string(lanes.size()) + " jobs");
        lanes.push_back(make_lane(0));
        return *lanes.back();
    }

    // Where the other lanes holding `info_hash` listen, so jobs of the same
    // image in one eziod exchange pieces over loopback.
    std::vector<lt::tcp::endpoint> sibling_endpoints(const Lane& self,
                                                     const std::string& info_hash) const {
        lt::error_code ec;
        auto address = lt::make_address(config.listen_interface, ec);
        if (ec)
            return {};
        if (address.is_unspecified())
            address = address.is_v6() ? lt::address(lt::address_v6::loopback())
                                      : lt::address(lt::address_v4::loopback());
        std::vector<lt::tcp::endpoint> out;
        for (const auto& lane : lanes) {
            if (lane.get() == &self)
                continue;
            const bool holds = std::any_of(jobs.begin(), jobs.end(), [&](const auto& entry) {
                const Job& j = *entry.second;
                return j.in_session && j.lane == lane.get() && j.status.info_hash == info_hash;
            });
            const int port = lane->session->listen_port();
            if (holds && port > 0)
                out.emplace_back(address, static_cast<std::uint16_t>(port));
        }
        return out;
    }

    lt::settings_pack settings(int port) const {
        lt::settings_pack sp;
        sp.set_str(lt::settings_pack::listen_interfaces,
                   (config.listen_interface.find(':') != std::string::npos
                        ? "[" + config.listen_interface + "]"
                        : config.listen_interface) +
                       ":" + std::to_string(port));
        sp.set_str(lt::settings_pack::user_agent, config.user_agent + "/" EZIO_VERSION);
        // peer: for peer_ban_alert (a peer that sent data failing the hash).
        sp.set_int(lt::settings_pack::alert_mask,
                   lt::alert_category::error | lt::alert_category::status |
                       lt::alert_category::storage | lt::alert_category::peer |
                       lt::alert_category::piece_progress);
        // A LAN of identical machines: no DHT, no NAT traversal, no
        // encryption handshake, TCP only; Local Service Discovery finds peers.
        sp.set_bool(lt::settings_pack::enable_dht, false);
        sp.set_bool(lt::settings_pack::enable_lsd, config.local_discovery);
        sp.set_bool(lt::settings_pack::enable_upnp, false);
        sp.set_bool(lt::settings_pack::enable_natpmp, false);
        sp.set_bool(lt::settings_pack::enable_outgoing_utp, false);
        sp.set_bool(lt::settings_pack::enable_incoming_utp, false);
        sp.set_int(lt::settings_pack::out_enc_policy, lt::settings_pack::pe_disabled);
        sp.set_int(lt::settings_pack::in_enc_policy, lt::settings_pack::pe_disabled);
        sp.set_bool(lt::settings_pack::allow_multiple_connections_per_ip, true);
        sp.set_bool(lt::settings_pack::enable_ip_notifier, false);
        // Every job runs now: no queueing of torrents.
        sp.set_int(lt::settings_pack::active_downloads, -1);
        sp.set_int(lt::settings_pack::active_seeds, -1);
        sp.set_int(lt::settings_pack::active_limit, -1);
        sp.set_int(lt::settings_pack::active_checking, 8);
        // Unchoke everyone in a homogeneous swarm; rotate seed slots fairly.
        sp.set_int(lt::settings_pack::choking_algorithm, lt::settings_pack::fixed_slots_choker);
        sp.set_int(lt::settings_pack::unchoke_slots_limit, -1);
        sp.set_int(lt::settings_pack::seed_choking_algorithm, lt::settings_pack::round_robin);
        sp.set_int(lt::settings_pack::connections_limit, 1000);
        sp.set_int(lt::settings_pack::connection_speed, 100);
        sp.set_bool(lt::settings_pack::smooth_connects, false);
        // Deep pipelines for a fast LAN, but only a second's worth of
        // requests per peer, block by block: libtorrent otherwise asks a fast
        // peer for up to 8 MiB of whole pieces at once (whole_pieces_threshold).
        // What a peer may have queued with us is capped too (it replaces the
        // peer's own limit): queued data is latency for the last pieces of a
        // swarm. Send buffers hold half a second of a connection's rate (32
        // MiB at most), and the kernel sizes socket buffers itself: fixed
        // large ones were seconds of queue on a 100 Mbit/s link (bench swarm
        // of 4: 16.6 s, 15.3 s without them).
        sp.set_int(lt::settings_pack::max_out_request_queue, 1500);
        sp.set_int(lt::settings_pack::max_allowed_in_request_queue, 500);
        sp.set_int(lt::settings_pack::request_queue_time, 1);
        sp.set_int(lt::settings_pack::whole_pieces_threshold, 0);
        sp.set_int(lt::settings_pack::send_buffer_watermark, 32 << 20);
        sp.set_int(lt::settings_pack::send_buffer_watermark_factor, 50);
        sp.set_int(lt::settings_pack::max_peer_recv_buffer_size, 8 << 20);
        sp.set_int(lt::settings_pack::send_buffer_low_watermark, 1 << 20);
        sp.set_int(lt::settings_pack::max_queued_disk_bytes, 32 << 20);
        sp.set_int(lt::settings_pack::aio_threads, std::max(1, config.io_threads));
        sp.set_bool(lt::settings_pack::close_redundant_connections, true);
        sp.set_int(lt::settings_pack::peer_connect_timeout, 5);
        sp.set_int(lt::settings_pack::min_reconnect_time, 2);
        sp.set_int(lt::settings_pack::tick_interval, 100);
        return sp;
    }

    // ---- jobs --------------------------------------------------------------

    Job& job(JobId id) {
        auto it = jobs.find(id);
        if (it == jobs.end())
            throw Error(Errc::NotFound, "no job " + std::to_string(id));
        return *it->second;
    }

    Job* job_by_handle(const lt::torrent_handle& h) {
        auto it = by_handle.find(h);
        if (it == by_handle.end())
            return nullptr;
        auto j = jobs.find(it->second);
        return j == jobs.end() ? nullptr : j->second.get();
    }

    // Jobs of one image may run side by side (in separate lanes); one target
    // is written by one job only.
    void check_conflicts(const std::string& path, bool writing) {
        for (const auto& [id, j] : jobs) {
            if (!j->in_session)
                continue;
            if (j->status.target == path && (writing || j->status.operation == Operation::Deploy))
                throw Error(Errc::TargetBusy,
                            path + " is already in use by job " + std::to_string(id));
        }
    }

    // Where a job's record lives: STATE/jobs/ID/{job.json,torrent,resume}.
    std::string job_dir(JobId id) const { return config.state_dir + "/jobs/" + std::to_string(id); }

    void persist(const Job& j, std::span<const char> torrent_bytes) {
        if (config.state_dir.empty())
            return;
        const std::string dir = job_dir(j.status.id);
        make_directories(dir);
        const nlohmann::json record = {{"id", j.status.id},
                                       {"operation", to_string(j.status.operation)},
                                       {"target", j.status.target},
                                       {"allow_file", j.allow_file},
                                       {"start_time", j.status.start_time},
                                       {"options", options_to_json(j.options)}};
        const std::string text = record.dump(2) + "\n";
        write_file_atomic(dir + "/torrent", torrent_bytes);
        write_file_atomic(dir + "/job.json", text);
    }

    void forget(JobId id) {
        if (config.state_dir.empty())
            return;
        std::error_code ec;
        std::filesystem::remove_all(job_dir(id), ec);
        if (ec && observer) {
            if (auto it = jobs.find(id); it != jobs.end())
                observer->job_log(it->second->status,
                                  "cannot remove saved state " + job_dir(id) + ": " + ec.message());
        }
    }

    // `fixed_id` and `resume` are set when a saved job comes back.
    JobId add(Operation op, std::span<const char> bytes, const std::string& path,
              const JobOptions& options, bool allow_file, std::optional<JobId> fixed_id = {},
              const std::vector<char>* resume = nullptr, std::uint64_t start_time = 0) {
        ImageTorrent t = load_image_torrent(bytes);
        if (options.max_connections < 0 || options.max_upload_rate < 0 ||
            options.max_download_rate < 0)
            throw Error(Errc::InvalidArgs, "limits must not be negative");
        if (options.seed_after < -1)
            throw Error(Errc::InvalidArgs, "seed_after must be -1, 0 or positive");
        std::vector<lt::tcp::endpoint> peers;
        for (const auto& p : options.peers) {
            auto eps = resolve_peer(p);
            peers.insert(peers.end(), eps.begin(), eps.end());
        }
        const bool writing = op == Operation::Deploy;
        check_conflicts(path, writing);

        // A block device to write: the safety rules decide first (mounted,
        // system disk, ignored, read-only, too small, ...), then the whole
        // disk is locked, the target opened O_EXCL, and the rules asked once
        // more while we hold it, which closes the race with other openers.
        std::string open_path = path;
        std::unique_ptr<WholeDiskLock> disk_lock;
        std::optional<ResolvedTarget> resolved;
        if (writing && !allow_file) {
            resolved = check_target(path, t.layout.end(), true, options.force);
            disk_lock = std::make_unique<WholeDiskLock>(resolved->whole_disk_node);
            open_path = resolved->node;
        }
        auto target = Target::open(
            open_path, writing ? Target::Access::ReadWrite : Target::Access::ReadOnly, allow_file);
        std::string direct_io_note;
        if (resolved)
            check_target(resolved->node, t.layout.end(), true, options.force, true);
        if (writing && target->is_block_device() &&
            (config.direct_io == DirectIo::Always ||
             (config.direct_io == DirectIo::Auto && target->rotational() == false))) {
            if (const int err = target->use_direct_io())  // buffered writes then
                direct_io_note = std::string("writing through the page cache: O_DIRECT refused: ") +
                                 std::strerror(err);
        }
        if (writing && !target->is_block_device()) {
            if (const int err = target->ensure_size(t.layout.end()))
                throw Error(Errc::InvalidTarget, path + ": cannot grow to " +
                                                     std::to_string(t.layout.end()) +
                                                     " bytes: " + std::strerror(err));
        }
        t.layout.check_fits(target->size(), path);

        lt::add_torrent_params atp;
        if (resume && !resume->empty()) {
            lt::error_code ec;
            atp = lt::read_resume_data(*resume, ec);
            if (ec)
                atp = lt::add_torrent_params{};  // unreadable: start over, nothing trusted
            // Pieces and blocks listed as written were written before the
            // resume data was taken, and the target was flushed after that
            // (save_resume), so they are on the disk: all of them are kept,
            // and a completed piece is still hash-checked before it counts.
            atp.verified_pieces.clear();
            atp.flags &= ~lt::torrent_flags::seed_mode;
        }

        auto j = std::make_unique<Job>();
        const JobId id = fixed_id ? *fixed_id : next_id;
        next_id = std::max(next_id, id + 1);
        j->status.id = id;
        j->status.operation = op;
        j->status.state = JobState::Queued;
        j->status.target = target->path();
        j->status.name = t.info->name();
        j->status.info_hash = info_hash_hex(*t.info);
        j->status.bytes_total = t.layout.data_bytes();
        j->status.start_time = start_time ? start_time : now_us();
        j->options = options;
        j->allow_file = allow_file;
        if (resolved) {
            j->disk_lock = std::move(disk_lock);
            j->disk_name = resolved->name;
            j->whole_disk = !resolved->disk.is_partition;
        }

        atp.ti = std::make_shared<lt::torrent_info>(*t.info);
        atp.save_path = target->path();
        // Added paused, resumed when its check is done: libtorrent makes
        // outgoing connections once a second, but resuming a checked torrent
        // connects to its known peers at once (connect boost). Up to a
        // second less per deployment.
        atp.flags &= ~lt::torrent_flags::auto_managed;
        atp.flags |= lt::torrent_flags::paused;
        if (options.sequential)
            atp.flags |= lt::torrent_flags::sequential_download;
        atp.upload_limit = options.max_upload_rate > 0 ? options.max_upload_rate : -1;
        atp.download_limit = options.max_download_rate > 0 ? options.max_download_rate : -1;
        atp.max_connections =
            options.max_connections > 0
                ? options.max_connections
                : (config.connections_per_torrent > 0 ? config.connections_per_torrent : -1);
        atp.peers = peers;
        atp.extensions.push_back([bans = j->bans](const lt::torrent_handle&, lt::client_data_t) {
            return make_ban_plugin(bans);
        });
        if (config.paced_seeding) {
            PacingConfig pacing;
            atp.extensions.push_back([info = t.info, pacing, report = j->nodelay](
                                         const lt::torrent_handle& handle, lt::client_data_t) {
                return make_paced_plugin(handle, info, pacing, report);
            });
        }
        if (op == Operation::Seed) {
            if (options.seed_verified) {
                // A known-good source: every piece is there, nothing rehashed.
                atp.have_pieces.clear();
                atp.have_pieces.resize(t.info->num_pieces(), true);
            } else {
                atp.have_pieces.clear();
                atp.flags |= lt::torrent_flags::seed_mode;
            }
        }

        Lane& lane = lane_for(j->status.info_hash);
        for (const auto& ep : sibling_endpoints(lane, j->status.info_hash))
            atp.peers.push_back(ep);
        if (!fixed_id)
            persist(*j, bytes);
        lane.disk->bind(target, t.layout);
        lt::error_code ec;
        j->handle = lane.session->add_torrent(std::move(atp), ec);
        if (ec) {
            lane.disk->unbind(target.get());
            forget(id);
            throw Error(Errc::Failed, "cannot start the torrent: " + ec.message());
        }
        j->in_session = true;
        j->lane = &lane;
        // verify checks SHA-1 piece hashes: a v2-only torrent has none, and
        // verify_image refuses it at the end.
        if (writing && options.verify && target->direct_io() && t.info->info_hashes().has_v1())
            j->verifier = std::make_unique<PieceVerifier>(target, t);
        j->torrent = std::move(t);
        j->target = std::move(target);
        by_handle[j->handle] = id;
        const JobStatus snapshot = j->status;
        jobs.emplace(id, std::move(j));
        if (observer) {
            observer->job_added(snapshot);
            if (resolved)
                for (const auto& why : resolved->overridden)
                    observer->job_log(snapshot, "forced: " + why);
            if (!direct_io_note.empty())
                observer->job_log(snapshot, direct_io_note);
        }
        return id;
    }

    // A job that could not come back after a restart: shown as Failed.
    void add_failed(JobId id, Operation op, const std::string& target, const std::string& why) {
        auto j = std::make_unique<Job>();
        j->status.id = id;
        j->status.operation = op;
        j->status.target = target;
        j->status.state = JobState::Failed;
        j->status.last_error = why;
        j->status.start_time = now_us();
        next_id = std::max(next_id, id + 1);
        const JobStatus snapshot = j->status;
        jobs.emplace(id, std::move(j));
        forget(id);
        if (observer) {
            observer->job_added(snapshot);
            observer->job_finished(snapshot, false, why);
        }
    }

    std::vector<JobId> restore() {
        std::vector<JobId> out;
        if (config.state_dir.empty())
            return out;
        const std::filesystem::path root = config.state_dir + "/jobs";
        std::error_code ec;
        if (!std::filesystem::is_directory(root, ec))
            return out;
        std::vector<JobId> ids;
        for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
            const std::string name = entry.path().filename().string();
            if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos ||
                name.size() > 9)
                continue;
            ids.push_back(static_cast<JobId>(std::stoul(name)));
        }
        std::sort(ids.begin(), ids.end());
        for (JobId id : ids) {
            const std::string dir = job_dir(id);
            Operation op = Operation::Deploy;
            std::string target;
            try {
                const auto text = read_file(dir + "/job.json", 1 << 20);
                const auto record = nlohmann::json::parse(text.begin(), text.end());
                op = record.at("operation").get<std::string>() == "seed" ? Operation::Seed
                                                                         : Operation::Deploy;
                target = record.at("target").get<std::string>();
                const bool allow_file = record.at("allow_file").get<bool>();
                const auto start = record.at("start_time").get<std::uint64_t>();
                const JobOptions options = options_from_json(record.at("options"));
                const auto torrent = read_file(dir + "/torrent");
                std::vector<char> resume;
                try {
                    resume = read_file(dir + "/resume");
                } catch (const Error& e) {
                    if (e.code() != Errc::NotFound)
                        throw;
                }
                out.push_back(add(op, torrent, target, options, allow_file, id, &resume, start));
            } catch (const std::exception& e) {
                add_failed(id, op, target, std::string("cannot resume after restart: ") + e.what());
            }
        }
        return out;
    }

    // Asks libtorrent for resume data of every unfinished deploy; the answer
    // arrives as save_resume_data_alert.
    void request_resume_data() {
        for (auto& [id, j] : jobs) {
            if (j->in_session && j->status.operation == Operation::Deploy && !j->deployed) {
                j->handle.save_resume_data(lt::torrent_handle::only_if_modified);
                ++resume_outstanding;
            }
        }
    }

    // Resume data lists pieces that passed their hash before it was taken;
    // flushing the target before writing the file makes that list true on
    // the disk, so a crash never leaves a resume file that claims more than
    // the device holds.
    void save_resume(Job& j, const lt::add_torrent_params& params, bool now) {
        if (config.state_dir.empty() || !j.target || j.deployed)
            return;
        auto buf = std::make_shared<std::vector<char>>(lt::write_resume_data_buf(params));
        auto target = j.target;
        const std::string path = job_dir(j.status.id) + "/resume";
        const JobId id = j.status.id;
        auto work = [this, buf, target, path, id, now] {
            std::string error;
            const int flush_error = target->flush();
            if (flush_error)
                error = "flushing " + target->path() + " failed: " + std::strerror(flush_error);
            else {
                try {
                    write_file_atomic(path, *buf);
                } catch (const Error& e) {
                    error = e.what();
                }
            }
            if (error.empty() || now)
                return;
            post([this, id, error, flush_error] {
                auto it = jobs.find(id);
                if (it == jobs.end() || is_final(it->second->status.state))
                    return;
                // The device lost writes: pieces that passed their hash may
                // not be on it. The job fails now; it must never complete.
                if (flush_error)
                    fail(*it->second, Errc::IoError, error);
                else if (observer)
                    observer->job_log(it->second->status, "saving resume data: " + error);
            });
        };
        if (now)
            work();
        else
            saver.push(std::move(work));
    }

    void set_state(Job& j, JobState s) {
        if (j.status.state == s)
            return;
        j.status.state = s;
        j.dirty = true;
    }

    void leave_session(Job& j) {
        if (!j.in_session)
            return;
        j.in_session = false;
        by_handle.erase(j.handle);
        j.lane->session->remove_torrent(j.handle);  // never with delete_files
        j.verifier.reset();                         // it holds the target open too
        j.target.reset();
        if (j.disk_lock) {
            // udev may look again: rescan so it sees the new filesystem.
            try {
                j.disk_lock->release_and_rescan(j.disk_name, j.whole_disk);
            } catch (const Error& e) {
                if (observer)
                    observer->job_log(j.status, e.what());
            }
            j.disk_lock.reset();
        }
        j.status.download_rate = 0;
        j.status.upload_rate = 0;
        j.status.peers = 0;
    }

    void finish(Job& j, JobState s, bool success, const std::string& message,
                Errc code = Errc::Failed) {
        leave_session(j);
        forget(j.status.id);
        j.seed_until.reset();
        set_state(j, s);
        if (!success) {
            j.status.last_error = message;
            j.status.error_code = code;
        }
        j.status.expected_end_time = 0;
        j.dirty = true;
        emit(j, true);
        if (observer)
            observer->job_finished(j.status, success, message);
    }

    void fail(Job& j, Errc code, const std::string& message) {
        if (is_final(j.status.state))
            return;
        j.cancel->store(true);
        finish(j, JobState::Failed, false, message, code);
    }

    void emit(Job& j, bool force = false) {
        if (!j.dirty || !observer)
            return;
        const auto now = Clock::now();
        if (!force && j.status.state == j.last_emitted_state &&
            now - j.last_emit < kUpdateInterval / 1.1)
            return;
        j.dirty = false;
        j.last_emit = now;
        j.last_emitted_state = j.status.state;
        observer->job_changed(j.status);
    }

    // A deploy whose pieces all passed their hash: make it durable (and
    // verify it, if asked) off the owner thread.
    void start_finishing(Job& j) {
        if (j.deployed || j.finisher.joinable() || !j.target)
            return;
        set_state(j, JobState::Finishing);
        j.status.bytes_done = j.status.bytes_total;
        j.status.progress = 1.0;
        j.status.download_rate = 0;
        auto target = j.target;
        const ImageTorrent torrent = j.torrent;
        const bool verify = j.options.verify;
        const JobId id = j.status.id;
        auto cancel = j.cancel;
        std::shared_ptr<PieceVerifier> verifier(std::move(j.verifier));
        j.finisher = std::thread([this, id, target, torrent, verify, cancel, verifier] {
            std::string error;
            std::string note;  // how the verification went, for the message
            Errc code = Errc::IoError;
            if (const int err = target->flush()) {
                error = "flushing " + target->path() + " failed: " + std::strerror(err);
            } else if (verify) {
                try {
                    // What was checked during the transfer is not read again.
                    PieceVerifier::Result early;
                    if (verifier)
                        early = verifier->finish();
                    VerifyResult r;
                    if (early.io_error)
                        r.io_error = early.io_error;
                    else
                        r = verify_image(*target, torrent, nullptr, cancel.get(), 0,
                                         verifier ? &early.checked : nullptr);
                    if (verifier) {
                        const auto n = std::count(early.checked.begin(), early.checked.end(), true);
                        note = " (" + std::to_string(n) + " of " +
                               std::to_string(early.checked.size()) +
                               " pieces checked while the others arrived)";
                    }
                    r.bad_pieces.insert(r.bad_pieces.end(), early.bad.begin(), early.bad.end());
                    std::sort(r.bad_pieces.begin(), r.bad_pieces.end());
                    if (r.io_error)
                        error =
                            "verifying " + target->path() + " failed: " + std::strerror(r.io_error);
                    else if (!r.bad_pieces.empty())
                        error = "verification failed: " + std::to_string(r.bad_pieces.size()) +
                                " piece(s) on " + target->path() +
                                " do not match the torrent (first: " +
                                std::to_string(r.bad_pieces.front()) + ")";
                } catch (const Error& e) {
                    error = e.what();
                    code = e.code();
                }
            }
            post([this, id, error, code, note] { finished_writing(id, error, code, note); });
        });
    }

    void finished_writing(JobId id, const std::string& error, Errc code, const std::string& note) {
        auto it = jobs.find(id);
        if (it == jobs.end())
            return;
        Job& j = *it->second;
        if (j.finisher.joinable())
            j.finisher.join();
        if (is_final(j.status.state))
            return;
        if (!error.empty()) {
            fail(j, code, error);
            return;
        }
        j.deployed = true;
        forget(j.status.id);  // durable: nothing to resume after a restart
        j.status.bytes_done = j.status.bytes_total;
        j.status.progress = 1.0;
        const std::string msg = std::string("deployed ") + j.status.name + " to " +
                                j.status.target + (j.options.verify ? " and verified" + note : "");
        if (j.options.seed_after == 0 || j.status.state == JobState::Paused) {
            finish(j, JobState::Completed, true, msg);
            return;
        }
        set_state(j, JobState::Seeding);
        if (j.options.seed_after > 0)
            j.seed_until = Clock::now() + std::chrono::seconds(j.options.seed_after);
        emit(j, true);
        if (observer)
            observer->job_finished(j.status, true, msg);
    }

    // Runs `fn` on the owner thread inside process().
    void post(std::function<void()> fn) {
        {
            std::lock_guard lock(posted_mutex);
            posted.push_back(std::move(fn));
        }
        wake(event);
    }

    // ---- alerts ------------------------------------------------------------

    void update_from(Job& j, const lt::torrent_status& st) {
        if (is_final(j.status.state))
            return;
        if (auto note = j.nodelay->take(); note && observer)
            observer->job_log(j.status, *note);
        JobStatus& s = j.status;
        const auto before = std::tie(s.bytes_done, s.download_rate, s.upload_rate, s.peers,
                                     s.total_download, s.total_upload);
        const auto snapshot = std::make_tuple(s.bytes_done, s.download_rate, s.upload_rate, s.peers,
                                              s.total_download, s.total_upload);
        s.peers = static_cast<std::uint32_t>(std::max(0, st.num_peers));
        const auto down =
            static_cast<std::uint64_t>(std::max<std::int64_t>(0, st.total_payload_download));
        const auto up =
            static_cast<std::uint64_t>(std::max<std::int64_t>(0, st.total_payload_upload));
        // Rates from the byte counters between two updates, smoothed:
        // libtorrent's own rates lag by seconds, which on a LAN is the whole
        // deployment.
        const auto now = Clock::now();
        if (j.last_sample != Clock::time_point{} && now > j.last_sample) {
            const double dt = std::chrono::duration<double>(now - j.last_sample).count();
            const double d = static_cast<double>(down - std::min(down, s.total_download)) / dt;
            const double u = static_cast<double>(up - std::min(up, s.total_upload)) / dt;
            j.down_rate = j.down_rate * 0.3 + d * 0.7;
            j.up_rate = j.up_rate * 0.3 + u * 0.7;
            s.download_rate = static_cast<std::uint64_t>(j.down_rate);
            s.upload_rate = static_cast<std::uint64_t>(j.up_rate);
        }
        j.last_sample = now;
        s.total_download = down;
        s.total_upload = up;
        if (s.operation == Operation::Seed) {
            s.bytes_done = s.bytes_total;
            s.progress = 1.0;
        } else if (j.deployed || s.state == JobState::Finishing) {
            // Every piece is written (and hash-checked); what is left is the
            // flush and, if asked, the re-read.
            s.bytes_done = s.bytes_total;
            s.progress = 1.0;
        } else {
            s.bytes_done = std::min<std::uint64_t>(
                static_cast<std::uint64_t>(std::max<std::int64_t>(0, st.total_wanted_done)),
                s.bytes_total);
            s.progress = st.progress;
        }
        if (before != snapshot)
            j.dirty = true;

        // State from libtorrent unless the engine owns it now.
        if (s.state != JobState::Finishing) {
            JobState next = s.state;
            // libtorrent's paused flag is not the job's: every torrent is
            // added paused until its check is done (see add()).
            if (j.paused_by_user)
                next = JobState::Paused;
            else if (j.held)
                next = JobState::Checking;
            else if (st.state == lt::torrent_status::checking_files ||
                     st.state == lt::torrent_status::checking_resume_data)
                next = JobState::Checking;
            else if (st.state == lt::torrent_status::downloading ||
                     st.state == lt::torrent_status::downloading_metadata)
                next =
                    s.operation == Operation::Deploy ? JobState::Downloading : JobState::Checking;
            else if (st.state == lt::torrent_status::finished ||
                     st.state == lt::torrent_status::seeding)
                next = (s.operation == Operation::Seed || j.deployed) ? JobState::Seeding : s.state;
            set_state(j, next);
        }
        // Normally torrent_finished_alert starts this; a job restored with
        // every piece already written may never see that alert.
        if (s.operation == Operation::Deploy && !j.deployed && s.state != JobState::Finishing &&
            !j.held && !j.paused_by_user &&
            (st.state == lt::torrent_status::finished || st.state == lt::torrent_status::seeding))
            start_finishing(j);
        if (s.operation == Operation::Deploy && !j.deployed && s.download_rate > 0 &&
            s.bytes_total > s.bytes_done)
            s.expected_end_time =
                now_us() + (s.bytes_total - s.bytes_done) * 1'000'000 / s.download_rate;
        else if (s.operation == Operation::Deploy && !j.deployed && s.download_rate == 0)
            s.expected_end_time = 0;
    }

    void handle(lt::alert* a) {
        if (auto* su = lt::alert_cast<lt::state_update_alert>(a)) {
            for (const auto& st : su->status)
                if (Job* j = job_by_handle(st.handle))
                    update_from(*j, st);
            return;
        }
        if (auto* ta = dynamic_cast<lt::torrent_alert*>(a)) {
            Job* j = job_by_handle(ta->handle);
            if (!j)
                return;
            if (lt::alert_cast<lt::torrent_checked_alert>(a)) {
                if (j->held) {
                    j->held = false;
                    if (!j->paused_by_user)
                        j->handle.resume();
                }
            } else if (auto* pf = lt::alert_cast<lt::piece_finished_alert>(a)) {
                if (j->verifier)
                    j->verifier->add(static_cast<int>(pf->piece_index));
            } else if (auto* fin = lt::alert_cast<lt::torrent_finished_alert>(a)) {
                (void)fin;
                if (j->status.operation == Operation::Deploy)
                    start_finishing(*j);
            } else if (auto* fe = lt::alert_cast<lt::file_error_alert>(a)) {
                fail(*j, Errc::IoError, j->status.target + ": " + describe_storage_error(*fe));
            } else if (auto* te = lt::alert_cast<lt::torrent_error_alert>(a)) {
                fail(*j, Errc::Failed, te->error.message());
            } else if (auto* hf = lt::alert_cast<lt::hash_failed_alert>(a)) {
                if (observer)
                    observer->job_log(j->status,
                                      "piece " + std::to_string(static_cast<int>(hf->piece_index)) +
                                          " failed its hash check; fetching it again");
            } else if (auto* ban = lt::alert_cast<lt::peer_ban_alert>(a)) {
                j->bans->ban(ban->endpoint, ban->pid);
                if (observer)
                    observer->job_log(j->status, "banned peer " +
                                                     (ban->endpoint.address().to_string() + ":" +
                                                      std::to_string(ban->endpoint.port())) +
                                                     ": it sent data that failed the hash check");
            } else if (auto* rd = lt::alert_cast<lt::save_resume_data_alert>(a)) {
                --resume_outstanding;
                save_resume(*j, rd->params, shutting_down);
            } else if (lt::alert_cast<lt::save_resume_data_failed_alert>(a)) {
                --resume_outstanding;
            } else if (auto* ad = lt::alert_cast<lt::add_torrent_alert>(a)) {
                if (ad->error)
                    fail(*j, Errc::Failed, "cannot add torrent: " + ad->error.message());
            }
        }
    }

    void pop_alerts() {
        std::vector<lt::alert*> alerts;
        // By index: an observer callback may start a job in a new lane.
        for (std::size_t i = 0; i < lanes.size(); ++i) {
            // Alerts live until the next pop_alerts() of their session.
            lanes[i]->session->pop_alerts(&alerts);
            for (lt::alert* a : alerts)
                handle(a);
        }
    }

    void process() {
        std::uint64_t counter;
        while (::read(event, &counter, sizeof counter) > 0) {
        }
        const auto now = Clock::now();
        if (now >= next_update) {
            for (auto& lane : lanes)
                lane->session->post_torrent_updates();
            next_update = now + kUpdateInterval;
        }
        if (!config.state_dir.empty() && now >= next_resume_save) {
            request_resume_data();
            next_resume_save = now + std::chrono::seconds(std::max(1, config.resume_save_interval));
        }
        pop_alerts();

        std::vector<std::function<void()>> work;
        {
            std::lock_guard lock(posted_mutex);
            work.swap(posted);
        }
        for (auto& fn : work)
            fn();

        for (auto& [id, j] : jobs) {
            if (j->seed_until && now >= *j->seed_until) {
                j->seed_until.reset();
                finish(*j, JobState::Completed, true, "seeding time over");
                continue;
            }
            emit(*j);
        }
    }

    std::chrono::milliseconds next_timeout() const {
        const auto now = Clock::now();
        auto until = next_update;
        for (const auto& [id, j] : jobs)
            if (j->seed_until)
                until = std::min(until, *j->seed_until);
        if (until <= now)
            return std::chrono::milliseconds(0);
        return std::chrono::duration_cast<std::chrono::milliseconds>(until - now) +
               std::chrono::milliseconds(1);
    }

    void shutdown() {
        if (lanes.empty())
            return;
        shutting_down = true;
        for (auto& [id, j] : jobs) {
            j->cancel->store(true);
            if (j->finisher.joinable())
                j->finisher.join();
        }
        // Last resume data, flushed and written before the session goes.
        saver.stop();
        if (!config.state_dir.empty()) {
            resume_outstanding = 0;
            for (auto& [id, j] : jobs)
                if (j->in_session && j->status.operation == Operation::Deploy && !j->deployed) {
                    j->handle.save_resume_data(lt::torrent_handle::flush_disk_cache);
                    ++resume_outstanding;
                }
            const auto deadline = Clock::now() + std::chrono::seconds(20);
            while (resume_outstanding > 0 && Clock::now() < deadline) {
                pollfd p{event, POLLIN, 0};
                if (::poll(&p, 1, 200) < 0 && errno != EINTR)
                    break;
                std::uint64_t counter;
                while (::read(event, &counter, sizeof counter) > 0) {
                }
                pop_alerts();
            }
        }
        lanes.clear();  // each session waits for its disk threads' queued writes
    }

    EngineConfig config;
    EngineObserver* observer;
    int event = -1;
    static constexpr std::size_t kMaxLanes = 64;
    std::vector<std::unique_ptr<Lane>> lanes;  // [0] listens on config.listen_port
    std::map<JobId, std::unique_ptr<Job>> jobs;
    std::map<lt::torrent_handle, JobId> by_handle;
    JobId next_id = 1;
    Clock::time_point next_update;
    std::mutex posted_mutex;
    std::vector<std::function<void()>> posted;
    Clock::time_point next_resume_save = Clock::now() + std::chrono::seconds(5);
    int resume_outstanding = 0;
    bool shutting_down = false;
    WorkQueue saver;  // last member: stopped first, before what it uses goes
};

Engine::Engine(EngineConfig config, EngineObserver* observer)
    : impl_(std::make_unique<Impl>(std::move(config), observer)) {}

Engine::~Engine() = default;

int Engine::event_fd() const {
    return impl_->event;
}
void Engine::process() {
    impl_->process();
}
std::chrono::milliseconds Engine::next_timeout() const {
    return impl_->next_timeout();
}

JobId Engine::deploy(std::span<const char> torrent, const std::string& target,
                     const JobOptions& options, bool allow_file) {
    return impl_->add(Operation::Deploy, torrent, target, options, allow_file);
}

JobId Engine::seed(std::span<const char> torrent, const std::string& source,
                   const JobOptions& options) {
    return impl_->add(Operation::Seed, torrent, source, options, true);
}

void Engine::pause(JobId id) {
    auto& j = impl_->job(id);
    if (is_final(j.status.state) || !j.in_session)
        throw Error(Errc::NotSupported,
                    "job " + std::to_string(id) + " is " + std::string(to_string(j.status.state)));
    j.handle.unset_flags(lt::torrent_flags::auto_managed);
    j.handle.pause(lt::torrent_handle::graceful_pause);
    j.paused_by_user = true;
    if (j.status.state != JobState::Finishing)
        impl_->set_state(j, JobState::Paused);
    impl_->emit(j, true);
}

void Engine::resume(JobId id) {
    auto& j = impl_->job(id);
    if (is_final(j.status.state) || !j.in_session)
        throw Error(Errc::NotSupported,
                    "job " + std::to_string(id) + " is " + std::string(to_string(j.status.state)));
    j.handle.resume();
    j.paused_by_user = false;
    if (j.status.state == JobState::Paused)
        impl_->set_state(j, j.deployed || j.status.operation == Operation::Seed
                                ? JobState::Seeding
                                : JobState::Downloading);
    impl_->emit(j, true);
}

void Engine::cancel(JobId id) {
    auto& j = impl_->job(id);
    if (is_final(j.status.state))
        return;
    j.cancel->store(true);
    impl_->finish(j, JobState::Cancelled, false, "cancelled", Errc::Cancelled);
}

std::vector<JobId> Engine::fail_jobs_on(const std::string& device_node, const std::string& why) {
    std::vector<JobId> failed;
    for (auto& [id, j] : impl_->jobs) {
        if (is_final(j->status.state) || j->status.target != device_node)
            continue;
        impl_->fail(*j, Errc::IoError, why);
        failed.push_back(id);
    }
    return failed;
}

void Engine::remove(JobId id) {
    auto& j = impl_->job(id);
    if (!is_final(j.status.state))
        throw Error(Errc::NotSupported,
                    "job " + std::to_string(id) + " is still running; cancel it first");
    if (j.finisher.joinable())
        j.finisher.join();
    impl_->jobs.erase(id);
}

std::optional<JobStatus> Engine::status(JobId id) const {
    auto it = impl_->jobs.find(id);
    if (it == impl_->jobs.end())
        return std::nullopt;
    return it->second->status;
}

std::vector<JobId> Engine::jobs() const {
    std::vector<JobId> out;
    for (const auto& [id, j] : impl_->jobs)
        out.push_back(id);
    return out;
}

int Engine::listen_port() const {
    return impl_->lanes.empty() ? 0 : impl_->lanes.front()->session->listen_port();
}

void Engine::shutdown() {
    impl_->shutdown();
}

std::vector<JobId> Engine::restore() {
    return impl_->restore();
}

}  // namespace ezio
