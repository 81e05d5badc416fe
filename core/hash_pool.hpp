// ezio::HashPool: hashes BitTorrent pieces on a fixed set of worker threads
// while one producer thread reads the next pieces into pooled buffers.
//
// Protocol (all calls on the single producer thread):
//   char* buf = pool.acquire();   // blocks until a buffer is free
//   ... fill buf (up to buffer_size() bytes) ...
//   pool.submit(buf, task);       // a worker hashes it and frees the buffer
//   ...
//   pool.finish();                // waits for every submitted task
//   pool.v1_hashes()[i], pool.v2_roots()[i]
//
// Or, instead of acquire() and submit(), a piece mapped from its file:
//   pool.submit_mapped(mapped, index);  // hashed in place, then unmapped
//
// Pieces may complete in any order; results are stored by task.index. The
// pool owns its buffers; a buffer belongs to the producer between acquire()
// and submit(). Hashing a buffer cannot fail and workers never throw; a
// mapped piece whose pages the kernel cannot supply (SIGBUS: the file shrank,
// or the device failed to read) is recorded in first_failure(). The
// destructor stops and joins the workers (also when the producer leaves by
// exception with buffers outstanding) and unmaps pieces never hashed.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <libtorrent/sha1_hash.hpp>

#include "mapped_range.hpp"

namespace ezio {

// One piece to hash.
struct PieceTask {
    std::size_t index = 0;  // piece index; selects the result slot
    // Bytes SHA-1 hashes for the v1 piece hash. The buffer must hold them.
    std::size_t v1_bytes = 0;
    // v2 (BEP 52): bytes of file data in the piece (the rest of the piece is
    // padding that v2 does not hash) and the number of 16 KiB leaves of the
    // piece's merkle tree, a power of two >= the data blocks; leaves beyond
    // the data are zero hashes. 0 leaves: no v2 root for this piece.
    std::size_t v2_bytes = 0;
    std::size_t v2_leaves = 0;
    // Sub-pieces: when sub_bytes > 0, the first v1_bytes of the buffer are
    // also hashed in slices of sub_bytes (the last one may be shorter), the
    // SHA-1 of slice k stored at sub_hashes()[sub_first + k]. Used to rehash
    // data in smaller pieces while checking it against larger ones.
    std::size_t sub_bytes = 0;
    std::size_t sub_first = 0;
};

class HashPool {
  public:
    // `threads` workers (>= 1), `buffers` buffers (>= 1) of `buffer_size`
    // bytes each (0 for a pool of mapped pieces only); `buffers` also bounds
    // the mapped pieces in flight. Throws std::bad_alloc / std::system_error
    // on resource exhaustion.
    HashPool(int threads, std::size_t buffer_size, std::size_t buffers);
    ~HashPool();
    HashPool(const HashPool&) = delete;
    HashPool& operator=(const HashPool&) = delete;

    std::size_t buffer_size() const { return buffer_size_; }

    // A free buffer of buffer_size() bytes; blocks while all are in use.
    char* acquire();
    // Queues `buf` (from acquire()) for hashing; the producer must not touch
    // it afterwards.
    void submit(char* buf, const PieceTask& task);
    // Queues a mapped piece for its v1 hash at `index` (no v2 or
    // sub-pieces); the pool unmaps it once hashed. Blocks while `buffers`
    // mapped pieces are queued or being hashed, so no more of the file than
    // that is mapped at once.
    void submit_mapped(const MappedRange& piece, std::size_t index);
    // Blocks until every submitted task is hashed.
    void finish();
    // The lowest index of a mapped piece that could not be read, if any.
    std::optional<std::size_t> first_failure();

    // Results by piece index, valid after finish(). Slots of indices never
    // submitted are all-zero; v2 roots are all-zero for tasks with no leaves.
    const std::vector<lt::sha1_hash>& v1_hashes() const { return v1_; }
    const std::vector<lt::sha256_hash>& v2_roots() const { return v2_; }
    const std::vector<lt::sha1_hash>& sub_hashes() const { return sub_; }

  private:
    struct Job {
        char* buf;  // pool buffer, or nullptr for a mapped piece
        MappedRange mapped;
        PieceTask task;
    };
    void run();

    std::size_t buffer_size_;
    std::vector<std::unique_ptr<char[]>> storage_;

    std::mutex mutex_;
    std::condition_variable work_ready_;   // a job was queued, or stopping
    std::condition_variable buffer_free_;  // a buffer came back, or a job finished
    std::vector<char*> free_;
    std::deque<Job> queue_;
    std::size_t in_flight_ = 0;         // queued + being hashed
    std::size_t mapped_in_flight_ = 0;  // of which mapped pieces
    std::size_t max_mapped_;
    std::optional<std::size_t> first_failure_;
    bool stop_ = false;
    std::vector<lt::sha1_hash> v1_;
    std::vector<lt::sha256_hash> v2_;
    std::vector<lt::sha1_hash> sub_;

    std::vector<std::thread> workers_;  // last: joined before the rest is destroyed
};

// Root of the merkle tree over `leaves` (a power of two, >= 1) 16 KiB block
// SHA-256 hashes of `data`, leaves past the data being zero hashes (BEP 52).
lt::sha256_hash merkle_piece_root(const char* data, std::size_t bytes, std::size_t leaves);

}  // namespace ezio
