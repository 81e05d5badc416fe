#include "fetch.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>

#include "error.hpp"

namespace ezio {
namespace {

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// The scheme of "scheme://...", lower-cased; empty when `location` is not
// URL-shaped.
std::string url_scheme(std::string_view location) {
    auto sep = location.find("://");
    if (sep == std::string_view::npos || sep == 0)
        return {};
    auto scheme = location.substr(0, sep);
    if (!std::isalpha(static_cast<unsigned char>(scheme[0])))
        return {};
    for (char c : scheme)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.')
            return {};
    return lower(scheme);
}

std::string limit_text(std::size_t bytes) {
    if (bytes % (1 << 20) == 0)
        return std::to_string(bytes >> 20) + " MiB";
    return std::to_string(bytes) + " bytes";
}

[[noreturn]] void too_large(const std::string& location, std::size_t max) {
    throw Error(Errc::InvalidTorrent,
                location + ": larger than " + limit_text(max) + ", not a torrent file");
}

std::vector<char> check_not_empty(std::vector<char> data, const std::string& location) {
    if (data.empty())
        throw Error(Errc::InvalidTorrent, location + ": empty, not a torrent file");
    return data;
}

std::vector<char> read_fd(int fd, const std::string& location, std::size_t max) {
    std::vector<char> data;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw Error(Errc::InvalidArgs, "cannot read " + location + ": " + std::strerror(errno));
        }
        if (n == 0)
            break;
        if (data.size() + static_cast<std::size_t>(n) > max)
            too_large(location, max);
        data.insert(data.end(), buf, buf + n);
    }
    return data;
}

std::vector<char> fetch_local(const std::string& path, const std::string& shown, std::size_t max) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        throw Error(Errc::InvalidArgs, "cannot open " + shown + ": " + std::strerror(errno));
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        throw Error(Errc::InvalidArgs, "cannot read " + shown + ": " + std::strerror(errno));
    if (S_ISDIR(st.st_mode))
        throw Error(Errc::InvalidArgs, "cannot read " + shown + ": is a directory");
    // A block device "torrent" is a typo for the target; refuse early rather
    // than read 256 MiB of disk.
    if (S_ISBLK(st.st_mode))
        throw Error(Errc::InvalidArgs, shown + " is a block device, not a torrent file");
    if (S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) > max)
        too_large(shown, max);
    return check_not_empty(read_fd(fd, shown, max), shown);
}

void curl_init_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            throw Error(Errc::Failed, "cannot initialise libcurl");
    });
}

struct Download {
    std::vector<char> data;
    std::size_t max = 0;
    bool overflow = false;
};

std::size_t on_data(char* ptr, std::size_t size, std::size_t nmemb, void* user) {
    auto* d = static_cast<Download*>(user);
    const std::size_t n = size * nmemb;
    if (d->data.size() + n > d->max) {
        d->overflow = true;
        return 0;  // makes curl fail with CURLE_WRITE_ERROR
    }
    d->data.insert(d->data.end(), ptr, ptr + n);
    return n;
}

template <typename T>
void setopt(CURL* curl, CURLoption option, T value) {
    CURLcode rc = curl_easy_setopt(curl, option, value);
    if (rc != CURLE_OK)
        throw Error(Errc::Failed, std::string("libcurl: ") + curl_easy_strerror(rc));
}

std::vector<char> fetch_url(const std::string& url, const std::string& scheme,
                            const FetchOptions& options) {
    curl_init_once();
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> handle(curl_easy_init(),
                                                               &curl_easy_cleanup);
    if (!handle)
        throw Error(Errc::Failed, "cannot initialise libcurl");
    CURL* curl = handle.get();

    Download download;
    download.max = options.max_bytes;
    char error_text[CURL_ERROR_SIZE] = {};

    setopt(curl, CURLOPT_URL, url.c_str());
    setopt(curl, CURLOPT_ERRORBUFFER, error_text);
    setopt(curl, CURLOPT_NOSIGNAL, 1L);
    setopt(curl, CURLOPT_NOPROGRESS, 1L);
    setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https,tftp");
    // A redirect may change host but never drop to another protocol.
    setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    setopt(curl, CURLOPT_MAXREDIRS, 5L);
    setopt(curl, CURLOPT_FAILONERROR, 1L);
    setopt(curl, CURLOPT_USERAGENT, "ezioctl/" EZIO_VERSION);
    setopt(curl, CURLOPT_WRITEFUNCTION, &on_data);
    setopt(curl, CURLOPT_WRITEDATA, static_cast<void*>(&download));
    setopt(curl, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_bytes));
    setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
           static_cast<long>(options.connect_timeout.count() * 1000));
    setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options.stall_timeout.count()));
    setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options.total_timeout.count() * 1000));
    if (scheme == "tftp") {
        // The RFC 1350 default of 512-byte blocks makes a large torrent
        // needlessly slow; servers without option support fall back to 512.
        setopt(curl, CURLOPT_TFTP_BLKSIZE, 1428L);
    }

    const CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK)
        return check_not_empty(std::move(download.data), url);

    if (download.overflow || rc == CURLE_FILESIZE_EXCEEDED)
        too_large(url, options.max_bytes);
    std::string why;
    if (rc == CURLE_HTTP_RETURNED_ERROR) {
        long status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        why = "server answered HTTP " + std::to_string(status);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        why =
            std::string("timed out") + (error_text[0] ? std::string(" (") + error_text + ")" : "");
    } else {
        why = error_text[0] ? error_text : curl_easy_strerror(rc);
    }
    throw Error(Errc::Failed, "cannot download " + url + ": " + why);
}

}  // namespace

bool is_fetch_url(std::string_view location) {
    const std::string scheme = url_scheme(location);
    return scheme == "http" || scheme == "https" || scheme == "tftp";
}

std::vector<char> fetch(const std::string& location, const FetchOptions& options) {
    if (location.empty())
        throw Error(Errc::InvalidArgs, "empty torrent location");
    if (location == "-")
        return check_not_empty(read_fd(STDIN_FILENO, "standard input", options.max_bytes),
                               "standard input");
    const std::string scheme = url_scheme(location);
    if (scheme.empty())
        return fetch_local(location, location, options.max_bytes);
    if (scheme == "http" || scheme == "https" || scheme == "tftp")
        return fetch_url(location, scheme, options);
    if (scheme == "file") {
        // file:///path (RFC 8089; only the local host form).
        std::string rest = location.substr(std::strlen("file://"));
        if (rest.starts_with("localhost/"))
            rest = rest.substr(std::strlen("localhost"));
        if (!rest.starts_with('/'))
            throw Error(Errc::InvalidArgs,
                        "unsupported file URL " + location + " (use file:///PATH)");
        return fetch_local(rest, location, options.max_bytes);
    }
    throw Error(Errc::InvalidArgs, "unsupported URL scheme '" + scheme + "' in " + location +
                                       " (use http://, https://, tftp:// or a local file)");
}

}  // namespace ezio
