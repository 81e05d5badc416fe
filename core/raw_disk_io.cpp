#include "raw_disk_io.hpp"

#include <pthread.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <iterator>

#include <libtorrent/add_torrent_params.hpp>
#include <libtorrent/disk_observer.hpp>
#include <libtorrent/error_code.hpp>
#include <libtorrent/file_storage.hpp>
#include <libtorrent/hasher.hpp>
#include <libtorrent/settings_pack.hpp>

#include "sha1_lanes.hpp"

namespace ezio {

namespace {

constexpr int kBlock = lt::default_block_size;
static_assert(kBlock == static_cast<int>(BlockPool::kBlockBytes));
constexpr std::size_t kHashChunk = 1 << 20;  // read granularity while hashing
constexpr std::size_t kReadCacheSlabs = 32;  // chunks the network thread keeps
constexpr int kReadChunk = 1 << 20;          // a read-ahead slab: this much of a piece
constexpr std::size_t kPublishEvery = 32;    // completions a worker holds back at most
constexpr auto kIdleTick = std::chrono::milliseconds(20);  // see arm_idle_flush()
// Written blocks wait at most this long to be hashed side by side with other
// pieces' (see Worker::queue_hash()), and at most this many bytes of them.
constexpr auto kHashLinger = std::chrono::milliseconds(20);
constexpr std::size_t kMaxHashPending = 16 << 20;

using HashHandler =
    std::function<void(lt::piece_index_t, lt::sha1_hash const&, lt::storage_error const&)>;

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

namespace {

// Writes the buffers of `iov` (contiguous bytes of `piece` from `offset`)
// to their extents: one pwritev() per extent they cover.
lt::storage_error piece_writev(const Target& target, const ImageLayout& layout,
                               const lt::file_storage& files, lt::piece_index_t piece, int offset,
                               const std::vector<iovec>& iov) {
    std::size_t total = 0;
    for (const iovec& v : iov)
        total += v.iov_len;
    std::size_t at_iov = 0;    // next buffer of iov
    std::size_t into_iov = 0;  // bytes of it already used
    std::vector<iovec> slice_iov;
    for (const lt::file_slice& s : files.map_block(piece, offset, static_cast<int>(total))) {
        auto left = static_cast<std::size_t>(s.size);
        slice_iov.clear();
        while (left > 0) {
            const iovec& v = iov[at_iov];
            const std::size_t take = std::min(left, v.iov_len - into_iov);
            slice_iov.push_back({static_cast<char*>(v.iov_base) + into_iov, take});
            left -= take;
            into_iov += take;
            if (into_iov == v.iov_len) {
                ++at_iov;
                into_iov = 0;
            }
        }
        const auto base = layout.device_offset(s.file_index);
        if (!base)  // BEP 47 pad file: never written
            continue;
        const std::uint64_t at = *base + static_cast<std::uint64_t>(s.offset);
        for (std::size_t i = 0; i < slice_iov.size(); i += IOV_MAX) {
            const int n = static_cast<int>(std::min<std::size_t>(IOV_MAX, slice_iov.size() - i));
            std::uint64_t skip = 0;
            for (std::size_t k = 0; k < i; ++k)
                skip += slice_iov[k].iov_len;
            if (const int err = target.writev_at(slice_iov.data() + i, n, at + skip))
                return make_error(err, lt::operation_t::file_write, s.file_index);
        }
    }
    return {};
}

}  // namespace

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

    lt::storage_error writev(lt::piece_index_t piece, int offset,
                             const std::vector<iovec>& iov) const {
        if (!target)
            return make_error(EBADF, lt::operation_t::file_write);
        return piece_writev(*target, layout, files, piece, offset, iov);
    }

