// Memory for RawDiskIO's hot path, recycled so that a deployment at
// hundreds of MiB/s does not call malloc/free (and so mmap/munmap) for every
// 16 KiB block.
//
// BlockPool: 16 KiB blocks, 4 KiB aligned (usable for O_DIRECT), holding
// the copy of a received block until it is written.
//
// SlabPool: read-ahead slabs. A slab is one pread of a piece (up to 1 MiB
// of it); the blocks libtorrent asks for are handed out as pointers into it
// (no second copy), each holding a reference. Freed slabs are kept for
// reuse up to a byte budget, so the hot path neither maps nor faults in
// fresh memory.
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <map>
#include <mutex>
#include <vector>

namespace ezio {

class BlockPool {
  public:
    static constexpr std::size_t kBlockBytes = 16 * 1024;

    explicit BlockPool(std::size_t keep) : keep_(keep) {}
    ~BlockPool();
    BlockPool(const BlockPool&) = delete;
    BlockPool& operator=(const BlockPool&) = delete;

    // A block of kBlockBytes, or nullptr when memory is exhausted.
    char* get();
    void put(char* block);

  private:
    std::size_t keep_;  // free blocks kept for reuse; beyond that, freed
    std::mutex mutex_;
    std::vector<char*> free_;
};

class SlabPool {
  public:
    explicit SlabPool(std::size_t keep_bytes) : keep_bytes_(keep_bytes) {}
    ~SlabPool();
    SlabPool(const SlabPool&) = delete;
    SlabPool& operator=(const SlabPool&) = delete;

    // A slab of at least `bytes` holding one reference, or nullptr when
    // memory is exhausted.
    char* get(std::size_t bytes);
    // One more reference to a slab, by its start (as get() returned it).
    void add_ref(const char* slab);
    // Drops a reference to the slab that `p` points into (any byte of it);
    // the last one returns the slab to the pool.
    void release(const char* p);
    // Slabs handed out and not yet released (tests).
    std::size_t in_use() const;

  private:
    struct Slab {
        std::size_t capacity;
        int refs;
    };
    std::size_t keep_bytes_;  // free slabs kept for reuse, in bytes
    std::size_t kept_bytes_ = 0;
    mutable std::mutex mutex_;
    std::map<const char*, Slab> live_;        // by start: any pointer finds its slab
    std::multimap<std::size_t, char*> free_;  // by capacity
};

}  // namespace ezio
