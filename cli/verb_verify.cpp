// `ezioctl verify TORRENT TARGET`: checks a disk (or an image file) against a
// torrent's SHA-1 piece hashes, without the swarm and without eziod.
//
// Why it runs here and not as an eziod job: it only reads, needs no peers,
// no state and no resume, and must also work where eziod does not run (a
// rescue system, a machine whose deployment is being examined, a seed
// source before it is served). Reading the device needs the same rights as
// reading it with dd (root, or group disk), which is exactly the check a
// person expects. The deploy option `verify` is the job-side counterpart:
// eziod re-reads the target itself before it reports Completed.
//
// Output: a progress line on a terminal (stderr), then one summary line on
// stdout; with --json one object on stdout. A mismatch or a read error also
// ends with the usual one "Failed to verify: ..." line on stderr; exit
// statuses: 0 every piece matches, 1 some piece differs, 5 read error,
// 2 bad torrent, 4 bad target, 130 interrupted.
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_format.hpp"
#include "error.hpp"
#include "fetch.hpp"
#include "interrupt_guard.hpp"
#include "job_follower.hpp"
#include "layout.hpp"
#include "status_line.hpp"
#include "target.hpp"
#include "target_path.hpp"
#include "verbs.hpp"
#include "verify.hpp"

namespace ezio::cli {
namespace {

bool readable(int fd) {
    pollfd pfd{fd, POLLIN, 0};
    return ::poll(&pfd, 1, 0) > 0;
}

std::string hex_info_hash(const lt::torrent_info& ti) {
    const auto& ih = ti.info_hashes();
    std::ostringstream out;
    if (ih.has_v1())
        out << ih.v1;
    else
        out << ih.v2;
    return out.str();
}

// "3, 17, 42" (at most `limit` of them, then ", ...").
std::string piece_list(const std::vector<int>& pieces, std::size_t limit) {
    std::string out;
    for (std::size_t i = 0; i < pieces.size() && i < limit; ++i)
        out += (i ? ", " : "") + std::to_string(pieces[i]);
    if (pieces.size() > limit)
        out += ", ...";
    return out;
}

}  // namespace

int run_verify(Context& ctx) {
    const GlobalOptions& g = ctx.in.global;
    // The target first: a typo there costs nothing to find, a download may.
    const std::string path = resolve_target_path(ctx.in.args.at(1), TargetKind::DeviceOrFile);
    const std::vector<char> bytes = fetch(ctx.in.args.at(0));
    const ImageTorrent torrent = load_image_torrent(bytes);
    const auto target = Target::open(path, Target::Access::ReadOnly, true);
    torrent.layout.check_fits(target->size(), path);

    const lt::torrent_info& ti = *torrent.info;
    const auto total = static_cast<std::uint64_t>(ti.total_size());
    StatusLine line(stderr);
    InterruptGuard interrupt;
    std::atomic<bool> cancel{false};
    auto last = std::chrono::steady_clock::time_point{};
    const auto started = std::chrono::steady_clock::now();
    const VerifyResult result = verify_image(
        *target, torrent,
        [&](std::uint64_t done) {
            if (readable(interrupt.fd()))
                cancel = true;
            const auto now = std::chrono::steady_clock::now();
            if (g.quiet || !line.active() || (now - last < std::chrono::milliseconds(200)))
                return;
            last = now;
            const double fraction =
                total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
            line.show("Verifying " + path + "  " + format_bar(fraction, 32) + " " +
                      format_percent(fraction) + "  " + format_bytes(done) + "/" +
                      format_bytes(total));
        },
        &cancel);
    line.clear();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    if ((cancel || interrupt.signal()) && result.bytes_checked < total) {
        if (!g.quiet)
            std::fprintf(stderr, "Stopped verifying %s after %s of %s.\n", path.c_str(),
                         format_bytes(result.bytes_checked).c_str(), format_bytes(total).c_str());
        return kInterruptedExit;
    }

    const bool match = result.io_error == 0 && result.bad_pieces.empty();
    if (g.json) {
        nlohmann::json out{{"Target", path},
                           {"Name", ti.name()},
                           {"InfoHash", hex_info_hash(ti)},
                           {"Pieces", ti.num_pieces()},
                           {"BytesTotal", total},
                           {"BytesChecked", result.bytes_checked},
                           {"BadPieces", result.bad_pieces},
                           {"Match", match}};
        if (result.io_error)
            out["IoError"] = std::strerror(result.io_error);
        std::printf("%s\n", out.dump(2).c_str());
        std::fflush(stdout);
    }
    if (result.io_error)
        throw Error(Errc::IoError, std::string(result.io_error_op) + " " + path + " failed after " +
                                       format_bytes(result.bytes_checked) + ": " +
                                       std::strerror(result.io_error));
    if (!result.bad_pieces.empty())
        throw Error(Errc::Failed, std::to_string(result.bad_pieces.size()) + " of " +
                                      std::to_string(ti.num_pieces()) + " pieces on " + path +
                                      " do not match the torrent (piece " +
                                      piece_list(result.bad_pieces, 8) + ")");
    if (!g.json && !g.quiet)
        std::printf("Verified %s on %s: %d pieces, %s, all match (%.1f s).\n", ti.name().c_str(),
                    path.c_str(), ti.num_pieces(), format_bytes(total).c_str(), seconds);
    return 0;
}

}  // namespace ezio::cli
