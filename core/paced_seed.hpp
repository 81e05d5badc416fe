// Paced seeding: a libtorrent torrent plugin that makes a seed send every
// piece once before it sends any piece twice, in a swarm of ezio receivers.
//
// Why: when one seed images many machines, its upload is what limits the
// whole deployment (every receiver can pass on what it holds, but new data
// enters the swarm only through the seed). Plain BitTorrent lets every
// receiver ask the seed for any piece; receivers that do not yet see each
// other's pieces ask it for the same ones, and the seed sends the image
// 1.3 to 1.8 times before everyone has it (bench/run.sh, 16 receivers).
//
// How: the extension handshake carries "ezio_paced" (from a seed) and
// "ezio_paced_rx" (from an ezio receiver). Between such a pair:
// - the receiver ignores the seed's HAVE_ALL (or full bitfield), so its
//   libtorrent believes the seed has nothing;
// - the seed then tells it, with ordinary HAVE messages, a few pieces at a
//   time: pieces nobody has been shown yet, each to one receiver, enough to
//   keep that receiver's requests going (window_seconds of its download
//   rate from the seed, at least min_window pieces). Each HAVE the receiver
//   sends back opens the window again. The receivers take everything else
//   from each other, as usual.
// - Once every piece has been shown to someone, a piece shown long ago
//   (2 * window_seconds + 2 s) that no receiver holds yet is shown to
//   another receiver too.
// - A receiver that lacks pieces and has got none for that long cannot get
//   them from the others (client isolation on the switch, a firewall,
//   connection limits): from then on the seed also shows it pieces that
//   other receivers hold, the rarest first, so it never waits forever.
// - The seed introduces each new paced receiver to the others it paces (an
//   "ezio_peers" extension message with their listen endpoints, in peer
//   exchange's compact format); the newcomer connects to them. Receivers
//   given only the seed otherwise wait for libtorrent's peer exchange,
//   which sends one message per 3 s per process: 16 receivers formed a
//   mesh after 1.3 s, the seed alone feeding them meanwhile.
// A receiver that goes away gives its shown-but-not-received pieces back.
// A receiver also lets each peer queue only relay_requests block requests
// with it (the extension handshake's "reqq"): a piece it just got is then
// passed on after a few queued requests instead of a second or more, and a
// receiver that fell behind gets its share of every relay's upload instead
// of waiting behind the full queues of the others (bench, 16 receivers on
// 100 Mbit/s: 15.9 s mean with 32 or 16 requests, 15.3 s with 8, 15.0 s
// with 4, and 2 starved a receiver now and then; 4 receivers earlier:
// 15.4 s with libtorrent's own queue, 14.4 s with 32).
// A receiver asks its pacing seed for seed_request_blocks blocks at a time
// when pieces are larger than that: libtorrent picks a block for every block
// that arrives, and each pick walks every block of the piece being
// requested, which with partclone's 16 MiB pieces was 44% of a receiver's
// network thread in a 1-on-1 deploy over loopback (perf).
// Any other peer (another client, an older ezio, an ezio that is not a
// seed) sees plain BitTorrent: the flags are only acted on in pairs.
//
// Threading: libtorrent calls the plugin on its network thread only.
#pragma once

#include <memory>

#include <libtorrent/extensions.hpp>
#include <libtorrent/torrent_handle.hpp>
#include <libtorrent/torrent_info.hpp>

#include "tcp_nodelay.hpp"

namespace ezio {

struct PacingConfig {
    bool enabled = true;
    // How much of a receiver's download from the seed is shown ahead: the
    // seed's send buffer and the receiver's request queue each hold about
    // a second of data at LAN rates.
    double window_seconds = 3.0;
    int min_window = 4;  // pieces
    // Block requests a peer may queue with a receiver (64 KiB: a receiver
    // downloads from many peers at once, and 64 KiB per round trip of a
    // request is still 300 MB/s from each at a LAN's 0.2 ms).
    int relay_requests = 4;
    // Blocks of 16 KiB a paced receiver requests from its seed per pick,
    // for pieces of more blocks than this (0: block by block). 64 is 1 MiB,
    // the seed's read and the receiver's write unit. 1-on-1 bench, 16 MiB
    // pieces: the receiver's network thread used 0.56 CPU s per GiB instead
    // of 0.78, the deploy took 1.53 s instead of 1.64 (32 and 128 blocks
    // did the same; 1024, whole pieces, less well).
    int seed_request_blocks = 64;
};

// For add_torrent_params::extensions, one per torrent. The torrent paces
// its receivers while it is a seed (libtorrent state seeding) and lets
// seeds pace it otherwise.
// Both ends of a paced connection turn Nagle's algorithm off (see
// tcp_nodelay.hpp); failures to do so go to `nodelay_report`, if given.
std::shared_ptr<lt::torrent_plugin> make_paced_plugin(
    lt::torrent_handle handle, std::shared_ptr<const lt::torrent_info> torrent, PacingConfig config,
    std::shared_ptr<NoDelayReport> nodelay_report = nullptr);

}  // namespace ezio
