#include "verbs.hpp"

#include <algorithm>
#include <array>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "error.hpp"

namespace ezio::cli {

// verb_autodeploy.cpp
void add_autodeploy_options(CLI::App& app, Invocation& in);
int run_autodeploy(Context& ctx);

// verb_disks.cpp
int run_disks(Context& ctx);

namespace {

// The one verb table. Order = order in --help.
constexpr std::array kVerbs{
    Verb{"deploy", "TORRENT TARGET", 2, 2,
         "Write the image described by TORRENT onto the partition TARGET", "deploy", true,
         add_deploy_options, run_deploy},
    Verb{"seed", "TORRENT SOURCE", 2, 2, "Serve the image in SOURCE to peers", "seed", true,
         add_seed_options, run_seed},
    Verb{"jobs", "", 0, 0, "List jobs", "list jobs", true, nullptr, run_jobs},
    Verb{"disks", "", 0, 0, "List the disks and partitions eziod sees, and which may be targets",
         "list disks", true, nullptr, run_disks},
    Verb{"status", "[JOB]", 0, 1, "Show a job, or eziod and all its jobs", "show status", true,
         nullptr, run_status},
    Verb{"watch", "[JOB]", 0, 1, "Follow a job, or all jobs, until it ends or Ctrl-C", "watch",
         true, nullptr, run_watch},
    Verb{"pause", "JOB", 1, 1, "Pause a job", "pause job", true, nullptr, run_pause},
    Verb{"resume", "JOB", 1, 1, "Resume a paused job", "resume job", true, nullptr, run_resume},
    Verb{"cancel", "JOB", 1, 1, "Cancel a running job, or forget a finished one", "cancel job",
         true, nullptr, run_cancel},
    Verb{"make-torrent", "SOURCE -o OUT", 1, 1,
         "Make a .torrent from a partclone torrent.info, an image file or a block device",
         "make torrent", false, add_make_torrent_options, run_make_torrent},
    Verb{"verify", "TORRENT TARGET", 2, 2,
         "Check TARGET against the piece hashes of TORRENT, without peers or eziod", "verify",
         false, nullptr, run_verify},
    Verb{"autodeploy", "enable|disable|status ...", 1, 3,
         "Set up, switch off or show the deployment eziod makes when it starts (at boot)",
         "configure auto-deploy", false, add_autodeploy_options, run_autodeploy},
    Verb{"version", "", 0, 0, "Show the versions of ezioctl and eziod", "query version", true,
         nullptr, run_version},
    Verb{"help", "[VERB]", 0, 1, "Show help for ezioctl or one verb", "show help", false, nullptr,
         run_help},
};

std::string option_label(const CLI::Option& opt) {
    std::string label;
    for (const auto& s : opt.get_snames())
        label += (label.empty() ? "-" : ", -") + s;
    for (const auto& l : opt.get_lnames())
        label += (label.empty() ? "--" : ", --") + l;
    if (opt.get_type_size_max() > 0)
        label += " " + opt.get_type_name();
    return label;
}

std::string options_block(const CLI::App& app) {
    std::vector<std::pair<std::string, std::string>> rows;
    for (const CLI::Option* opt : app.get_options()) {
        if (!opt->nonpositional())
            continue;
        rows.emplace_back(option_label(*opt), opt->get_description());
    }
    std::size_t width = 0;
    for (const auto& [label, _] : rows)
        width = std::max(width, label.size());
    std::string out;
    for (const auto& [label, text] : rows)
        out += "  " + label + std::string(width - label.size() + 2, ' ') + text + "\n";
    return out;
}

}  // namespace

std::span<const Verb> verbs() {
    return kVerbs;
}

const Verb* find_verb(std::string_view name) {
    for (const auto& v : kVerbs)
        if (v.name == name)
            return &v;
    return nullptr;
}

BusClient& Context::bus() {
    if (!bus_)
        bus_ = std::make_unique<BusClient>(in.global.session ? BusClient::Bus::Session
                                                             : BusClient::Bus::System);
    return *bus_;
}

std::string main_help(const CLI::App& app) {
    std::string out =
        "Usage: ezioctl [OPTIONS] VERB [ARGS...]\n\n"
        "Deploy partition images to many machines at once with BitTorrent, through eziod.\n\n"
        "Verbs:\n";
    std::size_t width = 0;
    for (const auto& v : kVerbs)
        width = std::max(width, v.name.size() + (v.synopsis.empty() ? 0 : 1 + v.synopsis.size()));
    for (const auto& v : kVerbs) {
        std::string head(v.name);
        if (!v.synopsis.empty())
            head += " " + std::string(v.synopsis);
        out +=
            "  " + head + std::string(width - head.size() + 2, ' ') + std::string(v.summary) + "\n";
    }
    out += "\nOptions:\n" + options_block(app);
    out +=
        "\nJOB is a job number or its object path /org/ezio/Ezio1/job/N.\n"
        "See 'ezioctl help VERB' for the options of a verb, and ezioctl(1).\n";
    return out;
}

std::string verb_help(const Verb& verb, const CLI::App& app) {
    std::string out = "Usage: ezioctl [OPTIONS] " + std::string(verb.name);
    if (!verb.synopsis.empty())
        out += " " + std::string(verb.synopsis);
    out += "\n\n" + std::string(verb.summary) + ".\n";
    if (!verb.needs_bus)
        out += "Works without eziod.\n";
    const CLI::App* sub = nullptr;
    try {
        sub = app.get_subcommand(std::string(verb.name));
    } catch (const CLI::OptionNotFound&) {
    }
    if (sub) {
        const std::string block = options_block(*sub);
        if (!block.empty())
            out += "\nOptions:\n" + block;
    }
    out += "\nGlobal options: see 'ezioctl --help'.\n";
    return out;
}

int run_help(Context& ctx) {
    const CLI::App& app = *ctx.in.app;
    if (ctx.in.args.empty()) {
        std::fputs(main_help(app).c_str(), stdout);
        return 0;
    }
    const Verb* verb = find_verb(ctx.in.args[0]);
    if (!verb)
        throw Error(Errc::InvalidArgs, "unknown verb '" + ctx.in.args[0] + "'");
    std::fputs(verb_help(*verb, app).c_str(), stdout);
    return 0;
}

}  // namespace ezio::cli
