#include "raw_disk_io.hpp"

#include "work_queue.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <libtorrent/add_torrent_params.hpp>
#include <libtorrent/disk_observer.hpp>
#include <libtorrent/error_code.hpp>
#include <libtorrent/file_storage.hpp>
#include <libtorrent/hasher.hpp>
#include <libtorrent/settings_pack.hpp>

namespace ezio {

namespace {

constexpr int kBlock = lt::default_block_size;
constexpr std::size_t kHashChunk = 1 << 20;  // read granularity while hashing

lt::storage_error make_error(int err, lt::operation_t op,
                             lt::file_index_t file = lt::file_index_t{-1}) {
    lt::storage_error se;
    se.ec = lt::error_code(err, lt::system_category());
    se.operation = op;
    se.file(file);
    return se;
}

lt::storage_error not_supported(lt::operation_t op) {
    return make_error(ENOTSUP, op);
}

}  // namespace

lt::storage_error piece_io(const Target& target, const ImageLayout& layout,
                           const lt::file_storage& files, lt::piece_index_t piece, int offset,
                           char* buf, int len, bool write) {
    const auto op = write ? lt::operation_t::file_write : lt::operation_t::file_read;
    for (const lt::file_slice& s : files.map_block(piece, offset, len)) {
        const auto size = static_cast<std::size_t>(s.size);
        const auto base = layout.device_offset(s.file_index);
        if (!base) {  // BEP 47 pad file: never written, reads as zeros
            if (!write)
                std::memset(buf, 0, size);
            buf += size;
            continue;
        }
        const std::uint64_t at = *base + static_cast<std::uint64_t>(s.offset);
        const int err = write ? target.write_at(buf, size, at) : target.read_at(buf, size, at);
        if (err != 0)
            return make_error(err, op, s.file_index);
        buf += size;
    }
    return {};
}

struct RawDiskIO::Storage {
    Storage(const lt::file_storage& f, std::shared_ptr<void> o, std::shared_ptr<Target> t,
            ImageLayout l)
        : files(f), owner(std::move(o)), target(std::move(t)), layout(std::move(l)) {}

    lt::storage_error io(lt::piece_index_t piece, int offset, char* buf, int len,
                         bool write) const {
        if (!target)
            return make_error(EBADF,
                              write ? lt::operation_t::file_write : lt::operation_t::file_read);
        return piece_io(*target, layout, files, piece, offset, buf, len, write);
    }

    const lt::file_storage& files;  // owned by the torrent that `owner` keeps alive
    std::uint64_t serial = 0;       // unique per storage, unlike the reusable index
    std::shared_ptr<void> owner;
    std::shared_ptr<Target> target;  // null when the torrent had no binding
    ImageLayout layout;
};

// One I/O thread with a FIFO queue.
//
// It also keeps a SHA-1 "cursor" per piece being written: blocks that arrive
// in order are hashed straight from the buffer just written, so async_hash
// only reads back what the cursor did not cover (usually nothing). The
// cursors are touched only by this worker's thread: every job of a piece runs
// here, in order.
class RawDiskIO::Worker {
  public:
    struct Cursor {
        int next = 0;  // bytes of the piece hashed so far
        lt::hasher sha1;
    };
    using CursorKey = std::pair<std::uint64_t, int>;  // storage serial, piece

    // Called after a block was written successfully.
    void hashed_write(CursorKey key, int start, const char* data, int len) {
        auto it = cursors_.find(key);
        if (start == 0) {
            Cursor& c = it == cursors_.end() ? cursors_[key] : it->second;
            c = Cursor{};
            c.sha1.update(data, len);
            c.next = len;
            return;
        }
        if (it == cursors_.end())
            return;
        if (start == it->second.next) {
            it->second.sha1.update(data, len);
            it->second.next += len;
        } else if (start < it->second.next) {
            cursors_.erase(it);  // hashed bytes were overwritten
        }
        // start > next: a gap; the cursor stops, async_hash reads the rest.
    }
    // Takes the cursor of a piece (if any) out of the table.
    std::optional<Cursor> take_cursor(CursorKey key) {
        auto it = cursors_.find(key);
        if (it == cursors_.end())
            return std::nullopt;
        Cursor c = std::move(it->second);
        cursors_.erase(it);
        return c;
    }
    void drop_cursor(CursorKey key) { cursors_.erase(key); }

