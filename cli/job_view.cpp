#include "job_view.hpp"

#include <algorithm>
#include <chrono>

#include "cli_format.hpp"

namespace ezio::cli {
namespace {

template <typename T>
void read(const nlohmann::json& props, const char* key, T& out) {
    auto it = props.find(key);
    if (it == props.end() || it->is_null())
        return;
    try {
        out = it->get<T>();
    } catch (const nlohmann::json::exception&) {
        // A type this client does not expect: keep the default rather than
        // fail the whole listing.
    }
}

std::string pad_right(std::string text, std::size_t width) {
    if (text.size() < width)
        text.append(width - text.size(), ' ');
    return text;
}

std::string pad_left(std::string text, std::size_t width) {
    if (text.size() < width)
        text.insert(0, width - text.size(), ' ');
    return text;
}

std::string option_text(const nlohmann::json& value) {
    if (value.is_string())
        return value.get<std::string>();
    if (value.is_array()) {
        std::string out;
        for (const auto& v : value) {
            if (!out.empty())
                out += ",";
            out += option_text(v);
        }
        return out;
    }
    return value.dump();
}

std::string peers_text(std::uint32_t peers) {
    return std::to_string(peers) + (peers == 1 ? " peer" : " peers");
}

}  // namespace

JobView JobView::from(const JobSnapshot& job) {
    JobView v;
    v.path = job.path;
    v.id = job_id_from_path(job.path).value_or(0);
    v.update(job.properties);
    return v;
}

void JobView::update(const nlohmann::json& p) {
    if (!p.is_object())
        return;
    read(p, "Operation", operation);
    read(p, "State", state);
    read(p, "Progress", progress);
    read(p, "BytesDone", bytes_done);
    read(p, "BytesTotal", bytes_total);
    read(p, "DownloadRate", download_rate);
    read(p, "UploadRate", upload_rate);
    read(p, "Peers", peers);
    read(p, "Target", target);
    read(p, "Name", name);
    read(p, "InfoHash", info_hash);
    read(p, "StartTime", start_time);
    read(p, "ExpectedEndTime", expected_end_time);
    read(p, "LastError", last_error);
    read(p, "ErrorName", error_name);
    if (auto it = p.find("Options"); it != p.end() && it->is_object())
        options = *it;
}

bool is_final_state(const std::string& state) {
    return state == "completed" || state == "failed" || state == "cancelled";
}

bool JobView::is_final() const {
    return is_final_state(state);
}

nlohmann::json job_json(const JobSnapshot& job) {
    nlohmann::json out = job.properties.is_object() ? job.properties : nlohmann::json::object();
    out["Path"] = job.path;
    if (auto id = job_id_from_path(job.path))
        out["Id"] = *id;
    return out;
}

std::string format_jobs_table(const std::vector<JobView>& jobs, bool legend) {
    struct Row {
        std::string id, op, state, progress, rate, peers, target, name;
    };
    std::vector<Row> rows;
    if (legend)
        rows.push_back(
            {"JOB", "OPERATION", "STATE", "PROGRESS", "RATE", "PEERS", "TARGET", "NAME"});
    for (const auto& j : jobs) {
        rows.push_back({std::to_string(j.id), j.operation, j.state, format_percent(j.progress),
                        format_rate(j.rate()), std::to_string(j.peers), j.target, j.name});
    }
    std::size_t w[8] = {};
    for (const auto& r : rows) {
        const std::string* cells[8] = {&r.id,   &r.op,    &r.state,  &r.progress,
                                       &r.rate, &r.peers, &r.target, &r.name};
        for (int i = 0; i < 8; ++i)
            w[i] = std::max(w[i], cells[i]->size());
    }
    std::string out;
    for (const auto& r : rows) {
        std::string line = pad_left(r.id, w[0]) + "  " + pad_right(r.op, w[1]) + "  " +
                           pad_right(r.state, w[2]) + "  " + pad_left(r.progress, w[3]) + "  " +
                           pad_left(r.rate, w[4]) + "  " + pad_left(r.peers, w[5]) + "  " +
                           pad_right(r.target, w[6]) + "  " + r.name;
        while (!line.empty() && line.back() == ' ')
            line.pop_back();
        out += line + "\n";
    }
    return out;
}

std::string format_job_status(const JobView& j) {
    std::vector<std::pair<std::string, std::string>> rows;
    rows.emplace_back("Operation", j.operation);
    rows.emplace_back("State", j.state);
    rows.emplace_back("Progress", format_percent(j.progress) + " (" + format_bytes(j.bytes_done) +
                                      " of " + format_bytes(j.bytes_total) + ")");
    rows.emplace_back(
        "Rate", format_rate(j.download_rate) + " down, " + format_rate(j.upload_rate) + " up");
    rows.emplace_back("Peers", std::to_string(j.peers));
    rows.emplace_back(j.operation == "seed" ? "Source" : "Target", j.target);
    rows.emplace_back("Name", j.name);
    rows.emplace_back("Info hash", j.info_hash);
    rows.emplace_back("Started", format_timestamp(j.start_time));
    if (!j.is_final()) {
        auto eta =
            estimate_eta(j.expected_end_time, now_usec(), j.bytes_done, j.bytes_total, j.rate());
        if (j.state == "downloading" || j.state == "checking" || j.state == "finishing")
            rows.emplace_back("Expected end", j.expected_end_time
                                                  ? format_timestamp(j.expected_end_time) +
                                                        " (in " + format_eta(eta) + ")"
                                                  : format_eta(eta));
    }
    if (!j.last_error.empty())
        rows.emplace_back("Error", j.last_error);
    if (!j.error_name.empty())
        rows.emplace_back("Error name", j.error_name);
    if (j.options.is_object() && !j.options.empty()) {
        std::string text;
        for (const auto& [key, value] : j.options.items()) {
            if (!text.empty())
                text += " ";
            text += key + "=" + option_text(value);
        }
        rows.emplace_back("Options", text);
    }
    std::size_t w = 0;
    for (const auto& [k, v] : rows)
        w = std::max(w, k.size());
    std::string out = "Job " + std::to_string(j.id) + " (" + j.path + ")\n";
    for (const auto& [k, v] : rows)
        out += "  " + pad_left(k, w) + ": " + v + "\n";
    return out;
}

std::string format_progress_line(const JobView& j, int width, std::uint64_t now) {
    if (j.state == "seeding")
        return "seeding  up " + format_rate(j.upload_rate) + "  " + peers_text(j.peers);
    // Fixed-width fields, so the bar does not jump as the numbers change.
    const auto eta = estimate_eta(j.expected_end_time, now, j.bytes_done, j.bytes_total, j.rate());
    const std::string status = j.state == "downloading" ? "ETA " + format_eta(eta) : j.state;
    const std::string tail =
        pad_left(format_percent(j.progress), 6) + "  " +
        pad_left(format_bytes(j.bytes_done) + "/" + format_bytes(j.bytes_total), 17) + "  " +
        pad_left(format_rate(j.rate()), 11) + "  " + pad_right(status, 10) + "  " +
        peers_text(j.peers);
    // One column is kept free by StatusLine.
    const int room = width - 1 - static_cast<int>(tail.size()) - 2;
    if (room < 10)
        return tail;
    return format_bar(j.progress, std::min(room, 42)) + "  " + tail;
}

std::string format_event_line(const JobView& j) {
    std::string out =
        "job " + std::to_string(j.id) + " " + j.operation + " " + j.target + ": " + j.state;
    if (j.state == "failed" || j.state == "cancelled") {
        if (!j.last_error.empty())
            out += ": " + j.last_error;
        return out;
    }
    if (j.state == "completed")
        return out;
    if (j.state == "seeding")
        return out + " up " + format_rate(j.upload_rate) + " " + peers_text(j.peers);
    return out + " " + format_percent(j.progress) + " " + format_rate(j.rate()) + " " +
           peers_text(j.peers);
}

std::uint64_t now_usec() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

}  // namespace ezio::cli
