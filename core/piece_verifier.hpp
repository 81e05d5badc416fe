// PieceVerifier: checks a deployment's pieces while the rest is still
// arriving. Each piece that passed libtorrent's hash check (and so is
// written: RawDiskIO runs a piece's hash after its writes) is read back from
// the target on a background thread and hashed again, so `verify` costs
// almost nothing at the end of a deployment whose network is the limit.
//
// The read must reach the medium, not memory: the engine uses this only for
// targets written with O_DIRECT, where no page of the image is cached, and
// the verifier drops what its own reads cache. The thread runs at idle
// priority (SCHED_IDLE): it never slows the transfer; what it has not
// checked by the end is checked then (verify_image with `skip`).
//
// Threading: add() and finish() from one owner thread; the work runs on the
// verifier's own thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "layout.hpp"
#include "target.hpp"

namespace ezio {

class PieceVerifier {
  public:
    struct Result {
        std::vector<bool> checked;  // by piece: read back and hashed
        std::vector<int> bad;       // checked pieces whose hash differed
        int io_error = 0;           // errno of a failed read, 0 if none
    };

    PieceVerifier(std::shared_ptr<const Target> target, ImageTorrent torrent);
    ~PieceVerifier();
    PieceVerifier(const PieceVerifier&) = delete;
    PieceVerifier& operator=(const PieceVerifier&) = delete;

    // Queues a piece that passed its hash check.
    void add(int piece);
    // Blocks until every queued piece is checked (tests).
    void wait_idle();
    // Stops (pieces still queued are left unchecked) and returns what was
    // checked. Call once.
    Result finish();

  private:
    void run();

    std::shared_ptr<const Target> target_;
    ImageTorrent torrent_;
    std::mutex mutex_;  // guards queue_, busy_, stopping_, result_
    std::condition_variable cv_;
    std::deque<int> queue_;
    bool busy_ = false;  // a piece is being checked
    bool stopping_ = false;
    Result result_;
    std::thread thread_;  // last: starts once the rest exists
};

}  // namespace ezio
