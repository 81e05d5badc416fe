// StatusLine: one line of a terminal redrawn in place (progress bars).
// Inactive, and every call a no-op, when the stream is not a terminal; the
// caller prints plain lines then. The destructor erases the line and shows
// the cursor again, so the terminal is restored on every way out that
// unwinds (errors, Ctrl-C through InterruptGuard).
#pragma once

#include <cstdio>
#include <string>

namespace ezio::cli {

class StatusLine {
  public:
    explicit StatusLine(std::FILE* stream);
    ~StatusLine();
    StatusLine(const StatusLine&) = delete;
    StatusLine& operator=(const StatusLine&) = delete;

    bool active() const { return tty_; }
    // Terminal width in columns (80 when unknown).
    int width() const;
    // Replaces the line with `text` (ASCII), cut to the terminal width.
    void show(const std::string& text);
    // Erases the line; the next output starts at column 0.
    void clear();

  private:
    std::FILE* stream_;
    bool tty_;
    bool drawn_ = false;
};

}  // namespace ezio::cli
