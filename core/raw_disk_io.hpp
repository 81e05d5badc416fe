// RawDiskIO: libtorrent's disk subsystem (lt::disk_interface) over raw block
// devices. Every torrent file is an extent of the partition (see
// layout.hpp); a block at (piece, offset) is written at extent offset +
// position in file. Pad files are never written and read as zeros.
//
// Threading (the contract of libtorrent/disk_interface.hpp): every
// disk_interface call arrives on libtorrent's network thread; the work runs on
// our own pool of I/O threads; every completion handler is posted back to the
// io_context exactly once. All jobs touching one piece go to the same I/O
// thread in submission order, so a read or hash always sees earlier writes of
// that piece. Errors travel as lt::storage_error; no exception crosses a
// thread.
//
// The cost at LAN speed is per operation, not per byte: a thread hop, a
// wake-up, a syscall per 16 KiB block would cost more than the copy. So:
// - received blocks of a piece that follow each other are staged on the
//   network thread and handed to the piece's I/O thread as one run (up to
//   kMaxRun bytes, written with one pwritev()), when the run is full or
//   reaches the end of the piece, when the next block does not follow it,
//   when anything else touches the piece (hash, read, clear, stop), when
//   libtorrent must wait for the disk (back-pressure), or when no block came
//   for 20 ms (the peer stalled, paused or left). A write's handler is
//   called only once its block is written (to the device, or to its page
//   cache; flush() makes it durable), so libtorrent never counts a block
//   that is not on the target;
// - a read fetches the 1 MiB-aligned chunk of the piece around the block
//   (the whole piece, if smaller) on the I/O thread, in one pread() or, from
//   a source opened read-only, as a mapping of the device whose pages are
//   read in there (no copy: the kernel sends from its page cache); the
//   network thread keeps the last chunks read and serves later requests
//   for their blocks, from this peer or others, without a hop;
// - jobs are queued without waking a worker; submit_jobs(), which libtorrent
//   calls after each batch of async_* calls, wakes the workers once; their
//   completions run on the network thread in one posted call.
//
// Targets are bound before a torrent is added: the Engine opens and validates
// the target, then calls bind(); new_torrent() picks the binding up by the
// torrent's save_path, which is the target's path.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <libtorrent/disk_buffer_holder.hpp>
#include <libtorrent/disk_interface.hpp>
#include <libtorrent/io_context.hpp>

#include "disk_buffers.hpp"
#include "layout.hpp"
#include "target.hpp"

namespace ezio {

// Reads or writes [offset, offset+len) of `piece` of an image torrent on
// `target`, mapping torrent files to partition extents; pad files read as
// zeros and are never written. Returns a storage_error whose ec is set on
// failure (file index and operation filled in). Safe from any thread.
lt::storage_error piece_io(const Target& target, const ImageLayout& layout,
                           const lt::file_storage& files, lt::piece_index_t piece, int offset,
                           char* buf, int len, bool write);

class RawDiskIO final : public lt::disk_interface, public lt::buffer_allocator_interface {
  public:
    RawDiskIO(lt::io_context& ioc, const lt::settings_interface& settings, int threads);
    ~RawDiskIO() override;

    // Registers the target the next torrent added with save_path ==
    // target->path() will use. Called on the Engine's thread before
    // add_torrent(); consumed (first in, first out) by new_torrent(), which
    // libtorrent calls in the order torrents were added.
    void bind(std::shared_ptr<Target> target, ImageLayout layout);
    // Drops a binding that no torrent picked up (add_torrent failed).
    void unbind(const Target* target);

    // Number of disk I/O threads.
    int threads() const { return static_cast<int>(workers_.size()); }
    // Blocks whose write was accepted but is not on the device yet (tests).
    std::int64_t queued_write_bytes() const { return queued_write_bytes_.load(); }
    // Bytes read as mappings of the source rather than copies (tests).
    std::int64_t mapped_read_bytes() const { return mapped_read_bytes_.load(); }
    // Bytes of written blocks SHA-1-hashed side by side with other pieces'
    // (sha1_update_lanes()), for tests.
    std::int64_t lane_hashed_bytes() const { return lane_hashed_bytes_.load(); }

