#include "torrent_fetch.hpp"

#include <algorithm>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

namespace ezio {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kPoll{100};
constexpr milliseconds kIdle{60'000};

}  // namespace

struct TorrentFetch::Shared {
    std::mutex mutex;
    bool done = false;
    std::vector<char> data;
    std::optional<Errc> error;
    std::string message;
};

TorrentFetch::TorrentFetch(std::string location, FetchOptions options, RetryPolicy policy)
    : location_(std::move(location)),
      options_(options),
      policy_(policy),
      first_start_(Clock::now()),
      next_delay_(policy.first_delay) {
    start();
}

TorrentFetch::~TorrentFetch() = default;

void TorrentFetch::start() {
    state_ = State::Fetching;
    ++attempts_;
    shared_ = std::make_shared<Shared>();
    std::thread([shared = shared_, location = location_, options = options_] {
        std::vector<char> data;
        std::optional<Errc> error;
        std::string message;
        try {
            data = fetch(location, options);
        } catch (const Error& e) {
            error = e.code();
            message = e.what();
        } catch (const std::exception& e) {
            error = Errc::Failed;
            message = e.what();
        }
        std::lock_guard lock(shared->mutex);
        shared->data = std::move(data);
        shared->error = error;
        shared->message = std::move(message);
        shared->done = true;
    }).detach();
}

TorrentFetch::Event TorrentFetch::poll() {
    if (state_ == State::WaitingRetry) {
        if (Clock::now() >= retry_at_)
            start();
        return Event::None;
    }
    if (state_ != State::Fetching)
        return Event::None;
    {
        std::lock_guard lock(shared_->mutex);
        if (!shared_->done)
            return Event::None;
        if (!shared_->error) {
            data_ = std::move(shared_->data);
            shared_.reset();
            state_ = State::Done;
            return Event::Done;
        }
        error_ = std::move(shared_->message);
        error_code_ = *shared_->error;
    }
    shared_.reset();
    const auto elapsed = Clock::now() - first_start_;
    const bool in_time =
        policy_.give_up_after.count() == 0 || elapsed + next_delay_ < policy_.give_up_after;
    if (error_code_ == Errc::Failed && in_time) {
        state_ = State::WaitingRetry;
        current_delay_ = next_delay_;
        retry_at_ = Clock::now() + current_delay_;
        next_delay_ = std::min(next_delay_ * 2, policy_.max_delay);
        return Event::AttemptFailed;
    }
    state_ = State::Failed;
    return Event::Failed;
}

std::chrono::milliseconds TorrentFetch::next_timeout() const {
    switch (state_) {
        case State::Fetching:
            return kPoll;
        case State::WaitingRetry:
            return std::max(std::chrono::ceil<milliseconds>(retry_at_ - Clock::now()),
                            milliseconds(0));
        case State::Done:
        case State::Failed:
            break;
    }
    return kIdle;
}

std::vector<char> TorrentFetch::take() {
    return std::exchange(data_, {});
}

}  // namespace ezio