    const lt::file_storage& files;  // owned by the torrent that `owner` keeps alive
    std::uint64_t serial = 0;       // unique per storage, unlike the reusable index
    std::shared_ptr<void> owner;
    std::shared_ptr<Target> target;  // null when the torrent had no binding
    ImageLayout layout;
};

struct RawDiskIO::Run {
    struct Block {
        char* buf;
        int len;
        std::function<void(lt::storage_error const&)> handler;
    };
    lt::storage_index_t index{0};
    std::shared_ptr<Storage> storage;
    lt::piece_index_t piece{0};
    int start = 0;  // piece offset of the first block
    int end = 0;    // one past the last block
    std::vector<Block> blocks;
    bool idle = false;  // no block came since the last idle tick
};

struct RawDiskIO::CachedRead {
    Key key;
    int start;  // piece offset of slab[0]
    int len;
    const char* slab;  // the cache holds a reference
    std::uint64_t used;
};

// One I/O thread with a FIFO queue, and the SHA-1 "cursor" of every piece
// it writes: runs that arrive in order are hashed from the buffers just
// written, so async_hash only reads back what the cursor did not cover
// (usually nothing). Every job of a piece runs on this worker, in order, so
// the cursors need no lock. Completions are collected in done_ and handed to
// RawDiskIO in batches.
//
// Hashing is the receiver's largest cost, and sixteen pieces hash side by
// side (sha1_update_lanes()) for about the price of four one after the
// other. So when many pieces come fast (small pieces from a fast peer; see
// note_piece()), a written block is not hashed at once: it stays queued on
// its cursor (the block buffer with it), and an async_hash of a piece whose
// blocks are all queued waits with them. The queue is hashed, the pieces
// side by side, when sixteen pieces or kMaxHashPending bytes wait, when a
// job needs a cursor as it is, when no job came for a moment, and at the
// latest kHashLinger after the oldest block was queued. Otherwise (large
// pieces, or a slow swarm) each block is hashed as soon as it is written.
class RawDiskIO::Worker {
  public:
    explicit Worker(RawDiskIO& io) : io_(io), thread_([this] { run(); }) {}
    ~Worker() { stop(); }
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // Any thread. Does not wake the worker: wake() does (submit_jobs()).
    void push(std::function<void()> job) {
        std::lock_guard lock(mutex_);
        queue_.push_back(std::move(job));
        pushed_ = true;
    }
    // Wakes the worker if jobs came since the last wake: a worker woken
    // for nothing costs two context switches.
    void wake() {
        {
            std::lock_guard lock(mutex_);
            if (!pushed_)
                return;
            pushed_ = false;
        }
        cv_.notify_one();
    }
    // Runs what is queued, then ends the thread.
    void stop() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        cv_.notify_one();
        std::lock_guard join_lock(join_mutex_);
        if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id())
            thread_.join();
    }

    // ---- jobs (this worker's thread) ---------------------------------------

    // Writes a run with one pwritev per extent, then completes its blocks
    // (with the write's error, if any).
    void write(Run& run) {
        const Key key{run.storage->serial, static_cast<int>(run.piece)};
        std::vector<iovec> iov;
        iov.reserve(run.blocks.size());
        for (const auto& b : run.blocks)
            iov.push_back({b.buf, static_cast<std::size_t>(b.len)});
        const lt::storage_error se = run.storage->writev(run.piece, run.start, iov);
        if (se.ec)
            drop_cursor(key);
        int at = run.start;
        for (auto& b : run.blocks) {
            // A block the cursor takes goes back to the pool once hashed.
            if (se.ec || !queue_hash(key, at, b.buf, b.len))
                io_.blocks_.put(b.buf);
            at += b.len;
            done_.push_back([io = &io_, key, h = std::move(b.handler), se] {
                if (auto it = io->writing_.find(key); it != io->writing_.end() && --it->second <= 0)
                    io->writing_.erase(it);
                h(se);
            });
        }
        io_.write_done(run.end - run.start);
    }

    // Reads [start, start + len) of a piece into a new slab for the network
    // thread's cache: a mapping of the source when it can be one, else a
    // copy.
    void read_chunk(const std::shared_ptr<Storage>& st, lt::piece_index_t piece, int start,
                    int len) {
        const Key key{st->serial, static_cast<int>(piece)};
        lt::storage_error se;
        const char* slab = map_chunk(*st, piece, start, len);
        if (!slab) {
            char* copy = io_.slabs_.get(static_cast<std::size_t>(len));
            if (!copy) {
                se = make_error(ENOMEM, lt::operation_t::alloc_cache_piece);
            } else {
                se = st->io(piece, start, copy, len, false);
                if (se.ec) {
                    io_.slabs_.release(copy);
                    copy = nullptr;
                }
            }
            slab = copy;
        }
        done_.push_back(
            [io = &io_, key, start, len, slab, se] { io->chunk_read(key, start, len, slab, se); });
    }

    void hash(const std::shared_ptr<Storage>& st, lt::piece_index_t piece,
              lt::span<lt::sha256_hash> v2, lt::disk_job_flags_t flags, HashHandler handler) {
        const Key key{st->serial, static_cast<int>(piece)};
        const lt::file_storage& fs = st->files;
        const int size = fs.piece_size(piece);
        const bool want_v1 = bool(flags & lt::disk_interface::v1_hash);
        const int size2 = v2.empty() ? 0 : fs.piece_size2(piece);
        thread_local std::vector<char> chunk;
        chunk.resize(kHashChunk);

        Sha1 h1;
        lt::hasher256 h2;
        int block = 0;     // index of the v2 block being hashed
        int in_block = 0;  // bytes of it hashed so far
        lt::storage_error se;
        const int limit = want_v1 ? size : size2;
        int start = 0;
        // SHA-1 only: continue from what was hashed while writing.
        auto cursor = cursors_.find(key);
        if (cursor != cursors_.end()) {
            Cursor& c = cursor->second;
            if (want_v1 && v2.empty() && c.next == size && !c.pending.empty() && !c.waiting) {
                // Every byte is queued: the digest comes when they are hashed.
                c.waiting = std::move(handler);
                c.piece = piece;
                return;
            }
            cursor = settle(cursor);
        }
        if (cursor != cursors_.end()) {
            if (want_v1 && v2.empty() && cursor->second.next <= size) {
                h1 = cursor->second.sha1;
                start = cursor->second.next;
            }
            cursors_.erase(cursor);
        }
        for (int pos = start; pos < limit;) {
            const int n = std::min<int>(static_cast<int>(kHashChunk), limit - pos);
            se = st->io(piece, pos, chunk.data(), n, false);
            if (se.ec)
                break;
            if (want_v1)
                h1.update(chunk.data(), static_cast<std::size_t>(n));
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
        done_.push_back([h = std::move(handler), piece, digest, se] { h(piece, digest, se); });
    }

    void hash2(
        const std::shared_ptr<Storage>& st, lt::piece_index_t piece, int offset,
        std::function<void(lt::piece_index_t, lt::sha256_hash const&, lt::storage_error const&)>
            handler) {
        const int size2 = st->files.piece_size2(piece);
        const int len = std::min(kBlock, size2 - offset);
        lt::storage_error se;
        lt::sha256_hash digest;
        if (len <= 0 || offset < 0) {
            se = make_error(EINVAL, lt::operation_t::file_read);
        } else {
            char buf[kBlock];
            se = st->io(piece, offset, buf, len, false);
            if (!se.ec)
                digest = lt::hasher256(buf, len).final();
        }
        done_.push_back([h = std::move(handler), piece, digest, se] { h(piece, digest, se); });
    }

    void clear_piece(const Key& key, lt::piece_index_t piece,
                     std::function<void(lt::piece_index_t)> handler) {
        drop_cursor(key);  // the piece will be written anew
        done_.push_back([io = &io_, key, h = std::move(handler), piece] {
            if (auto it = io->writing_.find(key); it != io->writing_.end() && --it->second <= 0)
                io->writing_.erase(it);
            h(piece);
        });
    }

    // Forgets the hashing cursors of a removed storage (its partly
    // received pieces).
    void drop_storage(std::uint64_t serial) {
        for (auto it = cursors_.begin(); it != cursors_.end();) {
            if (it->first.first != serial) {
                ++it;
                continue;
            }
            const auto next = std::next(it);
            if (settle(it) != cursors_.end())
                cursors_.erase(it);
            it = next;
        }
    }

    // Hands over what is done, so that a completion queued after this
    // follows them (the stop barrier).
    void publish() {
        if (!done_.empty())
            io_.complete(done_);
    }

    // Hashes every queued block, the pieces side by side, and completes the
    // hashes that waited for them.
    void flush_hashes() {
        struct Lane {
            Key key;
            Cursor* cursor;
            std::size_t block = 0;  // index in cursor->pending
            int off = 0;            // bytes of that block hashed
        };
        std::vector<Lane> lanes;
        for (auto& [key, c] : cursors_)
            if (!c.pending.empty())
                lanes.push_back({key, &c});
        while (!lanes.empty()) {
            // Lanes at a block boundary with a whole 64 bytes left go
            // together, for as many 64-byte blocks as they all have; the
            // others (a block's tail) once none is left.
            Sha1* streams[kSha1Lanes];
            const char* data[kSha1Lanes];
            std::size_t which[kSha1Lanes];
            int n = 0;
            std::size_t blocks = SIZE_MAX;
            for (std::size_t i = 0; i < lanes.size() && n < kSha1Lanes; ++i) {
                const Lane& l = lanes[i];
                const Pending& p = l.cursor->pending[l.block];
                const auto left = static_cast<std::size_t>(p.len - l.off);
                if (left < kSha1Block || !l.cursor->sha1.at_block_boundary())
                    continue;
                streams[n] = &l.cursor->sha1;
                data[n] = p.buf + l.off;
                which[n++] = i;
                blocks = std::min(blocks, left / kSha1Block);
            }
            if (n > 0) {
                if (sha1_update_lanes(streams, data, n, blocks))
                    io_.lane_hashed_bytes_ += static_cast<std::int64_t>(blocks * kSha1Block) * n;
                for (int k = 0; k < n; ++k)
                    lanes[which[k]].off += static_cast<int>(blocks * kSha1Block);
            } else {
                for (Lane& l : lanes) {
                    const Pending& p = l.cursor->pending[l.block];
                    l.cursor->sha1.update(p.buf + l.off, static_cast<std::size_t>(p.len - l.off));
                    l.off = p.len;
                }
            }
            // Hashed blocks go back to the pool; a cursor whose queue is
            // done completes the hash that waited for it.
            for (std::size_t i = 0; i < lanes.size();) {
                Lane& l = lanes[i];
                Cursor& c = *l.cursor;
                const Pending& p = c.pending[l.block];
                if (p.len - l.off > 0 && p.len - l.off < static_cast<int>(kSha1Block)) {
                    c.sha1.update(p.buf + l.off, static_cast<std::size_t>(p.len - l.off));
                    l.off = p.len;
                }
                if (l.off < p.len) {
                    ++i;
                    continue;
                }
                io_.blocks_.put(p.buf);
                pending_bytes_ -= static_cast<std::size_t>(p.len);
                l.off = 0;
                if (++l.block < c.pending.size()) {
                    ++i;
                    continue;
                }
                c.pending.clear();
                --pending_pieces_;
                if (c.waiting)
                    complete_hash(cursors_.find(l.key));
                lanes[i] = lanes.back();
                lanes.pop_back();
            }
        }
    }

  private:
    struct Pending {
        char* buf;  // a block buffer, back to the pool once hashed
        int len;
    };
    struct Cursor {
        int next = 0;                  // bytes of the piece hashed or queued for hashing
        Sha1 sha1;                     // of the bytes hashed
        std::vector<Pending> pending;  // written, not yet hashed, in order
        HashHandler waiting;           // an async_hash of the whole piece
        lt::piece_index_t piece{0};    // ... of this piece
    };
    using CursorIt = std::map<Key, Cursor>::iterator;

    // A slab mapping [start, start + len) of a piece straight from the
    // source, or nullptr when the chunk is read instead: the source is
    // written by this process (a mapping would have to stay coherent with
    // the O_DIRECT writes of the same pages), the chunk is not one range of
    // the device (it spans extents or a pad file), or mapping failed (the
    // read then reports what the device says). A kernel without
    // MADV_POPULATE_READ (EINVAL) turns mapping off for good.
    const char* map_chunk(const Storage& st, lt::piece_index_t piece, int start, int len) {
        if (!st.target || st.target->writable() || !io_.map_reads_.load())
            return nullptr;
        const auto slices = st.files.map_block(piece, start, len);
        if (slices.size() != 1)
            return nullptr;
        const auto base = st.layout.device_offset(slices[0].file_index);
        if (!base)
            return nullptr;
        int err = 0;
        const char* slab =
            io_.slabs_.map(st.target->fd(), *base + static_cast<std::uint64_t>(slices[0].offset),
                           static_cast<std::size_t>(len), err);
        if (slab)
            io_.mapped_read_bytes_ += len;
        else if (err == EINVAL)
            io_.map_reads_.store(false);
        return slab;
    }

    void run() {
        // Named for top -H and perf; the network thread stays "eziod".
        ::pthread_setname_np(::pthread_self(), "ezio-disk");
        std::vector<std::function<void()>> batch;
        for (;;) {
            bool stop = false;
            {
                std::unique_lock lock(mutex_);
                const auto ready = [this] { return stopping_ || !queue_.empty(); };
                if (pending_pieces_ == 0)
                    cv_.wait(lock, ready);
                else
                    cv_.wait_until(lock, hash_deadline(), ready);
                batch.swap(queue_);
                stop = stopping_ && batch.empty();
            }
            if (pending_pieces_ > 0 &&
                (batch.empty() || std::chrono::steady_clock::now() >= hash_deadline())) {
                flush_hashes();
                publish();
            }
            if (stop)
                return;  // everything queued is done
            for (auto& job : batch) {
                job();
                if (done_.size() >= kPublishEvery)
                    publish();
            }
            batch.clear();
            publish();
        }
    }

    // A block just written at `start` of a piece: if it continues the
    // piece's cursor, hashed now, or queued while pieces come fast (the
    // cursor then owns `buf`; returns true); else the cursor is left as it
    // is or dropped.
    bool queue_hash(const Key& key, int start, char* buf, int len) {
        auto it = cursors_.find(key);
        if (start == 0) {
            // The piece anew: what was queued before is hashed first, for a
            // hash queued before this write.
            if (it != cursors_.end())
                it = settle(it);
            if (it == cursors_.end())
                it = cursors_.emplace(key, Cursor{}).first;
            else
                it->second = Cursor{};
            note_piece();
        } else if (it == cursors_.end()) {
            return false;
        } else if (start != it->second.next) {
            if (start < it->second.next)
                drop_cursor(key);  // hashed bytes were overwritten
            // start > next: a gap; the cursor stops, async_hash reads the rest.
            return false;
        } else if (it->second.waiting) {
            it = settle(it);  // (a hash waits only for a whole piece)
            return false;
        }
        Cursor& c = it->second;
        c.next += len;
        if (!sha1_lanes_fast() || !fast_) {
            // One by one, while the block is in the cache; after what was
            // queued when pieces still came fast.
            if (!c.pending.empty())
                settle(it);
            c.sha1.update(buf, static_cast<std::size_t>(len));
            return false;
        }
        if (c.pending.empty() && ++pending_pieces_ == 1)
            first_pending_ = std::chrono::steady_clock::now();
        c.pending.push_back({buf, len});
        pending_bytes_ += static_cast<std::size_t>(len);
        if (pending_pieces_ >= kSha1Lanes || pending_bytes_ >= kMaxHashPending)
            flush_hashes();
        return true;
    }

    // Hashes the blocks queued on one cursor. A hash waiting for them
    // completes and the cursor goes: then returns end(), else `it`.
    CursorIt settle(CursorIt it) {
        Cursor& c = it->second;
        if (!c.pending.empty()) {
            for (const Pending& p : c.pending) {
                c.sha1.update(p.buf, static_cast<std::size_t>(p.len));
                io_.blocks_.put(p.buf);
                pending_bytes_ -= static_cast<std::size_t>(p.len);
            }
            c.pending.clear();
            --pending_pieces_;
        }
        if (!c.waiting)
            return it;
        complete_hash(it);
        return cursors_.end();
    }

    // Settles and forgets a cursor, if there is one.
    void drop_cursor(const Key& key) {
        auto it = cursors_.find(key);
        if (it != cursors_.end() && settle(it) != cursors_.end())
            cursors_.erase(it);
    }

    // Completes the hash waiting on a cursor whose blocks are all hashed,
    // and forgets the cursor.
    void complete_hash(CursorIt it) {
        Cursor& c = it->second;
        done_.push_back([h = std::move(c.waiting), piece = c.piece, digest = c.sha1.final()] {
            h(piece, digest, lt::storage_error{});
        });
        cursors_.erase(it);
    }

    // Counts the pieces that start being written, over windows of
    // kHashLinger: blocks wait for other pieces' only when enough pieces
    // come within kHashLinger to fill the lanes (small pieces, coming fast).
    // Otherwise a block is hashed as soon as it is written, while it is in
    // the cache.
    void note_piece() {
        const auto now = std::chrono::steady_clock::now();
        if (now - window_start_ >= kHashLinger) {
            // The last window decides until this one has enough pieces.
            fast_ = window_pieces_ >= kSha1MinLanes && now - window_start_ < 2 * kHashLinger;
            window_start_ = now;
            window_pieces_ = 0;
        }
        if (++window_pieces_ >= kSha1MinLanes)
            fast_ = true;
    }
    // When the queued blocks must be hashed if no job comes.
    std::chrono::steady_clock::time_point hash_deadline() const {
        return fast_ ? first_pending_ + kHashLinger : first_pending_;
    }

    RawDiskIO& io_;
    std::map<Key, Cursor> cursors_;
    int pending_pieces_ = 0;                               // cursors with blocks queued for hashing
    std::size_t pending_bytes_ = 0;                        // bytes of those blocks
    std::chrono::steady_clock::time_point first_pending_;  // of the oldest queued piece
    std::chrono::steady_clock::time_point window_start_;   // of the rate window
    int window_pieces_ = 0;                                // pieces queued in it
    bool fast_ = false;                                    // the last window was fast
    std::vector<std::function<void()>> done_;

    std::mutex mutex_;  // guards queue_, pushed_, stopping_
    std::condition_variable cv_;
    std::vector<std::function<void()>> queue_;
    bool pushed_ = false;
    bool stopping_ = false;
    std::mutex join_mutex_;  // stop() from two threads joins once
    std::thread thread_;     // last: starts after the members it uses exist
};