    // lt::disk_interface
    lt::storage_holder new_torrent(lt::storage_params const& p,
                                   std::shared_ptr<void> const& torrent) override;
    void remove_torrent(lt::storage_index_t) override;
    void async_read(lt::storage_index_t storage, lt::peer_request const& r,
                    std::function<void(lt::disk_buffer_holder, lt::storage_error const&)> handler,
                    lt::disk_job_flags_t flags) override;
    bool async_write(lt::storage_index_t storage, lt::peer_request const& r, char const* buf,
                     std::shared_ptr<lt::disk_observer> o,
                     std::function<void(lt::storage_error const&)> handler,
                     lt::disk_job_flags_t flags) override;
    void async_hash(
        lt::storage_index_t storage, lt::piece_index_t piece, lt::span<lt::sha256_hash> v2,
        lt::disk_job_flags_t flags,
        std::function<void(lt::piece_index_t, lt::sha1_hash const&, lt::storage_error const&)>
            handler) override;
    void async_hash2(
        lt::storage_index_t storage, lt::piece_index_t piece, int offset,
        lt::disk_job_flags_t flags,
        std::function<void(lt::piece_index_t, lt::sha256_hash const&, lt::storage_error const&)>
            handler) override;
    void async_move_storage(
        lt::storage_index_t storage, std::string p, lt::move_flags_t flags,
        std::function<void(lt::status_t, std::string const&, lt::storage_error const&)> handler)
        override;
    void async_release_files(lt::storage_index_t storage, std::function<void()> handler) override;
    void async_check_files(
        lt::storage_index_t storage, lt::add_torrent_params const* resume_data,
        lt::aux::vector<std::string, lt::file_index_t> links,
        std::function<void(lt::status_t, lt::storage_error const&)> handler) override;
    void async_stop_torrent(lt::storage_index_t storage, std::function<void()> handler) override;
    void async_rename_file(
        lt::storage_index_t storage, lt::file_index_t index, std::string name,
        std::function<void(std::string const&, lt::file_index_t, lt::storage_error const&)> handler)
        override;
    void async_delete_files(lt::storage_index_t storage, lt::remove_flags_t options,
                            std::function<void(lt::storage_error const&)> handler) override;
    void async_set_file_priority(
        lt::storage_index_t storage,
        lt::aux::vector<lt::download_priority_t, lt::file_index_t> prio,
        std::function<void(lt::storage_error const&,
                           lt::aux::vector<lt::download_priority_t, lt::file_index_t>)>
            handler) override;
    void async_clear_piece(lt::storage_index_t storage, lt::piece_index_t index,
                           std::function<void(lt::piece_index_t)> handler) override;
    void update_stats_counters(lt::counters& c) const override;
    std::vector<lt::open_file_state> get_status(lt::storage_index_t) const override;
    void abort(bool wait) override;
    void submit_jobs() override;
    void settings_updated() override;

    // lt::buffer_allocator_interface
    void free_disk_buffer(char* b) override;

    // Bytes of one coalesced write at most.
    static constexpr int kMaxRun = 1 << 20;

  private:
    struct Storage;
    struct Run;
    struct CachedRead;
    class Worker;
    using Completion = std::function<void()>;
    using Key = std::pair<std::uint64_t, int>;  // storage serial, piece
    using ReadHandler = std::function<void(lt::disk_buffer_holder, lt::storage_error const&)>;

    std::shared_ptr<Storage> storage(lt::storage_index_t idx) const;
    Worker& worker_for(lt::storage_index_t storage, lt::piece_index_t piece);
    // Network thread: hands the staged run of `key` (if any), or every
    // staged run of a storage, to its worker.
    void push(const Key& key);
    void push_storage(std::uint64_t serial);
    void push_all();
    // Network thread: a run that got no block for a tick (kIdleTick) is
    // written without waiting for more, so a peer that stalls, pauses or
    // goes away leaves nothing unwritten.
    void arm_idle_flush();
    void idle_flush();
    // Network thread: the read cache.
    const char* cached(const Key& key, int start, int len);
    void remember(const Key& key, int start, int len, const char* slab);
    void forget(const Key& key);
    // Network thread: a chunk read finished; serves the requests waiting
    // for it.
    void chunk_read(const Key& key, int start, int len, const char* slab,
                    const lt::storage_error& se);
    // Worker side: queues completions to run on the network thread, in order.
    void complete(std::vector<Completion>& done);
    void run_completions();
    void write_done(std::int64_t bytes);
    // Posts on_disk() to the observers waiting for the queue to drain.
    void wake_observers();

    lt::io_context& ioc_;
    const lt::settings_interface& settings_;
    BlockPool blocks_;
    SlabPool slabs_;

    mutable std::mutex mutex_;  // guards storages_, free_slots_, bindings_
    std::vector<std::shared_ptr<Storage>> storages_;
    std::vector<lt::storage_index_t> free_slots_;
    std::uint64_t storage_serial_ = 0;
    struct Binding {
        std::shared_ptr<Target> target;
        ImageLayout layout;
    };
    std::map<std::string, std::deque<Binding>> bindings_;

    // Network thread only.
    std::map<Key, Run> staged_;
    boost::asio::steady_timer idle_timer_;
    bool idle_armed_ = false;
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // for the timer's handler
    std::map<Key, int> writing_;  // blocks staged or queued, not completed
    std::vector<CachedRead> cache_;
    std::uint64_t cache_clock_ = 0;
    struct Waiting {
        int start;
        int len;
        ReadHandler handler;
    };
    // Chunk reads under way, by (key, chunk start), and who waits for them.
    std::map<std::pair<Key, int>, std::vector<Waiting>> reading_;

    std::mutex done_mutex_;  // guards done_, done_posted_
    std::vector<Completion> done_;
    bool done_posted_ = false;

    // Back-pressure: bytes accepted by async_write but not yet on the device.
    std::atomic<std::int64_t> queued_write_bytes_{0};
    std::atomic<bool> exceeded_{false};
    std::mutex observers_mutex_;
    std::vector<std::weak_ptr<lt::disk_observer>> observers_;
    std::atomic<int> max_queued_bytes_;
    // Chunks of read-only sources are mapped, not copied (Worker::map_chunk),
    // unless the kernel cannot read a mapping in ahead (EINVAL).
    std::atomic<bool> map_reads_{true};
    std::atomic<std::int64_t> mapped_read_bytes_{0};
    std::atomic<std::int64_t> lane_hashed_bytes_{0};

    std::vector<std::unique_ptr<Worker>> workers_;  // last: their threads use the rest
};

}  // namespace ezio
