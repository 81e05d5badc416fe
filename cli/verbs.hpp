// The verb table of ezioctl. One table drives dispatch, `ezioctl --help`,
// `ezioctl help VERB`, and (through --help) the man-page and completion
// checks of the test suite: a verb or an option added here and nowhere else
// fails tests/system/test_manpage.sh.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bus_client.hpp"

namespace CLI {
class App;
}

namespace ezio::cli {

struct GlobalOptions {
    bool json = false;     // machine-readable output
    bool session = false;  // talk to eziod on the session bus
    bool quiet = false;    // no progress, no chatter
};

// deploy / seed options, as typed; validated by the verb.
struct JobArgs {
    bool wait = false;
    std::vector<std::string> peers;
    bool verify = false;
    std::string seed_after;
    std::string max_upload_rate;
    std::string max_download_rate;
    std::string max_connections;
    bool sequential = false;
    bool force = false;
    bool file = false;
};

struct MakeTorrentArgs {
    std::string output;
    std::string name;
    std::vector<std::string> trackers;
    std::string piece_size;
    std::string chunk_size;
    std::string comment;
    std::string threads;
    std::string data_source;
    bool skip_zero = false;
    bool hybrid = false;
    bool force = false;
};

// Everything the command line said. Each verb's CLI11 subcommand writes into
// its own part; only the chosen verb's part is meaningful.
struct Invocation {
    GlobalOptions global;
    std::vector<std::string> args;  // positional arguments of the verb
    JobArgs job;
    MakeTorrentArgs make;
    const CLI::App* app = nullptr;  // the parsed command line, for `help`
};

class Context {
  public:
    explicit Context(Invocation& invocation) : in(invocation) {}
    Invocation& in;
    // Connects on first use, so verbs fail argument checks before touching
    // the bus.
    BusClient& bus();

  private:
    std::unique_ptr<BusClient> bus_;
};

struct Verb {
    std::string_view name;
    std::string_view synopsis;  // positional arguments, e.g. "TORRENT TARGET"
    int min_args;
    int max_args;
    std::string_view summary;
    // "Failed to <failure>: <message>".
    std::string_view failure;
    bool needs_bus;
    // Registers the verb's own options (may be null).
    void (*add_options)(CLI::App& app, Invocation& in);
    // Runs the verb; returns the exit status or throws ezio::Error.
    int (*run)(Context& ctx);
};

std::span<const Verb> verbs();
const Verb* find_verb(std::string_view name);

// `ezioctl --help`: synopsis, every verb of the table, global options.
std::string main_help(const CLI::App& app);
// `ezioctl help VERB`: synopsis, summary and the verb's options.
std::string verb_help(const Verb& verb, const CLI::App& app);

// Verb handlers (verb_*.cpp).
void add_deploy_options(CLI::App& app, Invocation& in);
void add_seed_options(CLI::App& app, Invocation& in);
void add_make_torrent_options(CLI::App& app, Invocation& in);
int run_deploy(Context& ctx);
int run_seed(Context& ctx);
int run_jobs(Context& ctx);
int run_status(Context& ctx);
int run_watch(Context& ctx);
int run_pause(Context& ctx);
int run_resume(Context& ctx);
int run_cancel(Context& ctx);
int run_make_torrent(Context& ctx);
int run_verify(Context& ctx);
int run_version(Context& ctx);
int run_help(Context& ctx);

}  // namespace ezio::cli
