#include "piece_verifier.hpp"

#include <pthread.h>
#include <sched.h>

#include "verify.hpp"

namespace ezio {

PieceVerifier::PieceVerifier(std::shared_ptr<const Target> target, ImageTorrent torrent)
    : target_(std::move(target)), torrent_(std::move(torrent)) {
    result_.checked.assign(static_cast<std::size_t>(torrent_.info->num_pieces()), false);
    thread_ = std::thread([this] { run(); });
}

PieceVerifier::~PieceVerifier() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable())
        thread_.join();
}

void PieceVerifier::add(int piece) {
    if (piece < 0 || piece >= torrent_.info->num_pieces())
        return;
    {
        std::lock_guard lock(mutex_);
        if (stopping_)
            return;
        queue_.push_back(piece);
    }
    cv_.notify_all();
}

void PieceVerifier::wait_idle() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return stopping_ || (queue_.empty() && !busy_); });
}

PieceVerifier::Result PieceVerifier::finish() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        queue_.clear();
    }
    cv_.notify_all();
    if (thread_.joinable())
        thread_.join();
    return std::move(result_);
}

void PieceVerifier::run() {
    ::pthread_setname_np(::pthread_self(), "ezio-verify");
    // Only CPU time nobody else wants: the transfer goes first. Not being
    // allowed to is no error; the thread then runs at normal priority.
    sched_param idle{};
    ::pthread_setschedparam(::pthread_self(), SCHED_IDLE, &idle);
    const lt::file_storage& fs = torrent_.info->files();
    // Small pieces that queued up meanwhile are checked together, side by side.
    const int most = verify_group_size(torrent_);
    std::vector<char> buf;
    std::vector<std::vector<char>> bufs;
    int pieces[kSha1Lanes];
    bool good[kSha1Lanes];
    for (;;) {
        int n = 0;
        {
            std::unique_lock lock(mutex_);
            busy_ = false;
            cv_.notify_all();  // wait_idle()
            cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (stopping_ || result_.io_error)
                return;
            while (n < most && !queue_.empty()) {
                pieces[n++] = queue_.front();
                queue_.pop_front();
            }
            busy_ = true;
        }
        const int err = most > 1 ? verify_pieces(*target_, torrent_, pieces, n, bufs, good)
                                 : verify_piece(*target_, torrent_, pieces[0], buf, good[0]);
        // What the reads put in the page cache is not needed again. A hint:
        // if the kernel declines, only memory use differs.
        for (int i = 0; i < n; ++i) {
            const lt::piece_index_t p{pieces[i]};
            for (const lt::file_slice& s : fs.map_block(p, 0, fs.piece_size(p)))
                if (auto base = torrent_.layout.device_offset(s.file_index))
                    (void)target_->drop_cache(*base + static_cast<std::uint64_t>(s.offset),
                                              static_cast<std::uint64_t>(s.size));
        }
        std::lock_guard lock(mutex_);
        if (err) {
            result_.io_error = err;
            stopping_ = true;  // nothing more to learn; wakes wait_idle()
            cv_.notify_all();
            return;
        }
        for (int i = 0; i < n; ++i) {
            result_.checked[static_cast<std::size_t>(pieces[i])] = true;
            if (!good[i])
                result_.bad.push_back(pieces[i]);
        }
    }
}

}  // namespace ezio
