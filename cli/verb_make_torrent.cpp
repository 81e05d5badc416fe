// `ezioctl make-torrent SOURCE -o OUT`: runs core/torrent_maker locally; no
// daemon involved.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <CLI/CLI.hpp>

#include "cli_format.hpp"
#include "error.hpp"
#include "status_line.hpp"
#include "torrent_maker.hpp"
#include "verbs.hpp"

namespace ezio::cli {
namespace {

[[noreturn]] void write_failed(const std::string& path, int err) {
    throw Error(Errc::Failed, "cannot write " + path + ": " + std::strerror(err));
}

void write_all(int fd, const std::vector<char>& data, const std::string& path) {
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            write_failed(path, errno);
        }
        done += static_cast<std::size_t>(n);
    }
}

// Writes through a temporary file in the same directory and renames it, so
// OUT is never seen half-written and an existing OUT survives a failure.
void write_file_atomically(const std::string& path, const std::vector<char>& data) {
    namespace fs = std::filesystem;
    fs::path out(path);
    std::string tmpl = (out.parent_path().empty() ? fs::path(".") : out.parent_path()) /
                       ("." + out.filename().string() + ".XXXXXX");
    int fd = ::mkstemp(tmpl.data());
    if (fd < 0)
        write_failed(path, errno);
    try {
        const mode_t mask = ::umask(0);
        ::umask(mask);
        if (::fchmod(fd, 0666 & ~mask) != 0)
            write_failed(path, errno);
        write_all(fd, data, path);
        if (::fsync(fd) != 0)
            write_failed(path, errno);
        if (::close(fd) != 0) {
            fd = -1;
            write_failed(path, errno);
        }
        fd = -1;
        if (::rename(tmpl.c_str(), path.c_str()) != 0)
            write_failed(path, errno);
    } catch (...) {
        if (fd >= 0)
            ::close(fd);
        ::unlink(tmpl.c_str());
        throw;
    }
}

bool same_file(const std::string& a, const std::string& b) {
    struct stat sa {
    }, sb{};
    return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

const char* source_kind(TorrentSource s) {
    switch (s) {
        case TorrentSource::PartcloneInfo:
            return "partclone-info";
        case TorrentSource::BlockDevice:
            return "block-device";
        case TorrentSource::ImageFile:
            break;
    }
    return "image-file";
}

}  // namespace

void add_make_torrent_options(CLI::App& app, Invocation& in) {
    MakeTorrentArgs& m = in.make;
    app.add_option("-o,--output", m.output,
                   "Write the torrent to OUT ('-': standard output); required")
        ->type_name("OUT");
    app.add_option("--name", m.name,
                   "Torrent name, by convention the partition name (default: from SOURCE)")
        ->type_name("NAME");
    app.add_option("--tracker", m.trackers, "Announce URL, one tier each; repeatable")
        ->type_name("URL")
        ->allow_extra_args(false);
    app.add_option("--piece-size", m.piece_size,
                   "Piece size, a power of two from 16K to 128M (default: 4M up to 4 GiB, 16M "
                   "above; torrent.info: 16M, with --from about 1000 pieces, 256K to 16M)")
        ->type_name("BYTES");
    app.add_option("--from", m.data_source,
                   "torrent.info only: the partition partclone captured; its used blocks are "
                   "read, checked against torrent.info and rehashed with --piece-size")
        ->type_name("DEV");
    app.add_option("--comment", m.comment, "Comment stored in the torrent")->type_name("TEXT");
    app.add_flag("--skip-zero", m.skip_zero, "Leave all-zero chunks of an image or device out");
    app.add_option("--chunk-size", m.chunk_size, "Extent granularity of --skip-zero (default 1M)")
        ->type_name("BYTES");
    app.add_flag("--hybrid", m.hybrid, "Make a hybrid BitTorrent v1+v2 torrent");
    app.add_option("--threads", m.threads, "Hashing threads (default: one per core)")
        ->type_name("N");
    app.add_flag("--force", m.force, "Overwrite OUT if it exists");
}

