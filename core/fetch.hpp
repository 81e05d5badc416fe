// Fetching a .torrent for ezioctl: from a local file, standard input ("-"),
// or an http://, https:// or tftp:// URL (libcurl).
//
// The bytes are returned as they are; parsing and validation are the
// daemon's job (it must not trust the client anyway). The download is
// bounded in size and time so a wrong URL cannot hang the client or fill its
// memory.
//
// Errors (ezio::Error, message names the location):
//   InvalidArgs     unsupported URL scheme, unreadable or missing local file
//   InvalidTorrent  empty, or larger than FetchOptions::max_bytes
//   Failed          network errors: cannot resolve/connect, HTTP status >= 400,
//                   TFTP error, timeout
//
// Thread-safety: fetch() may be called from several threads at once; libcurl
// is initialised once, on first use.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ezio {

struct FetchOptions {
    // A .torrent of a multi-terabyte image with small pieces stays far below
    // this; the daemon refuses more than 256 MiB anyway.
    std::size_t max_bytes = std::size_t{256} << 20;
    // Time to establish the connection (DNS + TCP/TLS, or the first TFTP
    // answer).
    std::chrono::seconds connect_timeout{15};
    // Abort when the transfer stays below 1 byte/s for this long...
    std::chrono::seconds stall_timeout{30};
    // ...or takes longer than this in total (0 = no limit).
    std::chrono::seconds total_timeout{600};
};

// True for the URL schemes fetch() downloads (http, https, tftp; case-
// insensitive). Anything else is a local path.
bool is_fetch_url(std::string_view location);

// Reads `location` completely. "-" reads standard input.
std::vector<char> fetch(const std::string& location, const FetchOptions& options = {});

}  // namespace ezio
