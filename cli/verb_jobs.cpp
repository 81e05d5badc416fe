// The verbs that talk to eziod: deploy, seed, jobs, status, watch, pause,
// resume, cancel, version.
#include <cstdio>

#include <CLI/CLI.hpp>

#include "cli_format.hpp"
#include "error.hpp"
#include "fetch.hpp"
#include "job_follower.hpp"
#include "job_view.hpp"
#include "target_path.hpp"
#include "verbs.hpp"

namespace ezio::cli {
namespace {

void add_peer_option(CLI::App& app, JobArgs& a) {
    app.add_option("--peer", a.peers, "Also connect to this peer; repeatable")
        ->type_name("HOST:PORT")
        ->allow_extra_args(false);
}

void add_upload_options(CLI::App& app, JobArgs& a) {
    app.add_option("--max-upload-rate", a.max_upload_rate,
                   "Limit uploading to BYTES per second (K, M, G suffixes)")
        ->type_name("BYTES");
    app.add_option("--max-connections", a.max_connections,
                   "At most N peer connections for this job")
        ->type_name("N");
}

std::uint32_t rate(const std::string& text, const char* what) {
    try {
        return static_cast<std::uint32_t>(parse_size(text, UINT32_MAX));
    } catch (const Error& e) {
        throw Error(Errc::InvalidArgs, std::string(what) + ": " + e.what());
    }
}

JobRequestOptions request_options(const JobArgs& a, bool deploy) {
    JobRequestOptions o;
    for (const auto& peer : a.peers)
        o.peers.push_back(parse_peer(peer));
    if (a.verify)
        o.verify = true;
    if (deploy && !a.seed_after.empty())
        o.seed_after = seed_after_to_string(parse_seed_after(a.seed_after));
    if (!a.max_upload_rate.empty())
        o.max_upload_rate = rate(a.max_upload_rate, "--max-upload-rate");
    if (deploy && !a.max_download_rate.empty())
        o.max_download_rate = rate(a.max_download_rate, "--max-download-rate");
    if (!a.max_connections.empty())
        o.max_connections =
            static_cast<std::uint32_t>(parse_count(a.max_connections, 65535, "--max-connections"));
    if (deploy && a.sequential)
        o.sequential = true;
    if (a.force)
        o.force = true;
    if (a.file)
        o.file = true;
    return o;
}

void print_started(const Context& ctx, const std::string& path, const char* what) {
    const auto& g = ctx.in.global;
    if (g.json) {
        nlohmann::json out{{"Path", path}};
        if (auto id = job_id_from_path(path))
            out["Id"] = *id;
        std::printf("%s\n", out.dump().c_str());
    } else if (!g.quiet) {
        const auto id = job_id_from_path(path).value_or(0);
        std::printf("Started %s job %u (%s); follow it with: ezioctl watch %u\n", what, id,
                    path.c_str(), id);
    }
}

int start_job(Context& ctx, bool deploy) {
    const auto& a = ctx.in.job;
    const std::string& location = ctx.in.args[0];
    // Cheapest checks first: options, then the target, then the download.
    const JobRequestOptions options = request_options(a, deploy);
    const TargetKind kind = a.file   ? TargetKind::File
                            : deploy ? TargetKind::Device
                                     : TargetKind::DeviceOrFile;
    const std::string target = resolve_target_path(ctx.in.args[1], kind);
    const std::vector<char> torrent = fetch(location);

    BusClient& bus = ctx.bus();
    std::optional<JobFollower> follower;
    if (a.wait)
        follower.emplace(ctx, JobFollower::Mode::Wait, deploy && a.verify);
    const std::string path =
        deploy ? bus.deploy(torrent, target, options) : bus.seed(torrent, target, options);
    if (!follower) {
        print_started(ctx, path, deploy ? "deploy" : "seed");
        return 0;
    }
    return follower->follow(path);
}

std::string job_path_arg(const Context& ctx) {
    return job_object_path(parse_job_ref(ctx.in.args.at(0)));
}

std::vector<JobView> views(const std::vector<JobSnapshot>& jobs) {
    std::vector<JobView> out;
    for (const auto& j : jobs)
        out.push_back(JobView::from(j));
    return out;
}

void print_jobs(const Context& ctx, const std::vector<JobSnapshot>& jobs) {
    const auto& g = ctx.in.global;
    if (g.quiet) {
        for (const auto& j : jobs)
            std::printf("%u\n", job_id_from_path(j.path).value_or(0));
        return;
    }
    if (jobs.empty()) {
        std::printf("No jobs.\n");
        return;
    }
    std::fputs(format_jobs_table(views(jobs), true).c_str(), stdout);
    std::printf("\n%zu job%s listed.\n", jobs.size(), jobs.size() == 1 ? "" : "s");
}

}  // namespace

void add_deploy_options(CLI::App& app, Invocation& in) {
    JobArgs& a = in.job;
    app.add_flag("--wait", a.wait,
                 "Wait for the job to end, showing its progress; exit 0 only if it completed");
    add_peer_option(app, a);
    app.add_flag("--verify", a.verify,
                 "Re-read and check every piece on the target before completing");
    app.add_option("--seed-after", a.seed_after,
                   "Keep seeding after the deployment: none, forever, or a duration")
        ->type_name("none|forever|SECONDS");
    add_upload_options(app, a);
    app.add_option("--max-download-rate", a.max_download_rate,
                   "Limit downloading to BYTES per second")
        ->type_name("BYTES");
    app.add_flag("--sequential", a.sequential, "Request pieces in order");
    app.add_flag("--force", a.force, "Override refusals that may be overridden");
    app.add_flag("--file", a.file,
                 "TARGET is a regular file (created if missing), not a block device");
}

void add_seed_options(CLI::App& app, Invocation& in) {
    JobArgs& a = in.job;
    app.add_flag("--wait", a.wait, "Stay and show the seeding job until it ends");
    add_peer_option(app, a);
    app.add_flag("--verify", a.verify, "Hash SOURCE before serving it instead of trusting it");
    add_upload_options(app, a);
    app.add_flag("--force", a.force, "Override refusals that may be overridden");
    app.add_flag("--file", a.file, "SOURCE is a regular file (also detected without this option)");
}

int run_deploy(Context& ctx) {
    return start_job(ctx, true);
}

int run_seed(Context& ctx) {
    return start_job(ctx, false);
}

int run_jobs(Context& ctx) {
    const auto jobs = ctx.bus().jobs();
    if (ctx.in.global.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& j : jobs)
            out.push_back(job_json(j));
        std::printf("%s\n", out.dump(2).c_str());
        return 0;
    }
    print_jobs(ctx, jobs);
    return 0;
}

