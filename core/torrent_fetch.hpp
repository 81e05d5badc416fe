// A torrent fetched in the background, with retries: what the auto-deployer
// and the duplicator both need before they can start a job.
//
// fetch() (core/fetch.hpp) runs on a detached thread of its own, so a slow
// server never blocks the main loop and a shutdown never waits for it. The
// owner polls from the main loop. Network trouble (Errc::Failed: no route,
// no server, HTTP errors, timeouts) is retried with a doubling delay, up to
// RetryPolicy::max_delay, for as long as the policy allows; anything else
// (a missing file, a refused scheme, an oversized answer) will not get
// better and ends the fetch at once.
//
// Threading: main thread only; the fetching thread touches nothing but the
// state it shares with this object through a shared_ptr.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "error.hpp"
#include "fetch.hpp"

namespace ezio {

struct RetryPolicy {
    std::chrono::seconds first_delay{1};
    std::chrono::seconds max_delay{15};
    // No new attempt once this much time has passed since the first one
    // started; zero retries forever.
    std::chrono::seconds give_up_after{0};
};

class TorrentFetch {
  public:
    enum class State {
        Fetching,      // an attempt is running
        WaitingRetry,  // the last attempt failed; the next is due at retry_at()
        Done,          // take() the bytes
        Failed,        // error() says why; no more attempts
    };
    // What poll() saw happen since the last call.
    enum class Event { None, AttemptFailed, Done, Failed };

    TorrentFetch(std::string location, FetchOptions options, RetryPolicy policy);
    ~TorrentFetch();
    TorrentFetch(const TorrentFetch&) = delete;
    TorrentFetch& operator=(const TorrentFetch&) = delete;

    // Collects a finished attempt and starts a retry when it is due.
    Event poll();
    // How long the main loop may sleep before poll() has work.
    std::chrono::milliseconds next_timeout() const;

    State state() const { return state_; }
    const std::string& location() const { return location_; }
    int attempts() const { return attempts_; }
    // Of the last failed attempt.
    const std::string& error() const { return error_; }
    Errc error_code() const { return error_code_; }
    // Delay before the next attempt (WaitingRetry).
    std::chrono::seconds retry_delay() const { return current_delay_; }
    // The torrent's bytes, once, in state Done.
    std::vector<char> take();

  private:
    struct Shared;
    void start();

    std::string location_;
    FetchOptions options_;
    RetryPolicy policy_;
    State state_ = State::Fetching;
    std::shared_ptr<Shared> shared_;
    std::chrono::steady_clock::time_point first_start_;
    std::chrono::steady_clock::time_point retry_at_;
    std::chrono::seconds current_delay_{0};
    std::chrono::seconds next_delay_;
    int attempts_ = 0;
    std::string error_;
    Errc error_code_ = Errc::Failed;
    std::vector<char> data_;
};

}  // namespace ezio
