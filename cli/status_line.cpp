#include "status_line.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

namespace ezio::cli {

StatusLine::StatusLine(std::FILE* stream)
    : stream_(stream), tty_(::isatty(::fileno(stream)) == 1) {}

StatusLine::~StatusLine() {
    clear();
}

int StatusLine::width() const {
    winsize ws{};
    if (::ioctl(::fileno(stream_), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

void StatusLine::show(const std::string& text) {
    if (!tty_)
        return;
    // Leave the last column free: writing into it makes some terminals wrap.
    const auto cols = static_cast<std::size_t>(width() > 1 ? width() - 1 : 1);
    std::string line = text.size() > cols ? text.substr(0, cols) : text;
    // \r: column 0; ESC[?25l: hide the cursor; ESC[K: erase to end of line.
    std::fprintf(stream_, "\r\033[?25l%s\033[K", line.c_str());
    std::fflush(stream_);
    drawn_ = true;
}

void StatusLine::clear() {
    if (!tty_ || !drawn_)
        return;
    std::fputs("\r\033[K\033[?25h", stream_);
    std::fflush(stream_);
    drawn_ = false;
}

}  // namespace ezio::cli
