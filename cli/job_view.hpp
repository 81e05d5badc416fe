// JobView: a job's org.ezio.Ezio1.Job properties as typed fields, and the
// human renderings of jobs (table, status block, progress line, event line).
// Missing properties read as empty/zero, so an older or newer daemon never
// breaks the display. Machine output is the JSON the bus gave (--json).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bus_client.hpp"

namespace ezio::cli {

struct JobView {
    std::string path;
    std::uint32_t id = 0;
    std::string operation;
    std::string state;
    double progress = 0.0;
    std::uint64_t bytes_done = 0;
    std::uint64_t bytes_total = 0;
    std::uint64_t download_rate = 0;
    std::uint64_t upload_rate = 0;
    std::uint32_t peers = 0;
    std::string target;
    std::string name;
    std::string info_hash;
    std::uint64_t start_time = 0;
    std::uint64_t expected_end_time = 0;
    std::string last_error;
    std::string error_name;
    nlohmann::json options = nlohmann::json::object();

    static JobView from(const JobSnapshot& job);
    // Applies a PropertiesChanged payload.
    void update(const nlohmann::json& changed);

    bool is_final() const;
    // The job's own rate: download for a deploy, upload for a seed.
    std::uint64_t rate() const { return operation == "seed" ? upload_rate : download_rate; }
};

// True for "completed", "failed", "cancelled".
bool is_final_state(const std::string& state);

// The JSON form of one job: its properties plus "Path" and "Id".
nlohmann::json job_json(const JobSnapshot& job);

// "JOB OPERATION STATE ..." table, one row per job, no trailing newline
// handling needed by the caller (ends with '\n'); `legend` adds the header.
std::string format_jobs_table(const std::vector<JobView>& jobs, bool legend);
// Multi-line "Key: value" block for `ezioctl status JOB`.
std::string format_job_status(const JobView& job);
// One-line progress for a terminal: name, bar, percent, bytes, rate, ETA,
// peers; fitted to `width` columns.
std::string format_progress_line(const JobView& job, int width, std::uint64_t now_usec);
// One-line, append-only report for logs and pipes: "job 3 deploy /dev/sda1:
// downloading 42.1% 110.3 MiB/s 7 peers".
std::string format_event_line(const JobView& job);

// Microseconds since the epoch, now.
std::uint64_t now_usec();

}  // namespace ezio::cli
