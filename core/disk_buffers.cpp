#include "disk_buffers.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>

namespace ezio {

BlockPool::~BlockPool() {
    for (char* b : free_)
        std::free(b);
}

char* BlockPool::get() {
    {
        std::lock_guard lock(mutex_);
        if (!free_.empty()) {
            char* b = free_.back();
            free_.pop_back();
            return b;
        }
    }
    return static_cast<char*>(std::aligned_alloc(4096, kBlockBytes));
}

void BlockPool::put(char* block) {
    if (!block)
        return;
    {
        std::lock_guard lock(mutex_);
        if (free_.size() < keep_) {
            free_.push_back(block);
            return;
        }
    }
    std::free(block);
}

SlabPool::~SlabPool() {
    for (auto& [capacity, slab] : free_)
        std::free(slab);
    // Slabs still referenced belong to whoever holds them; libtorrent
    // releases every buffer before it destroys its disk subsystem.
}

char* SlabPool::get(std::size_t bytes) {
    std::lock_guard lock(mutex_);
    char* slab = nullptr;
    std::size_t capacity = bytes;
    // The smallest free slab that fits, if it is not much too big.
    if (auto it = free_.lower_bound(bytes); it != free_.end() && it->first <= 2 * bytes) {
        capacity = it->first;
        slab = it->second;
        kept_bytes_ -= capacity;
        free_.erase(it);
    } else {
        slab = static_cast<char*>(std::malloc(bytes));
        if (!slab)
            return nullptr;
    }
    live_.emplace(slab, Slab{capacity, 1, MappedRange{}});
    return slab;
}

const char* SlabPool::map(int fd, std::uint64_t offset, std::size_t bytes, int& err) {
    const auto m = map_range(fd, offset, bytes);
    if (!m) {
        err = errno;
        return nullptr;
    }
    if (::madvise(m->map, m->map_len, MADV_POPULATE_READ) != 0) {
        err = errno;
        unmap(*m);
        return nullptr;
    }
    std::lock_guard lock(mutex_);
    live_.emplace(m->data, Slab{bytes, 1, *m});
    return m->data;
}

void SlabPool::unmap(const MappedRange& m) {
    // munmap() of a range mmap() returned fails only if that bookkeeping
    // is wrong, and then memory is already at risk.
    if (unmap_range(m) != 0)
        std::abort();
}

void SlabPool::add_ref(const char* slab) {
    std::lock_guard lock(mutex_);
    auto it = live_.find(slab);
    if (it != live_.end())
        ++it->second.refs;
}

void SlabPool::release(const char* p) {
    char* drop = nullptr;
    MappedRange mapping;
    {
        std::lock_guard lock(mutex_);
        auto it = live_.upper_bound(p);
        if (it == live_.begin())
            return;  // not ours
        --it;
        if (p >= it->first + it->second.capacity || --it->second.refs > 0)
            return;
        char* slab = const_cast<char*>(it->first);
        const std::size_t capacity = it->second.capacity;
        mapping = it->second.mapping;
        live_.erase(it);
        if (mapping.map) {
            // unmapped below, out of the lock
        } else if (kept_bytes_ + capacity <= keep_bytes_) {
            free_.emplace(capacity, slab);
            kept_bytes_ += capacity;
        } else {
            drop = slab;
        }
    }
    std::free(drop);
    if (mapping.map)
        unmap(mapping);
}

std::size_t SlabPool::in_use() const {
    std::lock_guard lock(mutex_);
    return live_.size();
}

}  // namespace ezio
