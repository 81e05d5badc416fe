// WorkQueue: one thread running submitted jobs in order (FIFO).
//
// Used for the disk I/O workers (RawDiskIO) and the engine's resume-data
// saver. push() may be called from any thread; stop() runs what is queued,
// then joins the thread (it is idempotent, and the destructor calls it).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace ezio {

class WorkQueue {
  public:
    WorkQueue() : thread_([this] { run(); }) {}
    ~WorkQueue() { stop(); }
    WorkQueue(const WorkQueue&) = delete;
    WorkQueue& operator=(const WorkQueue&) = delete;

    void push(std::function<void()> job) {
        {
            std::lock_guard lock(mutex_);
            queue_.push_back(std::move(job));
        }
        cv_.notify_one();
    }

    void stop() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        cv_.notify_one();
        std::lock_guard join_lock(join_mutex_);
        if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id())
            thread_.join();
    }

  private:
    void run() {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lock(mutex_);
                cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
                if (queue_.empty())
                    return;
                job = std::move(queue_.front());
                queue_.pop_front();
            }
            job();
        }
    }

    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> queue_;
    bool stopping_ = false;
    std::mutex join_mutex_;  // stop() from two threads joins once
    std::thread thread_;     // last: starts after the members it uses exist
};

}  // namespace ezio