int run_status(Context& ctx) {
    const auto& g = ctx.in.global;
    if (!ctx.in.args.empty()) {
        const std::string path = job_path_arg(ctx);
        const JobSnapshot job = ctx.bus().job(path);
        if (g.json)
            std::printf("%s\n", job_json(job).dump(2).c_str());
        else
            std::fputs(format_job_status(JobView::from(job)).c_str(), stdout);
        return 0;
    }
    BusClient& bus = ctx.bus();
    const nlohmann::json manager = bus.manager_properties();
    if (g.json) {
        std::printf("%s\n", manager.dump(2).c_str());
        return 0;
    }
    const std::string version = manager.value("Version", std::string("?"));
    const auto port = manager.value("ListenPort", std::uint64_t{0});
    std::printf("eziod %s on the %s bus, BitTorrent port %llu\n\n", version.c_str(),
                g.session ? "session" : "system", static_cast<unsigned long long>(port));
    print_jobs(ctx, bus.jobs());
    return 0;
}

int run_watch(Context& ctx) {
    if (ctx.in.args.empty())
        return watch_all_jobs(ctx);
    const std::string path = job_path_arg(ctx);
    JobFollower follower(ctx, JobFollower::Mode::Watch);
    return follower.follow(path);
}

int run_pause(Context& ctx) {
    const std::string path = job_path_arg(ctx);
    ctx.bus().pause(path);
    return 0;
}

int run_resume(Context& ctx) {
    const std::string path = job_path_arg(ctx);
    ctx.bus().resume(path);
    return 0;
}

int run_cancel(Context& ctx) {
    const std::string path = job_path_arg(ctx);
    ctx.bus().cancel(path);
    return 0;
}

int run_version(Context& ctx) {
    const auto& g = ctx.in.global;
    if (!g.json) {
        std::printf("ezioctl %s\n", EZIO_VERSION);
        std::fflush(stdout);
    }
    const nlohmann::json manager = ctx.bus().manager_properties();
    const std::string daemon = manager.value("Version", std::string("unknown"));
    if (g.json)
        std::printf("%s\n",
                    nlohmann::json{{"ezioctl", EZIO_VERSION}, {"eziod", daemon}}.dump(2).c_str());
    else
        std::printf("eziod %s\n", daemon.c_str());
    return 0;
}

}  // namespace ezio::cli
