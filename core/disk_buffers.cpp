#include "disk_buffers.hpp"

#include <cstdint>
#include <cstdlib>
#include <new>

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
    for (char* s : free_)
        std::free(s);
}

SlabPool::Header* SlabPool::header(const char* p) {
    const auto base = reinterpret_cast<std::uintptr_t>(p) & ~(std::uintptr_t{kSlabBytes} - 1);
    return reinterpret_cast<Header*>(base + kSlabBytes - sizeof(Header));
}

char* SlabPool::get() {
    char* slab = nullptr;
    {
        std::lock_guard lock(mutex_);
        if (!free_.empty()) {
            slab = free_.back();
            free_.pop_back();
        }
    }
    if (!slab) {
        slab = static_cast<char*>(std::aligned_alloc(kSlabBytes, kSlabBytes));
        if (!slab)
            return nullptr;
        new (header(slab)) Header{};
    }
    header(slab)->refs.store(1, std::memory_order_relaxed);
    return slab;
}

void SlabPool::add_ref(const char* p) {
    header(p)->refs.fetch_add(1, std::memory_order_relaxed);
}

void SlabPool::release(const char* p) {
    Header* h = header(p);
    if (h->refs.fetch_sub(1, std::memory_order_acq_rel) != 1)
        return;
    char* slab = reinterpret_cast<char*>(h) + sizeof(Header) - kSlabBytes;
    {
        std::lock_guard lock(mutex_);
        if (free_.size() < keep_) {
            free_.push_back(slab);
            return;
        }
    }
    std::free(slab);
}

}  // namespace ezio
