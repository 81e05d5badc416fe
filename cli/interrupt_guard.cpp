#include "interrupt_guard.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "error.hpp"

namespace ezio::cli {
namespace {

int g_write_fd = -1;
volatile sig_atomic_t g_signal = 0;
struct sigaction g_old_int {};
struct sigaction g_old_term {};

extern "C" void on_signal(int sig) {
    const int saved = errno;
    g_signal = sig;
    const char byte = 1;
    // Async-signal-safe; a full pipe already holds a wake-up.
    [[maybe_unused]] auto n = ::write(g_write_fd, &byte, 1);
    errno = saved;
}

}  // namespace

InterruptGuard::InterruptGuard() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
        throw Error(Errc::Failed, std::string("pipe: ") + std::strerror(errno));
    read_fd_ = fds[0];
    g_write_fd = fds[1];
    g_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: poll() returns EINTR at once
    ::sigaction(SIGINT, &sa, &g_old_int);
    ::sigaction(SIGTERM, &sa, &g_old_term);
}

InterruptGuard::~InterruptGuard() {
    ::sigaction(SIGINT, &g_old_int, nullptr);
    ::sigaction(SIGTERM, &g_old_term, nullptr);
    ::close(g_write_fd);
    ::close(read_fd_);
    g_write_fd = -1;
}

int InterruptGuard::signal() const {
    return g_signal;
}

}  // namespace ezio::cli
