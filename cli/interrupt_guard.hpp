// InterruptGuard: turns SIGINT and SIGTERM into a readable file descriptor
// while it lives, so a waiting loop (poll) can stop cleanly, restore the
// terminal and say what happens to the job, instead of dying mid-line.
// The previous handlers are restored on destruction. One instance at a time.
#pragma once

namespace ezio::cli {

class InterruptGuard {
  public:
    InterruptGuard();
    ~InterruptGuard();
    InterruptGuard(const InterruptGuard&) = delete;
    InterruptGuard& operator=(const InterruptGuard&) = delete;

    // Readable after SIGINT/SIGTERM.
    int fd() const { return read_fd_; }
    // The signal that arrived, 0 if none.
    int signal() const;

  private:
    int read_fd_ = -1;
};

}  // namespace ezio::cli
