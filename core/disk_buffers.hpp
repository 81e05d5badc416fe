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
// fresh memory. A slab can also be a read-only mapping of the device itself
// (map()): the blocks handed out then point into the kernel's page cache,
// and the read costs no copy at all.
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "mapped_range.hpp"

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
    // A slab that is a shared read-only mapping of `bytes` of `fd` from
    // `offset` (any alignment), holding one reference, its pages read in
    // (MADV_POPULATE_READ) so that nobody faults on them later. Returns
    // nullptr with an errno value in `err` when the range cannot be mapped
    // or read in: EFAULT for a page the device could not supply (an I/O
    // error, a range past its end), EINVAL on a kernel without
    // MADV_POPULATE_READ (Linux < 5.14). Nothing in user space ever reads
    // such a slab: the kernel copies it into the socket, and a page lost
    // meanwhile fails that send with EFAULT instead of raising SIGBUS.
    const char* map(int fd, std::uint64_t offset, std::size_t bytes, int& err);
    // One more reference to a slab, by its start (as get() or map()
    // returned it).
    void add_ref(const char* slab);
    // Drops a reference to the slab that `p` points into (any byte of it);
    // the last one returns the slab to the pool (a mapping is unmapped).
    void release(const char* p);
    // Slabs handed out and not yet released (tests).
    std::size_t in_use() const;

  private:
    static void unmap(const MappedRange& m);
    struct Slab {
        std::size_t capacity;
        int refs;
        MappedRange mapping;  // map: a mapping of the device, not memory of ours
    };
    std::size_t keep_bytes_;  // free slabs kept for reuse, in bytes
    std::size_t kept_bytes_ = 0;
    mutable std::mutex mutex_;
    std::map<const char*, Slab> live_;        // by start: any pointer finds its slab
    std::multimap<std::size_t, char*> free_;  // by capacity
};

}  // namespace ezio
