// Memory for RawDiskIO's hot path, recycled so that a deployment at
// hundreds of MiB/s does not call malloc/free (and so mmap/munmap) for every
// 16 KiB block.
//
// BlockPool: 16 KiB blocks, 4 KiB aligned (usable for O_DIRECT), holding
// the copy of a received block until it is written.
//
// SlabPool: read-ahead slabs. A slab is one pread of up to kSlabData bytes of
// a piece; the blocks libtorrent asked for are handed out as pointers into
// it (no second copy) and each pointer holds a reference. A slab is
// kSlabBytes long and kSlabBytes aligned, with its reference count in its
// last bytes, so release() finds the slab of any pointer into it without a
// lookup.
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <atomic>
#include <cstddef>
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
    static constexpr std::size_t kSlabBytes = 1 << 20;
    // Data bytes of a slab; the rest holds its reference count.
    static constexpr std::size_t kSlabData = kSlabBytes - 16 * 1024;

    explicit SlabPool(std::size_t keep) : keep_(keep) {}
    ~SlabPool();
    SlabPool(const SlabPool&) = delete;
    SlabPool& operator=(const SlabPool&) = delete;

    // A slab holding one reference, or nullptr when memory is exhausted.
    char* get();
    // One more reference to the slab that `p` points into.
    static void add_ref(const char* p);
    // Drops a reference to the slab that `p` points into; the last one
    // returns the slab to the pool.
    void release(const char* p);

  private:
    struct Header {
        std::atomic<int> refs;
    };
    static Header* header(const char* p);
    std::size_t keep_;
    std::mutex mutex_;
    std::vector<char*> free_;
};

}  // namespace ezio
