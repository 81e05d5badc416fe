#include "log.hpp"

#include <sys/stat.h>
#include <syslog.h>
#include <systemd/sd-journal.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace ezio::log {
namespace {

LogLevel g_min = LogLevel::Info;
bool g_journal = false;

int priority(LogLevel level) {
    switch (level) {
        case LogLevel::Debug:
            return LOG_DEBUG;
        case LogLevel::Info:
            return LOG_INFO;
        case LogLevel::Notice:
            return LOG_NOTICE;
        case LogLevel::Warning:
            return LOG_WARNING;
        case LogLevel::Error:
            return LOG_ERR;
    }
    return LOG_INFO;
}

// systemd sets JOURNAL_STREAM=DEV:INODE of the stream it connected to our
// stderr; only trust it while stderr is still that stream (not redirected by
// whoever started us from a service).
bool stderr_is_journal() {
    const char* env = std::getenv("JOURNAL_STREAM");
    if (!env)
        return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2)
        return false;
    struct stat st {};
    if (::fstat(2, &st) != 0)
        return false;
    return st.st_dev == dev && st.st_ino == ino;
}

void to_stderr(LogLevel level, std::string_view message) {
    std::string line;
    if (level != LogLevel::Info) {
        line += to_string(level);
        line += ": ";
    }
    line += message;
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

}  // namespace

void init(LogLevel min_level) {
    g_min = min_level;
    g_journal = stderr_is_journal();
}

void set_level(LogLevel min_level) {
    g_min = min_level;
}

bool enabled(LogLevel level) {
    return level >= g_min;
}

void write(LogLevel level, std::string_view message) {
    if (!enabled(level))
        return;
    if (g_journal) {
        sd_journal_send("MESSAGE=%.*s", static_cast<int>(message.size()), message.data(),
                        "PRIORITY=%d", priority(level), "SYSLOG_IDENTIFIER=eziod", nullptr);
        return;
    }
    to_stderr(level, message);
}

void job(LogLevel level, const JobStatus& status, std::string_view message) {
    if (!enabled(level))
        return;
    if (g_journal) {
        sd_journal_send("MESSAGE=job %u: %.*s", status.id, static_cast<int>(message.size()),
                        message.data(), "PRIORITY=%d", priority(level), "SYSLOG_IDENTIFIER=eziod",
                        "JOB=%u", status.id, "TARGET=%s", status.target.c_str(), "INFO_HASH=%s",
                        status.info_hash.c_str(), nullptr);
        return;
    }
    to_stderr(level, "job " + std::to_string(status.id) + " (" + status.target +
                         "): " + std::string(message));
}

}  // namespace ezio::log
