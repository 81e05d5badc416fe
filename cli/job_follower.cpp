#include "job_follower.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>

#include "cli_format.hpp"
#include "error.hpp"
#include "interrupt_guard.hpp"
#include "job_view.hpp"
#include "status_line.hpp"

namespace ezio::cli {
namespace {

void print_json_line(const nlohmann::json& value) {
    std::printf("%s\n", value.dump().c_str());
    std::fflush(stdout);
}

nlohmann::json event_json(const char* event, const std::string& path) {
    nlohmann::json out{{"Event", event}, {"Path", path}};
    if (auto id = job_id_from_path(path))
        out["Id"] = *id;
    return out;
}

int progress_step(double progress) {
    return static_cast<int>(std::floor(progress * 10.0));
}

std::string job_label(const JobView& v) {
    return "job " + std::to_string(v.id);
}

}  // namespace

JobFollower::JobFollower(Context& ctx, Mode mode, bool require_verified)
    : ctx_(ctx), mode_(mode), require_verified_(require_verified) {
    ctx_.bus().subscribe(std::nullopt, BusEvents{});
}

int JobFollower::follow(const std::string& path) {
    BusClient& bus = ctx_.bus();
    const GlobalOptions& g = ctx_.in.global;

    JobView view;
    nlohmann::json props = nlohmann::json::object();
    std::optional<std::pair<bool, std::string>> completed;
    bool removed = false;
    bool gone = false;

    StatusLine line(stdout);
    const bool draw = !g.json && !g.quiet && line.active();
    const bool print_lines = !g.json && !g.quiet && !line.active();
    const bool json_events = g.json && mode_ == Mode::Watch;
    std::string shown_state;
    int shown_step = -1;

    auto redraw = [&] {
        if (draw) {
            line.show(format_progress_line(view, line.width(), now_usec()));
        } else if (print_lines) {
            const int step = progress_step(view.progress);
            const bool step_changed =
                mode_ == Mode::Watch && step != shown_step && view.state == "downloading";
            if (view.state != shown_state || step_changed) {
                std::printf("%s\n", format_event_line(view).c_str());
                std::fflush(stdout);
            }
            shown_step = step;
        }
        shown_state = view.state;
    };

    BusEvents events;
    events.job_changed = [&](const std::string& p, const nlohmann::json& changed) {
        view.update(changed);
        props.update(changed);
        if (json_events) {
            auto ev = event_json("changed", p);
            ev["Properties"] = changed;
            print_json_line(ev);
        }
        redraw();
    };
    events.job_completed = [&](const std::string& p, bool success, const std::string& message) {
        completed.emplace(success, message);
        if (json_events) {
            auto ev = event_json("completed", p);
            ev["Success"] = success;
            ev["Message"] = message;
            print_json_line(ev);
        }
    };
    events.job_removed = [&](const std::string& p) {
        removed = true;
        if (json_events)
            print_json_line(event_json("removed", p));
    };
    events.daemon_gone = [&] { gone = true; };
    bus.subscribe(path, events);

    const JobSnapshot snapshot = bus.job(path);
    view = JobView::from(snapshot);
    props = snapshot.properties;
    if (json_events) {
        auto ev = event_json("snapshot", path);
        ev["Properties"] = props;
        print_json_line(ev);
    }
    if (draw || print_lines) {
        if (draw && !view.is_final()) {
            const char* verb = view.operation == "seed" ? "Seeding " : "Deploying ";
            const char* prep = view.operation == "seed" ? " from " : " to ";
            std::printf("%s%s%s%s (job %u)\n", verb, view.name.c_str(), prep, view.target.c_str(),
                        view.id);
        }
        redraw();
    }

    // Completed comes once: at the final state, or, for a deploy with
    // seed_after, when the deployment is done and the job keeps seeding. It
    // carries the message, so after a final State wait a moment for it; a
    // job that was final before we subscribed sends none.
    const bool final_at_start = view.is_final();
    std::optional<std::chrono::steady_clock::time_point> final_seen;
    auto done = [&] {
        if (completed || removed || gone || final_at_start)
            return true;
        if (!view.is_final())
            return false;
        const auto now = std::chrono::steady_clock::now();
        if (!final_seen)
            final_seen = now;
        return now - *final_seen >= std::chrono::seconds(2);
    };

    InterruptGuard interrupt;
    const auto result = bus.run_until(done, interrupt.fd(), std::chrono::milliseconds(250));
    line.clear();

    if (result == BusClient::RunResult::Interrupted) {
        if (!g.quiet) {
            if (mode_ == Mode::Wait)
                std::fprintf(stderr,
                             "Stopped waiting; job %u continues (ezioctl cancel %u stops it).\n",
                             view.id, view.id);
            else
                std::fprintf(stderr, "Stopped watching job %u.\n", view.id);
        }
        return kInterruptedExit;
    }
    if (g.json && mode_ == Mode::Wait)
        print_json_line(job_json(JobSnapshot{path, props}));

    const std::string label = job_label(view);
    const bool success = view.state == "completed" || (completed && completed->first);
    if (success && require_verified_) {
        const auto it = view.options.find("verify");
        if (it == view.options.end() || !it->is_boolean() || !it->get<bool>())
            throw Error(Errc::Failed,
                        label + " completed, but eziod did not take the verify option");
    }
    if (success) {
        if (print_lines && view.state != shown_state)
            std::printf("%s\n", format_event_line(view).c_str());
        if (!g.quiet && !g.json) {
            std::string message = completed && !completed->second.empty() ? completed->second
                                  : final_at_start ? "it had completed before"
                                                   : "done";
            if (view.state == "seeding")
                std::printf(
                    "Job %u completed: %s; it keeps seeding (ezioctl cancel %u stops it).\n",
                    view.id, message.c_str(), view.id);
            else
                std::printf("Job %u completed: %s\n", view.id, message.c_str());
        }
        std::fflush(stdout);
        return 0;
    }
    std::fflush(stdout);
    if (gone && !view.is_final())
        throw Error(Errc::Failed, "eziod went away while following " + label);
    if (view.state == "failed" || view.state == "cancelled" || (completed && !completed->first)) {
        std::string message = !view.last_error.empty()                  ? view.last_error
                              : completed && !completed->second.empty() ? completed->second
                                                                        : label + " " + view.state;
        Errc code = view.error_name.empty()
                        ? (view.state == "cancelled" ? Errc::Cancelled : Errc::Failed)
                        : errc_from_dbus_name(view.error_name);
        throw Error(code,
                    label + " " + (view.state.empty() ? "failed" : view.state) + ": " + message);
    }
    throw Error(Errc::NotFound, label + " was removed before it finished");
}

int watch_all_jobs(Context& ctx) {
    BusClient& bus = ctx.bus();
    const GlobalOptions& g = ctx.in.global;
    std::map<std::string, JobView> jobs;
    std::map<std::string, std::pair<std::string, int>> shown;  // state, progress step
    bool gone = false;

    auto print = [&](const JobView& v, bool force) {
        if (g.json || g.quiet)
            return;
        auto& [state, step] = shown[v.path];
        const int now_step = progress_step(v.progress);
        if (force || v.state != state || (v.state == "downloading" && now_step != step)) {
            std::printf("%s\n", format_event_line(v).c_str());
            std::fflush(stdout);
        }
        state = v.state;
        step = now_step;
    };

    BusEvents events;
    events.job_added = [&](const JobSnapshot& job) {
        auto& v = jobs[job.path] = JobView::from(job);
        if (g.json) {
            auto ev = event_json("added", job.path);
            ev["Properties"] = job.properties;
            print_json_line(ev);
        }
        print(v, true);
    };
    events.job_changed = [&](const std::string& path, const nlohmann::json& changed) {
        auto it = jobs.find(path);
        if (it == jobs.end()) {
            it = jobs.emplace(path, JobView::from(JobSnapshot{path, nlohmann::json::object()}))
                     .first;
        }
        it->second.update(changed);
        if (g.json) {
            auto ev = event_json("changed", path);
            ev["Properties"] = changed;
            print_json_line(ev);
        }
        print(it->second, false);
    };
    events.job_completed = [&](const std::string& path, bool success, const std::string& message) {
        if (g.json) {
            auto ev = event_json("completed", path);
            ev["Success"] = success;
            ev["Message"] = message;
            print_json_line(ev);
        } else if (!g.quiet) {
            auto id = job_id_from_path(path).value_or(0);
            std::printf("job %u %s: %s\n", id, success ? "completed" : "did not complete",
                        message.c_str());
            std::fflush(stdout);
        }
    };
    events.job_removed = [&](const std::string& path) {
        jobs.erase(path);
        shown.erase(path);
        if (g.json) {
            print_json_line(event_json("removed", path));
        } else if (!g.quiet) {
            std::printf("job %u removed\n", job_id_from_path(path).value_or(0));
            std::fflush(stdout);
        }
    };
    events.daemon_gone = [&] { gone = true; };
    bus.subscribe(std::nullopt, events);

    for (const auto& job : bus.jobs()) {
        auto& v = jobs[job.path] = JobView::from(job);
        if (g.json) {
            auto ev = event_json("snapshot", job.path);
            ev["Properties"] = job.properties;
            print_json_line(ev);
        }
        print(v, true);
    }
    if (jobs.empty() && !g.json && !g.quiet) {
        std::printf("No jobs yet; waiting for new ones (Ctrl-C to stop).\n");
        std::fflush(stdout);
    }

    InterruptGuard interrupt;
    const auto result = bus.run_until([&] { return gone; }, interrupt.fd());
    if (result == BusClient::RunResult::Interrupted)
        return 0;
    throw Error(Errc::Failed, "eziod went away");
}

}  // namespace ezio::cli
