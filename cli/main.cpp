// ezioctl: the command-line client of eziod. Parses the command line with
// the verb table (verbs.cpp), runs one verb, and turns every failure into one
// line on stderr, "Failed to <verb>: <message>", and the exit status that
// ezio::exit_code() documents (see ezioctl(1), EXIT STATUS).
#include <clocale>
#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "error.hpp"
#include "verbs.hpp"

namespace {

using ezio::Errc;
using ezio::cli::Invocation;
using ezio::cli::Verb;

int usage_error(const std::string& failure, const std::string& message) {
    std::fprintf(stderr, "Failed to %s: %s\n", failure.c_str(), message.c_str());
    return ezio::exit_code(Errc::InvalidArgs);
}

// CLI11 messages start with a capital and may span lines; keep one line.
std::string one_line(std::string text) {
    for (auto& c : text)
        if (c == '\n')
            c = ' ';
    while (!text.empty() && text.back() == ' ')
        text.pop_back();
    return text;
}

}  // namespace

int main(int argc, char** argv) {
    std::setlocale(LC_ALL, "");
    Invocation in;
    CLI::App app{"ezioctl", "ezioctl"};
    // Help and version are ours: the verb table writes the help text.
    app.set_help_flag();
    app.fallthrough();
    bool help = false;
    bool version = false;
    app.add_flag("-h,--help", help, "Show this help, or the help of VERB, and exit");
    app.add_flag("--version", version, "Show the version of ezioctl and exit");
    app.add_flag("--json", in.global.json,
                 "Print machine-readable JSON instead of tables and text");
    app.add_flag("--session", in.global.session,
                 "Talk to eziod on the session bus, not the system bus");
    app.add_flag("-q,--quiet", in.global.quiet, "Print no progress and no informational messages");
    app.require_subcommand(0, 1);

    for (const Verb& verb : ezio::cli::verbs()) {
        CLI::App* sub = app.add_subcommand(std::string(verb.name), std::string(verb.summary));
        if (verb.add_options)
            verb.add_options(*sub, in);
        sub->add_option("args", in.args, "Arguments")->expected(0, -1);
    }
    in.app = &app;

    const Verb* verb = nullptr;
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // Name the verb if CLI11 got that far.
        for (const CLI::App* sub : app.get_subcommands())
            if (auto* v = ezio::cli::find_verb(sub->get_name()))
                verb = v;
        // Global options take no values, so the first word that is not an
        // option is the verb.
        if (!verb) {
            for (int i = 1; i < argc; ++i) {
                const std::string word = argv[i];
                if (word == "--")
                    break;
                if (word.starts_with('-'))
                    continue;
                return usage_error("parse arguments",
                                   "unknown verb '" + word + "' (see 'ezioctl --help')");
            }
        }
        return usage_error(verb ? std::string(verb->failure) : "parse arguments",
                           one_line(e.what()));
    }
    for (const CLI::App* sub : app.get_subcommands())
        verb = ezio::cli::find_verb(sub->get_name());

    if (help) {
        std::fputs(
            verb ? ezio::cli::verb_help(*verb, app).c_str() : ezio::cli::main_help(app).c_str(),
            stdout);
        return 0;
    }
    if (version) {
        std::printf("ezioctl %s\n", EZIO_VERSION);
        return 0;
    }
    if (!verb) {
        return usage_error("parse arguments", "no verb given (see 'ezioctl --help')");
    }

    const int count = static_cast<int>(in.args.size());
    if (count < verb->min_args || count > verb->max_args) {
        return usage_error(std::string(verb->failure),
                           (count < verb->min_args ? "missing arguments" : "too many arguments") +
                               std::string(", usage: ezioctl ") + std::string(verb->name) +
                               (verb->synopsis.empty() ? "" : " " + std::string(verb->synopsis)));
    }

    ezio::cli::Context ctx(in);
    try {
        return verb->run(ctx);
    } catch (const ezio::Error& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "Failed to %s: %s\n", std::string(verb->failure).c_str(), e.what());
        return ezio::exit_code(e.code());
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "Failed to %s: %s\n", std::string(verb->failure).c_str(), e.what());
        return ezio::exit_code(Errc::Failed);
    }
}
