// Following jobs live: `deploy --wait`, `seed --wait`, `watch [JOB]`.
//
// Everything is driven by the job's PropertiesChanged and Completed signals
// (and the ObjectManager's InterfacesAdded/Removed for `watch` of all
// jobs); nothing is polled. On a terminal one job is drawn as a progress
// line redrawn in place; otherwise a line is printed per state change (and
// per 10% of progress for `watch`). With --json, `watch` prints one JSON
// object per event (JSON Lines) and `--wait` prints the final job object.
//
// Ctrl-C (SIGINT) or SIGTERM stops following, restores the terminal, and
// leaves the job running.
#pragma once

#include <optional>
#include <string>

#include "verbs.hpp"

namespace ezio::cli {

// Exit status when following was interrupted by a signal (128 + SIGINT).
inline constexpr int kInterruptedExit = 130;

class JobFollower {
  public:
    enum class Mode { Wait, Watch };

    // Subscribes to job signals at once, so that a job created by the next
    // method call is followed from its first signal. With
    // `require_verified`, a completed job counts as success only if it was
    // created with the "verify" option (eziod then completes it only after
    // re-reading every piece).
    JobFollower(Context& ctx, Mode mode, bool require_verified = false);

    // Follows `path` until it reaches a final state (or, for a deploy with
    // seed_after, completes its deployment). Returns 0 when the job
    // completed; throws ezio::Error with the job's error (exit status from
    // its ErrorName) when it failed or was cancelled; returns
    // kInterruptedExit after Ctrl-C.
    int follow(const std::string& path);

  private:
    Context& ctx_;
    Mode mode_;
    bool require_verified_;
};

// `watch` without JOB: every job, including new ones, until Ctrl-C (exit 0)
// or until eziod goes away (error).
int watch_all_jobs(Context& ctx);

}  // namespace ezio::cli