int run_make_torrent(Context& ctx) {
    const MakeTorrentArgs& m = ctx.in.make;
    const GlobalOptions& g = ctx.in.global;
    const std::string& source = ctx.in.args.at(0);
    if (m.output.empty())
        throw Error(Errc::InvalidArgs, "no output file given (-o OUT)");
    const bool to_stdout = m.output == "-";
    if (!to_stdout) {
        struct stat st {};
        if (same_file(source, m.output))
            throw Error(Errc::InvalidArgs,
                        m.output + " is SOURCE itself; refusing to overwrite it");
        if (::stat(m.output.c_str(), &st) == 0 && !m.force)
            throw Error(Errc::InvalidArgs, m.output + " exists (use --force to overwrite it)");
    }

    MakeTorrentOptions options;
    options.name = m.name;
    options.trackers = m.trackers;
    options.comment = m.comment;
    options.skip_zero = m.skip_zero;
    options.hybrid = m.hybrid;
    options.data_source = m.data_source;
    if (!m.piece_size.empty())
        options.piece_size = static_cast<int>(parse_size(m.piece_size, INT_MAX));
    if (!m.chunk_size.empty())
        options.chunk_size = parse_size(m.chunk_size);
    if (!m.threads.empty())
        options.threads = static_cast<int>(parse_count(m.threads, 1024, "--threads"));

    // Progress on stderr, so that `-o -` can pipe the torrent.
    StatusLine line(stderr);
    if (!g.quiet && line.active()) {
        auto last = std::chrono::steady_clock::time_point{};
        options.progress = [&line, &source, last](std::uint64_t done, std::uint64_t total) mutable {
            const auto now = std::chrono::steady_clock::now();
            if (now - last < std::chrono::milliseconds(200) && done < total)
                return;
            last = now;
            const double fraction =
                total ? static_cast<double>(done) / static_cast<double>(total) : 0.0;
            line.show("Hashing " + source + "  " + format_bar(fraction, 32) + " " +
                      format_percent(fraction) + "  " + format_bytes(done) + "/" +
                      format_bytes(total));
        };
    }
    const MakeTorrentResult result = make_torrent(source, options);
    line.clear();

    if (to_stdout) {
        if (std::fwrite(result.torrent.data(), 1, result.torrent.size(), stdout) !=
                result.torrent.size() ||
            std::fflush(stdout) != 0)
            write_failed("standard output", errno);
    } else {
        write_file_atomically(m.output, result.torrent);
    }

    // The summary goes where it does not mix with the torrent bytes.
    std::FILE* info = to_stdout ? stderr : stdout;
    if (g.json) {
        nlohmann::json out{{"Output", m.output},
                           {"Source", source_kind(result.source)},
                           {"Name", result.name},
                           {"InfoHash", result.info_hash},
                           {"PieceSize", result.piece_size},
                           {"Pieces", result.piece_count},
                           {"Extents", result.extent_count},
                           {"TotalBytes", result.total_bytes},
                           {"SourceBytes", result.source_bytes}};
        if (!result.info_hash_v2.empty())
            out["InfoHashV2"] = result.info_hash_v2;
        std::fprintf(info, "%s\n", out.dump(2).c_str());
    } else if (!g.quiet) {
        std::fprintf(info, "Wrote %s: %s, %zu extent%s, %s in %zu pieces of %s\n",
                     to_stdout ? "torrent" : m.output.c_str(), result.name.c_str(),
                     result.extent_count, result.extent_count == 1 ? "" : "s",
                     format_bytes(result.total_bytes).c_str(), result.piece_count,
                     format_bytes(static_cast<std::uint64_t>(result.piece_size)).c_str());
        std::fprintf(info, "Info hash: %s\n", result.info_hash.c_str());
        if (!result.info_hash_v2.empty())
            std::fprintf(info, "Info hash v2: %s\n", result.info_hash_v2.c_str());
    }
    return 0;
}

}  // namespace ezio::cli
