// eziod's logging. Under systemd (JOURNAL_STREAM names our stderr) each line
// goes to the journal through sd_journal_send() with structured fields, so
// `journalctl -u eziod JOB=3` or `INFO_HASH=...` find a job's story:
//   MESSAGE, PRIORITY, SYSLOG_IDENTIFIER=eziod, and for job lines
//   JOB (job number), TARGET (device path), INFO_HASH (hex).
// Otherwise lines go to stderr as plain text.
//
// Threading: main thread only (eziod is single-threaded; the engine's own
// threads never log through here).
#pragma once

#include <string_view>

#include "config.hpp"
#include "engine.hpp"

namespace ezio::log {

// Decides journal vs stderr from the environment; call once at start.
void init(LogLevel min_level);
void set_level(LogLevel min_level);
bool enabled(LogLevel level);

void write(LogLevel level, std::string_view message);
// A line about one job, carrying its JOB/TARGET/INFO_HASH fields.
void job(LogLevel level, const JobStatus& status, std::string_view message);

inline void debug(std::string_view m) {
    write(LogLevel::Debug, m);
}
inline void info(std::string_view m) {
    write(LogLevel::Info, m);
}
inline void notice(std::string_view m) {
    write(LogLevel::Notice, m);
}
inline void warning(std::string_view m) {
    write(LogLevel::Warning, m);
}
inline void error(std::string_view m) {
    write(LogLevel::Error, m);
}

}  // namespace ezio::log