RawDiskIO::RawDiskIO(lt::io_context& ioc, const lt::settings_interface& settings, int threads)
    : ioc_(ioc),
      settings_(settings),
      blocks_(2048),
      slabs_(64 << 20),
      idle_timer_(ioc),
      max_queued_bytes_(settings.get_int(lt::settings_pack::max_queued_disk_bytes)) {
    threads = std::max(1, threads);
    for (int i = 0; i < threads; ++i)
        workers_.push_back(std::make_unique<Worker>(*this));
}

RawDiskIO::~RawDiskIO() {
    alive_.reset();
    idle_timer_.cancel();
    abort(true);
    for (auto& [key, run] : staged_)
        for (auto& b : run.blocks)
            blocks_.put(b.buf);
    for (auto& c : cache_)
        slabs_.release(c.slab);
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
    std::shared_ptr<Storage> st;
    {
        std::lock_guard lock(mutex_);
        // In-flight jobs hold their own reference; the target closes after them.
        st = std::move(storages_[static_cast<std::size_t>(static_cast<std::uint32_t>(idx))]);
        free_slots_.push_back(idx);
    }
    if (st) {
        push_storage(st->serial);  // nothing may stay staged for a slot reused later
        for (auto& w : workers_) {
            Worker* worker = w.get();
            worker->push([worker, serial = st->serial] { worker->drop_storage(serial); });
        }
        for (auto it = cache_.begin(); it != cache_.end();) {
            if (it->key.first == st->serial) {
                slabs_.release(it->slab);
                it = cache_.erase(it);
            } else {
                ++it;
            }
        }
    }
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

void RawDiskIO::push(const Key& key) {
    auto it = staged_.find(key);
    if (it == staged_.end())
        return;
    Worker& w = worker_for(it->second.index, it->second.piece);
    w.push([&w, run = std::make_shared<Run>(std::move(it->second))] { w.write(*run); });
    staged_.erase(it);
}

void RawDiskIO::push_storage(std::uint64_t serial) {
    std::vector<Key> keys;
    for (const auto& [key, run] : staged_)
        if (key.first == serial)
            keys.push_back(key);
    for (const Key& key : keys)
        push(key);
}

void RawDiskIO::push_all() {
    while (!staged_.empty())
        push(staged_.begin()->first);
}

void RawDiskIO::arm_idle_flush() {
    if (idle_armed_)
        return;
    idle_armed_ = true;
    idle_timer_.expires_after(kIdleTick);
    idle_timer_.async_wait(
        [this, alive = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) {
            if (ec || alive.expired())
                return;
            idle_armed_ = false;
            idle_flush();
        });
}

void RawDiskIO::idle_flush() {
    std::vector<Key> idle;
    for (auto& [key, run] : staged_) {
        if (run.idle)
            idle.push_back(key);
        run.idle = true;
    }
    for (const Key& key : idle)
        push(key);
    if (!idle.empty())
        submit_jobs();
    if (!staged_.empty())
        arm_idle_flush();
}

const char* RawDiskIO::cached(const Key& key, int start, int len) {
    for (auto& c : cache_) {
        if (c.key == key && start >= c.start && start + len <= c.start + c.len) {
            c.used = ++cache_clock_;
            slabs_.add_ref(c.slab);
            return c.slab + (start - c.start);
        }
    }
    return nullptr;
}

void RawDiskIO::remember(const Key& key, int start, int len, const char* slab) {
    if (cache_.size() >= kReadCacheSlabs) {
        auto lru = std::min_element(
            cache_.begin(), cache_.end(),
            [](const CachedRead& a, const CachedRead& b) { return a.used < b.used; });
        slabs_.release(lru->slab);
        cache_.erase(lru);
    }
    slabs_.add_ref(slab);
    cache_.push_back({key, start, len, slab, ++cache_clock_});
}

void RawDiskIO::forget(const Key& key) {
    for (auto it = cache_.begin(); it != cache_.end();) {
        if (it->key == key) {
            slabs_.release(it->slab);
            it = cache_.erase(it);
        } else {
            ++it;
        }
    }
}

void RawDiskIO::chunk_read(const Key& key, int start, int len, const char* slab,
                           const lt::storage_error& se) {
    auto it = reading_.find({key, start});
    std::vector<Waiting> waiting;
    if (it != reading_.end()) {
        waiting = std::move(it->second);
        reading_.erase(it);
    }
    if (!slab) {
        for (auto& w : waiting)
            w.handler(lt::disk_buffer_holder{}, se);
        return;
    }
    // Kept only if no write of the piece is under way: a write queued after
    // the read changes the piece once it is done.
    if (writing_.count(key) == 0)
        remember(key, start, len, slab);
    for (auto& w : waiting) {
        slabs_.add_ref(slab);
        w.handler(lt::disk_buffer_holder(*this, const_cast<char*>(slab) + (w.start - start), w.len),
                  lt::storage_error{});
    }
    slabs_.release(slab);  // the reference read_chunk took
}

void RawDiskIO::complete(std::vector<Completion>& done) {
    bool post = false;
    {
        std::lock_guard lock(done_mutex_);
        if (done_.empty())
            done_.swap(done);
        else
            std::move(done.begin(), done.end(), std::back_inserter(done_));
        post = !done_posted_;
        done_posted_ = true;
    }
    done.clear();
    if (post)
        lt::post(ioc_, [this] { run_completions(); });
}

void RawDiskIO::run_completions() {
    std::vector<Completion> run;
    {
        std::lock_guard lock(done_mutex_);
        run.swap(done_);
        done_posted_ = false;
    }
    for (auto& c : run)
        c();
}

void RawDiskIO::free_disk_buffer(char* b) {
    if (b)
        slabs_.release(b);
}

void RawDiskIO::async_read(lt::storage_index_t idx, lt::peer_request const& r, ReadHandler handler,
                           lt::disk_job_flags_t) {
    auto st = storage(idx);
    if (!st || r.length <= 0 || r.length > kBlock || r.start < 0 ||
        r.start + r.length > st->files.piece_size(r.piece)) {
        lt::post(ioc_, [h = std::move(handler)] {
            h(lt::disk_buffer_holder{}, make_error(EINVAL, lt::operation_t::file_read));
        });
        return;
    }
    const Key key{st->serial, static_cast<int>(r.piece)};
    push(key);  // a read sees every write before it
    if (const char* data = cached(key, r.start, r.length)) {
        lt::post(ioc_, [this, h = std::move(handler), data, len = r.length] {
            h(lt::disk_buffer_holder(*this, const_cast<char*>(data), len), lt::storage_error{});
        });
        return;
    }
    // The whole chunk around the block: the peer (or others, for a piece
    // that just arrived) asks for its other blocks next. One read per chunk,
    // however many ask for it meanwhile.
    // Peers ask for 16 KiB-aligned blocks, which never cross a chunk
    // boundary; a block that does (any offset is legal) gets a chunk that
    // starts with it.
    int start = r.start / kReadChunk * kReadChunk;
    if (r.start + r.length > start + kReadChunk)
        start = r.start;
    const int len = std::min(kReadChunk, st->files.piece_size(r.piece) - start);
    auto& waiting = reading_[{key, start}];
    waiting.push_back({r.start, r.length, std::move(handler)});
    if (waiting.size() > 1)
        return;
    Worker& w = worker_for(idx, r.piece);
    w.push([&w, st = std::move(st), piece = r.piece, start, len] {
        w.read_chunk(st, piece, start, len);
    });
}

bool RawDiskIO::async_write(lt::storage_index_t idx, lt::peer_request const& r, char const* buf,
                            std::shared_ptr<lt::disk_observer> o,
                            std::function<void(lt::storage_error const&)> handler,
                            lt::disk_job_flags_t) {
    auto st = storage(idx);
    if (!st || r.length <= 0 || r.length > kBlock || r.start < 0 ||
        r.start + r.length > st->files.piece_size(r.piece)) {
        lt::post(ioc_,
                 [h = std::move(handler)] { h(make_error(EINVAL, lt::operation_t::file_write)); });
        return false;
    }
    char* copy = blocks_.get();
    if (!copy) {
        lt::post(ioc_, [h = std::move(handler)] {
            h(make_error(ENOMEM, lt::operation_t::alloc_cache_piece));
        });
        return false;
    }
    std::memcpy(copy, buf, static_cast<std::size_t>(r.length));
    const std::int64_t queued = queued_write_bytes_.fetch_add(r.length) + r.length;

    const Key key{st->serial, static_cast<int>(r.piece)};
    forget(key);
    ++writing_[key];
    auto it = staged_.find(key);
    if (it != staged_.end() &&
        (r.start != it->second.end || it->second.end - it->second.start + r.length > kMaxRun ||
         it->second.blocks.size() >= IOV_MAX)) {
        push(key);
        it = staged_.end();
    }
    if (it == staged_.end()) {
        it = staged_.emplace(key, Run{}).first;
        it->second.index = idx;
        it->second.storage = st;
        it->second.piece = r.piece;
        it->second.start = it->second.end = r.start;
    }
    Run& run = it->second;
    run.blocks.push_back({copy, r.length, std::move(handler)});
    run.end += r.length;
    run.idle = false;
    if (run.end - run.start >= kMaxRun || run.end == st->files.piece_size(r.piece))
        push(key);
    else
        arm_idle_flush();

    if (queued > max_queued_bytes_.load()) {
        // libtorrent stops reading from peers until on_disk(). The observer
        // is registered before the runs go to the workers, so the write
        // that brings the queue under the low mark sees it; if the workers
        // got there first, it is woken here.
        {
            std::lock_guard lock(observers_mutex_);
            exceeded_ = true;
            if (o)
                observers_.push_back(o);
        }
        push_all();  // nothing may wait for more blocks now
        if (queued_write_bytes_.load() <= max_queued_bytes_.load() / 2)
            wake_observers();
        return true;
    }
    return false;
}

void RawDiskIO::write_done(std::int64_t bytes) {
    const std::int64_t left = queued_write_bytes_.fetch_sub(bytes) - bytes;
    if (!exceeded_.load() || left > max_queued_bytes_.load() / 2)
        return;
    wake_observers();
}

void RawDiskIO::wake_observers() {
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
    if (!st) {
        lt::post(ioc_, [h = std::move(handler), piece] {
            h(piece, lt::sha1_hash{}, make_error(EBADF, lt::operation_t::file_read));
        });
        return;
    }
    push({st->serial, static_cast<int>(piece)});
    Worker& w = worker_for(idx, piece);
    w.push([&w, st = std::move(st), piece, v2, flags, h = std::move(handler)]() mutable {
        w.hash(st, piece, v2, flags, std::move(h));
    });
}

void RawDiskIO::async_hash2(
    lt::storage_index_t idx, lt::piece_index_t piece, int offset, lt::disk_job_flags_t,
    std::function<void(lt::piece_index_t, lt::sha256_hash const&, lt::storage_error const&)>
        handler) {
    auto st = storage(idx);
    if (!st) {
        lt::post(ioc_, [h = std::move(handler), piece] {
            h(piece, lt::sha256_hash{}, make_error(EBADF, lt::operation_t::file_read));
        });
        return;
    }
    push({st->serial, static_cast<int>(piece)});
    Worker& w = worker_for(idx, piece);
    w.push([&w, st = std::move(st), piece, offset, h = std::move(handler)]() mutable {
        w.hash2(st, piece, offset, std::move(h));
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
    // held while the target is ours); only write what is pending.
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

void RawDiskIO::async_stop_torrent(lt::storage_index_t idx, std::function<void()> handler) {
    // What is staged goes to the workers; then a barrier over every worker:
    // each hands over its completions, and when the last one is there, all
    // work queued before this call is done.
    if (auto st = storage(idx))
        push_storage(st->serial);
    if (!handler)
        return;
    auto remaining = std::make_shared<std::atomic<int>>(static_cast<int>(workers_.size()));
    auto h = std::make_shared<std::function<void()>>(std::move(handler));
    for (auto& w : workers_) {
        Worker* worker = w.get();
        worker->push([this, worker, remaining, h] {
            worker->flush_hashes();
            worker->publish();
            if (remaining->fetch_sub(1) == 1) {
                std::vector<Completion> last{[h] { (*h)(); }};
                complete(last);
            }
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
    auto st = storage(idx);
    const Key key{st ? st->serial : 0, static_cast<int>(index)};
    push(key);
    forget(key);
    ++writing_[key];
    Worker& w = worker_for(idx, index);
    w.push([&w, key, index, h = std::move(handler)]() mutable {
        w.clear_piece(key, index, std::move(h));
    });
}

void RawDiskIO::update_stats_counters(lt::counters&) const {}

std::vector<lt::open_file_state> RawDiskIO::get_status(lt::storage_index_t) const {
    return {};
}

void RawDiskIO::abort(bool) {
    push_all();
    for (auto& w : workers_)
        w->stop();
}

void RawDiskIO::submit_jobs() {
    for (auto& w : workers_)
        w->wake();
}

void RawDiskIO::settings_updated() {
    max_queued_bytes_ = settings_.get_int(lt::settings_pack::max_queued_disk_bytes);
}

}  // namespace ezio