    void push(std::function<void()> job) { queue_.push(std::move(job)); }
    // Runs what is queued, then ends the thread.
    void stop() { queue_.stop(); }

  private:
    std::map<CursorKey, Cursor> cursors_;  // this worker's thread only
    WorkQueue queue_;                      // last: its thread uses cursors_
};

RawDiskIO::RawDiskIO(lt::io_context& ioc, const lt::settings_interface& settings, int threads)
    : ioc_(ioc),
      settings_(settings),
      max_queued_bytes_(settings.get_int(lt::settings_pack::max_queued_disk_bytes)) {
    threads = std::max(1, threads);
    for (int i = 0; i < threads; ++i)
        workers_.push_back(std::make_unique<Worker>());
}

RawDiskIO::~RawDiskIO() {
    abort(true);
    std::lock_guard lock(buffers_mutex_);
    for (char* b : free_buffers_)
        std::free(b);
}

void RawDiskIO::bind(std::shared_ptr<Target> target, ImageLayout layout) {
    std::lock_guard lock(mutex_);
    const std::string path = target->path();
    bindings_[path].push_back(Binding{std::move(target), std::move(layout)});
}

void RawDiskIO::unbind(const Target* target) {
    std::lock_guard lock(mutex_);
    auto it = bindings_.find(target->path());
    if (it == bindings_.end())
        return;
    auto& q = it->second;
    q.erase(std::remove_if(q.begin(), q.end(),
                           [target](const Binding& b) { return b.target.get() == target; }),
            q.end());
    if (q.empty())
        bindings_.erase(it);
}

lt::storage_holder RawDiskIO::new_torrent(lt::storage_params const& p,
                                          std::shared_ptr<void> const& torrent) {
    std::lock_guard lock(mutex_);
    std::shared_ptr<Target> target;
    ImageLayout layout;
    if (auto it = bindings_.find(p.path); it != bindings_.end()) {
        target = std::move(it->second.front().target);
        layout = std::move(it->second.front().layout);
        it->second.pop_front();
        if (it->second.empty())
            bindings_.erase(it);
    }
    auto st = std::make_shared<Storage>(p.files, torrent, std::move(target), std::move(layout));
    st->serial = ++storage_serial_;
    lt::storage_index_t idx;
    if (!free_slots_.empty()) {
        idx = free_slots_.back();
        free_slots_.pop_back();
        storages_[static_cast<std::size_t>(static_cast<std::uint32_t>(idx))] = std::move(st);
    } else {
        idx = lt::storage_index_t(static_cast<std::uint32_t>(storages_.size()));
        storages_.push_back(std::move(st));
    }
    return lt::storage_holder(idx, *this);
}

void RawDiskIO::remove_torrent(lt::storage_index_t idx) {
    std::lock_guard lock(mutex_);
    // In-flight jobs hold their own reference; the target closes after them.
    storages_[static_cast<std::size_t>(static_cast<std::uint32_t>(idx))].reset();
    free_slots_.push_back(idx);
}

std::shared_ptr<RawDiskIO::Storage> RawDiskIO::storage(lt::storage_index_t idx) const {
    std::lock_guard lock(mutex_);
    return storages_[static_cast<std::size_t>(static_cast<std::uint32_t>(idx))];
}

RawDiskIO::Worker& RawDiskIO::worker_for(lt::storage_index_t storage, lt::piece_index_t piece) {
    const auto h = static_cast<std::size_t>(static_cast<std::uint32_t>(storage)) * 0x9E3779B1u +
                   static_cast<std::size_t>(static_cast<int>(piece));
    return *workers_[h % workers_.size()];
}

RawDiskIO::Worker& RawDiskIO::any_worker(lt::storage_index_t storage) {
    return *workers_[static_cast<std::size_t>(static_cast<std::uint32_t>(storage)) %
                     workers_.size()];
}

char* RawDiskIO::allocate_buffer() {
    {
        std::lock_guard lock(buffers_mutex_);
        if (!free_buffers_.empty()) {
            char* b = free_buffers_.back();
            free_buffers_.pop_back();
            return b;
        }
    }
    return static_cast<char*>(std::malloc(kBlock));
}

void RawDiskIO::free_disk_buffer(char* b) {
    if (!b)
        return;
    std::lock_guard lock(buffers_mutex_);
    // Keep a bounded pool; beyond it, give memory back.
    if (free_buffers_.size() < 4096)
        free_buffers_.push_back(b);
    else
        std::free(b);
}

void RawDiskIO::async_read(
    lt::storage_index_t idx, lt::peer_request const& r,
    std::function<void(lt::disk_buffer_holder, lt::storage_error const&)> handler,
    lt::disk_job_flags_t) {
    auto st = storage(idx);
    if (r.length <= 0 || r.length > kBlock || r.start < 0) {
        lt::post(ioc_, [h = std::move(handler)] {
            h(lt::disk_buffer_holder{}, make_error(EINVAL, lt::operation_t::file_read));
        });
        return;
    }
    worker_for(idx, r.piece).push([this, st = std::move(st), r, h = std::move(handler)]() mutable {
        char* buf = allocate_buffer();
        if (!buf) {
            lt::post(ioc_, [h = std::move(h)] {
                h(lt::disk_buffer_holder{}, make_error(ENOMEM, lt::operation_t::alloc_cache_piece));
            });
            return;
        }
        lt::storage_error se = st->io(r.piece, r.start, buf, r.length, false);
        if (se.ec) {
            free_disk_buffer(buf);
            lt::post(ioc_, [h = std::move(h), se] { h(lt::disk_buffer_holder{}, se); });
            return;
        }
        lt::post(ioc_, [this, h = std::move(h), buf, len = r.length] {
            h(lt::disk_buffer_holder(*this, buf, len), lt::storage_error{});
        });
    });
}

bool RawDiskIO::async_write(lt::storage_index_t idx, lt::peer_request const& r, char const* buf,
                            std::shared_ptr<lt::disk_observer> o,
                            std::function<void(lt::storage_error const&)> handler,
                            lt::disk_job_flags_t) {
    auto st = storage(idx);
    if (r.length <= 0 || r.length > kBlock || r.start < 0) {
        lt::post(ioc_,
                 [h = std::move(handler)] { h(make_error(EINVAL, lt::operation_t::file_write)); });
        return false;
    }
    char* copy = allocate_buffer();
    if (!copy) {
        lt::post(ioc_, [h = std::move(handler)] {
            h(make_error(ENOMEM, lt::operation_t::alloc_cache_piece));
        });
        return false;
    }
    std::memcpy(copy, buf, static_cast<std::size_t>(r.length));
    const std::int64_t queued = queued_write_bytes_.fetch_add(r.length) + r.length;

    Worker& w = worker_for(idx, r.piece);
    w.push([this, &w, st = std::move(st), r, copy, h = std::move(handler)]() mutable {
        lt::storage_error se = st->io(r.piece, r.start, copy, r.length, true);
        const Worker::CursorKey key{st->serial, static_cast<int>(r.piece)};
        if (se.ec)
            w.drop_cursor(key);
        else
            w.hashed_write(key, r.start, copy, r.length);
        free_disk_buffer(copy);
        lt::post(ioc_, [h = std::move(h), se] { h(se); });
        write_done(r.length);
    });

    if (queued > max_queued_bytes_.load()) {
        std::lock_guard lock(observers_mutex_);
        exceeded_ = true;
        if (o)
            observers_.push_back(o);
        return true;
    }
    return false;
}

void RawDiskIO::write_done(int bytes) {
    const std::int64_t left = queued_write_bytes_.fetch_sub(bytes) - bytes;
    if (!exceeded_.load() || left > max_queued_bytes_.load() / 2)
        return;
    std::vector<std::weak_ptr<lt::disk_observer>> wake;
    {
        std::lock_guard lock(observers_mutex_);
        if (!exceeded_)
            return;
        exceeded_ = false;
        wake.swap(observers_);
    }
    lt::post(ioc_, [wake = std::move(wake)] {
        for (auto& w : wake)
            if (auto o = w.lock())
                o->on_disk();
    });
}

void RawDiskIO::async_hash(
    lt::storage_index_t idx, lt::piece_index_t piece, lt::span<lt::sha256_hash> v2,
    lt::disk_job_flags_t flags,
    std::function<void(lt::piece_index_t, lt::sha1_hash const&, lt::storage_error const&)>
        handler) {
    auto st = storage(idx);
    Worker& w = worker_for(idx, piece);
    w.push([this, &w, st = std::move(st), piece, v2, flags, h = std::move(handler)]() mutable {
        const lt::file_storage& fs = st->files;
        const int size = fs.piece_size(piece);
        const bool want_v1 = bool(flags & lt::disk_interface::v1_hash);
        const int size2 = v2.empty() ? 0 : fs.piece_size2(piece);
        thread_local std::vector<char> chunk;
        chunk.resize(kHashChunk);

        lt::hasher h1;
        lt::hasher256 h2;
        int block = 0;     // index of the v2 block being hashed
        int in_block = 0;  // bytes of it hashed so far
        lt::storage_error se;
        const int limit = want_v1 ? size : size2;
        int start = 0;
        // SHA-1 only: continue from what was hashed while writing.
        auto cursor = w.take_cursor({st->serial, static_cast<int>(piece)});
        if (want_v1 && v2.empty() && cursor && cursor->next <= size) {
            h1 = cursor->sha1;
            start = cursor->next;
        }
        for (int pos = start; pos < limit;) {
            const int n = std::min<int>(static_cast<int>(kHashChunk), limit - pos);
            se = st->io(piece, pos, chunk.data(), n, false);
            if (se.ec)
                break;
            if (want_v1)
                h1.update({chunk.data(), n});
            // v2 block hashes cover only the file's data in this piece.
            for (int off = 0; !v2.empty() && pos + off < size2 && off < n;) {
                const int take = std::min({kBlock - in_block, n - off, size2 - (pos + off)});
                h2.update({chunk.data() + off, take});
                off += take;
                in_block += take;
                if (in_block == kBlock || pos + off == size2) {
                    v2[block++] = h2.final();
                    h2.reset();
                    in_block = 0;
                }
            }
            pos += n;
        }
        const lt::sha1_hash digest = (want_v1 && !se.ec) ? h1.final() : lt::sha1_hash{};
        lt::post(ioc_, [h = std::move(h), piece, digest, se] { h(piece, digest, se); });
    });
}

void RawDiskIO::async_hash2(
    lt::storage_index_t idx, lt::piece_index_t piece, int offset, lt::disk_job_flags_t,
    std::function<void(lt::piece_index_t, lt::sha256_hash const&, lt::storage_error const&)>
        handler) {
    auto st = storage(idx);
    worker_for(idx, piece)
        .push([this, st = std::move(st), piece, offset, h = std::move(handler)]() mutable {
            const int size2 = st->files.piece_size2(piece);
            const int len = std::min(kBlock, size2 - offset);
            lt::storage_error se;
            lt::sha256_hash digest;
            if (len <= 0) {
                se = make_error(EINVAL, lt::operation_t::file_read);
            } else {
                char buf[kBlock];
                se = st->io(piece, offset, buf, len, false);
                if (!se.ec)
                    digest = lt::hasher256(buf, len).final();
            }
            lt::post(ioc_, [h = std::move(h), piece, digest, se] { h(piece, digest, se); });
        });
}

void RawDiskIO::async_move_storage(
    lt::storage_index_t, std::string p, lt::move_flags_t,
    std::function<void(lt::status_t, std::string const&, lt::storage_error const&)> handler) {
    // A partition image lives where its target is; it cannot move.
    lt::post(ioc_, [h = std::move(handler), p = std::move(p)] {
        h(lt::status_t::fatal_disk_error, p, not_supported(lt::operation_t::file_rename));
    });
}

void RawDiskIO::async_release_files(lt::storage_index_t idx, std::function<void()> handler) {
    // The descriptor stays open for the torrent's lifetime (O_EXCL must be
    // held while the target is ours); only wait for queued work.
    async_stop_torrent(idx, std::move(handler));
}

void RawDiskIO::async_check_files(
    lt::storage_index_t idx, lt::add_torrent_params const*,
    lt::aux::vector<std::string, lt::file_index_t>,
    std::function<void(lt::status_t, lt::storage_error const&)> handler) {
    // The Engine validated the target before adding the torrent; resume data
    // (have_pieces) is trusted as libtorrent passes it: no_error keeps it.
    auto st = storage(idx);
    lt::storage_error se;
    lt::status_t status = lt::status_t::no_error;
    if (!st || !st->target) {
        se = make_error(ENODEV, lt::operation_t::file_open);
        status = lt::status_t::fatal_disk_error;
    } else if (st->target->size() < st->layout.end()) {
        se = make_error(ENOSPC, lt::operation_t::check_resume);
        status = lt::status_t::fatal_disk_error;
    }
    lt::post(ioc_, [h = std::move(handler), status, se] { h(status, se); });
}

void RawDiskIO::async_stop_torrent(lt::storage_index_t, std::function<void()> handler) {
    if (!handler)
        return;
    // A barrier over every worker: when the last one reaches it, all work
    // queued before this call is done.
    auto remaining = std::make_shared<std::atomic<int>>(static_cast<int>(workers_.size()));
    auto h = std::make_shared<std::function<void()>>(std::move(handler));
    for (auto& w : workers_) {
        w->push([this, remaining, h] {
            if (remaining->fetch_sub(1) == 1)
                lt::post(ioc_, [h] { (*h)(); });
        });
    }
}

void RawDiskIO::async_rename_file(
    lt::storage_index_t, lt::file_index_t index, std::string name,
    std::function<void(std::string const&, lt::file_index_t, lt::storage_error const&)> handler) {
    // File names are partition offsets; renaming would move data.
    lt::post(ioc_, [h = std::move(handler), index, name = std::move(name)] {
        h(name, index, not_supported(lt::operation_t::file_rename));
    });
}

void RawDiskIO::async_delete_files(lt::storage_index_t, lt::remove_flags_t,
                                   std::function<void(lt::storage_error const&)> handler) {
    // Never delete anything on a disk.
    lt::post(ioc_, [h = std::move(handler)] { h(not_supported(lt::operation_t::file_remove)); });
}

void RawDiskIO::async_set_file_priority(
    lt::storage_index_t, lt::aux::vector<lt::download_priority_t, lt::file_index_t> prio,
    std::function<void(lt::storage_error const&,
                       lt::aux::vector<lt::download_priority_t, lt::file_index_t>)>
        handler) {
    // Writes go straight to the device; there is no part file to move data to.
    lt::post(ioc_, [h = std::move(handler), prio = std::move(prio)]() mutable {
        h(lt::storage_error{}, std::move(prio));
    });
}

void RawDiskIO::async_clear_piece(lt::storage_index_t idx, lt::piece_index_t index,
                                  std::function<void(lt::piece_index_t)> handler) {
    // Every job on this piece runs on one worker: queueing behind them is the
    // required synchronisation.
    Worker& w = worker_for(idx, index);
    auto st = storage(idx);
    const std::uint64_t serial = st ? st->serial : 0;
    w.push([this, &w, serial, index, h = std::move(handler)]() mutable {
        w.drop_cursor({serial, static_cast<int>(index)});  // the piece will be written anew
        lt::post(ioc_, [h = std::move(h), index] { h(index); });
    });
}

void RawDiskIO::update_stats_counters(lt::counters&) const {}

std::vector<lt::open_file_state> RawDiskIO::get_status(lt::storage_index_t) const {
    return {};
}

void RawDiskIO::abort(bool) {
    for (auto& w : workers_)
        w->stop();
}

void RawDiskIO::submit_jobs() {}

void RawDiskIO::settings_updated() {
    max_queued_bytes_ = settings_.get_int(lt::settings_pack::max_queued_disk_bytes);
}

}  // namespace ezio
