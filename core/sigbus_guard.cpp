#include "sigbus_guard.hpp"

#include <csetjmp>
#include <csignal>
#include <mutex>

namespace ezio {
namespace {

struct Frame {
    sigjmp_buf env;
    const char* begin;
    const char* end;
};

// Constant-initialised, so the handler reads it without any lazy TLS setup.
thread_local Frame* tl_frame = nullptr;

struct sigaction g_previous {};

void on_sigbus(int sig, siginfo_t* info, void* context) {
    Frame* f = tl_frame;
    const auto* at = static_cast<const char*>(info->si_addr);
    if (f != nullptr && at >= f->begin && at < f->end) {
        tl_frame = nullptr;
        siglongjmp(f->env, 1);
    }
    // Not a guarded read: behave as if this handler were not there.
    if ((g_previous.sa_flags & SA_SIGINFO) != 0 && g_previous.sa_sigaction != nullptr) {
        g_previous.sa_sigaction(sig, info, context);
        return;
    }
    if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
        g_previous.sa_handler(sig);
        return;
    }
    // Default action: restore it and return; the faulting access runs again
    // and the kernel delivers SIGBUS with the default disposition.
    ::sigaction(SIGBUS, &g_previous, nullptr);
}

bool is_ours(const struct sigaction& sa) {
    return (sa.sa_flags & SA_SIGINFO) != 0 && sa.sa_sigaction == on_sigbus;
}

// Installs the handler, again if someone replaced it since: libtorrent's
// mmap storage, for one, installs its own on first use and does not pass
// faults it did not expect on. Whatever was there is chained to.
bool ensure_installed() {
    static std::mutex mutex;
    struct sigaction now {};
    if (::sigaction(SIGBUS, nullptr, &now) != 0)
        return false;
    if (is_ours(now))
        return true;
    std::lock_guard lock(mutex);
    if (::sigaction(SIGBUS, nullptr, &now) != 0)
        return false;
    if (is_ours(now))
        return true;
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    return ::sigaction(SIGBUS, &sa, &g_previous) == 0;
}

}  // namespace

bool read_mapped_guarded(const char* begin, std::size_t len, void (*read)(void*), void* arg) {
    if (!ensure_installed())
        return false;

    Frame frame;
    frame.begin = begin;
    frame.end = begin + len;
    // The mask is saved (second argument) so SIGBUS, blocked while its
    // handler runs, is unblocked again after the jump.
    if (sigsetjmp(frame.env, 1) != 0)
        return false;
    tl_frame = &frame;
    read(arg);
    tl_frame = nullptr;
    return true;
}

}  // namespace ezio
