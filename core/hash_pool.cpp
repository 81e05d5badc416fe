#include "hash_pool.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include <libtorrent/hasher.hpp>

#include "sigbus_guard.hpp"

namespace ezio {
namespace {

constexpr std::size_t kBlock = 16 * 1024;  // BEP 52 leaf block size

struct MappedRead {
    lt::hasher* hasher;
    const char* data;
    std::size_t bytes;
};

// Runs under read_mapped_guarded: owns nothing, so a jump out of it leaks
// nothing.
void hash_mapped(void* arg) {
    const auto* r = static_cast<const MappedRead*>(arg);
    r->hasher->update(r->data, static_cast<int>(r->bytes));
}

// SHA-1 of a mapped piece; nullopt when a page of it could not be read.
std::optional<lt::sha1_hash> sha1_of_mapped(const MappedRange& m) {
    lt::hasher h;
    MappedRead r{&h, m.data, m.bytes};
    if (!read_mapped_guarded(static_cast<const char*>(m.map), m.map_len, hash_mapped, &r))
        return std::nullopt;
    return h.final();
}

}  // namespace

lt::sha256_hash merkle_piece_root(const char* data, std::size_t bytes, std::size_t leaves) {
    std::vector<lt::sha256_hash> level(leaves);  // value-initialised: zero hashes
    const std::size_t blocks = (bytes + kBlock - 1) / kBlock;
    for (std::size_t i = 0; i < blocks && i < leaves; ++i) {
        const std::size_t len = std::min(kBlock, bytes - i * kBlock);
        level[i] = lt::hasher256(data + i * kBlock, static_cast<int>(len)).final();
    }
    for (std::size_t n = leaves; n > 1; n /= 2) {
        for (std::size_t i = 0; i < n / 2; ++i) {
            lt::hasher256 h;
            h.update(level[2 * i]);
            h.update(level[2 * i + 1]);
            level[i] = h.final();
        }
    }
    return level.empty() ? lt::sha256_hash{} : level[0];
}

HashPool::HashPool(int threads, std::size_t buffer_size, std::size_t buffers)
    : buffer_size_(buffer_size), max_mapped_(std::max<std::size_t>(buffers, 1)) {
    threads = std::max(threads, 1);
    buffers = std::max<std::size_t>(buffers, 1);
    storage_.reserve(buffers);
    free_.reserve(buffers);
    for (std::size_t i = 0; buffer_size > 0 && i < buffers; ++i) {
        // Not value-initialised: zeroing hundreds of MiB the reader is about
        // to overwrite would cost as much as hashing them.
        storage_.push_back(std::unique_ptr<char[]>(new char[buffer_size]));
        free_.push_back(storage_.back().get());
    }
    workers_.reserve(static_cast<std::size_t>(threads));
    try {
        for (int i = 0; i < threads; ++i)
            workers_.emplace_back([this] { run(); });
    } catch (...) {
        // Thread creation failed part-way: stop the ones that started.
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        work_ready_.notify_all();
        for (auto& t : workers_)
            t.join();
        throw;
    }
}

HashPool::~HashPool() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    work_ready_.notify_all();
    for (auto& t : workers_)
        t.join();
    for (const auto& job : queue_)
        if (job.buf == nullptr)
            (void)unmap_range(job.mapped);  // only EINVAL, on bad arguments
}

char* HashPool::acquire() {
    std::unique_lock lock(mutex_);
    buffer_free_.wait(lock, [this] { return !free_.empty(); });
    char* buf = free_.back();
    free_.pop_back();
    return buf;
}

void HashPool::submit(char* buf, const PieceTask& task) {
    {
        std::lock_guard lock(mutex_);
        // Grow the result slots here, under the lock, so workers only ever
        // write to existing slots.
        if (task.index >= v1_.size()) {
            v1_.resize(task.index + 1);
            v2_.resize(task.index + 1);
        }
        if (task.sub_bytes > 0) {
            const std::size_t end =
                task.sub_first + (task.v1_bytes + task.sub_bytes - 1) / task.sub_bytes;
            if (end > sub_.size())
                sub_.resize(end);
        }
        queue_.push_back(Job{buf, MappedRange{}, task});
        ++in_flight_;
    }
    work_ready_.notify_one();
}

void HashPool::submit_mapped(const MappedRange& piece, std::size_t index) {
    {
        std::unique_lock lock(mutex_);
        buffer_free_.wait(lock, [this] { return mapped_in_flight_ < max_mapped_; });
        if (index >= v1_.size()) {
            v1_.resize(index + 1);
            v2_.resize(index + 1);
        }
        PieceTask task;
        task.index = index;
        queue_.push_back(Job{nullptr, piece, task});
        ++in_flight_;
        ++mapped_in_flight_;
    }
    work_ready_.notify_one();
}

std::optional<std::size_t> HashPool::first_failure() {
    std::lock_guard lock(mutex_);
    return first_failure_;
}

void HashPool::finish() {
    std::unique_lock lock(mutex_);
    buffer_free_.wait(lock, [this] { return in_flight_ == 0; });
}

void HashPool::run() {
    for (;;) {
        Job job{};
        {
            std::unique_lock lock(mutex_);
            work_ready_.wait(lock, [this] { return stop_ || !queue_.empty(); });
            if (stop_)
                return;
            job = queue_.front();
            queue_.pop_front();
        }

        const auto& t = job.task;
        if (job.buf == nullptr) {
            const auto v1 = sha1_of_mapped(job.mapped);
            // munmap fails only on arguments mmap did not return.
            const bool unmapped = unmap_range(job.mapped) == 0;
            {
                std::lock_guard lock(mutex_);
                if (v1 && unmapped) {
                    v1_[t.index] = *v1;
                } else if (!first_failure_ || t.index < *first_failure_) {
                    first_failure_ = t.index;
                }
                --in_flight_;
                --mapped_in_flight_;
            }
            buffer_free_.notify_one();
            continue;
        }

        // The expensive part runs without the lock.
        const lt::sha1_hash v1 = lt::hasher(job.buf, static_cast<int>(t.v1_bytes)).final();
        lt::sha256_hash v2{};
        if (t.v2_leaves > 0)
            v2 = merkle_piece_root(job.buf, t.v2_bytes, t.v2_leaves);
        std::vector<lt::sha1_hash> subs;
        if (t.sub_bytes > 0) {
            for (std::size_t at = 0; at < t.v1_bytes; at += t.sub_bytes) {
                const std::size_t n = std::min(t.sub_bytes, t.v1_bytes - at);
                subs.push_back(lt::hasher(job.buf + at, static_cast<int>(n)).final());
            }
        }

        {
            std::lock_guard lock(mutex_);
            v1_[t.index] = v1;
            v2_[t.index] = v2;
            std::copy(subs.begin(), subs.end(),
                      sub_.begin() + static_cast<std::ptrdiff_t>(t.sub_first));
            free_.push_back(job.buf);
            --in_flight_;
        }
        // Both the producer waiting in acquire() and the one in finish() wait
        // on this; there is only one producer, so notify_one is enough.
        buffer_free_.notify_one();
    }
}

}  // namespace ezio
