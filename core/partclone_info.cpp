#include "partclone_info.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "error.hpp"

namespace ezio {
namespace {

constexpr std::uint64_t kMax64 = ~std::uint64_t{0};

int hex_digit(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

// Hex without prefix; leading zeros allowed (partclone pads to 32 digits), so
// the length is bounded only to keep line numbers in messages meaningful.
std::optional<std::uint64_t> parse_hex(std::string_view s) {
    if (s.empty() || s.size() > 64)
        return std::nullopt;
    std::uint64_t value = 0;
    for (char c : s) {
        const int d = hex_digit(c);
        if (d < 0)
            return std::nullopt;
        if (value > (kMax64 >> 4))
            return std::nullopt;
        value = (value << 4) | static_cast<std::uint64_t>(d);
    }
    return value;
}

std::optional<std::uint64_t> parse_decimal(std::string_view s) {
    if (s.empty() || s.size() > 20)
        return std::nullopt;
    std::uint64_t value = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return std::nullopt;
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (value > (kMax64 - d) / 10)
            return std::nullopt;
        value = value * 10 + d;
    }
    return value;
}

std::string hex64(std::uint64_t v) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out = "0x";
    bool started = false;
    for (int shift = 60; shift >= 0; shift -= 4) {
        const auto d = static_cast<unsigned>((v >> shift) & 0xf);
        if (d != 0 || started || shift == 0) {
            out += kDigits[d];
            started = true;
        }
    }
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

[[noreturn]] void fail(std::size_t line, const std::string& what) {
    throw Error(Errc::InvalidTorrent, "torrent.info line " + std::to_string(line) + ": " + what);
}

// A printable, bounded excerpt of hostile text for error messages.
std::string quote(std::string_view s) {
    std::string out = "\"";
    for (std::size_t i = 0; i < s.size() && i < 48; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
    }
    if (s.size() > 48)
        out += "...";
    return out + "\"";
}

}  // namespace

std::uint64_t PartcloneInfo::total_length() const {
    std::uint64_t total = 0;
    // The parser guarantees the extents do not overlap, so the sum cannot
    // exceed 2^64; saturate anyway for hand-built values.
    for (const auto& e : extents)
        total = e.length > kMax64 - total ? kMax64 : total + e.length;
    return total;
}

PartcloneInfo parse_partclone_info(std::string_view text, const PartcloneInfoLimits& limits) {
    PartcloneInfo info;
    bool have_block_size = false;
    bool have_blocks_total = false;
    // Byte size of the partition, once both header lines are known; extents
    // must lie inside it.
    std::optional<std::uint64_t> device_bytes;
    // An offset line waiting for its length line, and where it was.
    std::optional<PartcloneExtent> pending;
    std::size_t pending_line = 0;
    std::uint64_t prev_end = 0;

    std::size_t line_no = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
        const std::size_t nl = text.find('\n', pos);
        const std::size_t end = nl == std::string_view::npos ? text.size() : nl;
        const std::string_view raw = text.substr(pos, end - pos);
        pos = end + 1;
        ++line_no;

        const std::string_view line = trim(raw);
        if (line.empty())
            continue;
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos)
            fail(line_no, "expected \"key: value\", got " + quote(line));
        const std::string_view key = line.substr(0, colon);
        const std::string_view value = trim(line.substr(colon + 1));

        if (key == "block_size" || key == "blocks_total") {
            const bool is_bs = key == "block_size";
            bool& seen = is_bs ? have_block_size : have_blocks_total;
            // Both header lines precede every extent (an offset line needs
            // them), so a repeat is the only way to see one late.
            if (seen)
                fail(line_no, std::string(key) + " appears twice");
            const auto v = parse_decimal(value);
            if (!v)
                fail(line_no, std::string(key) + " is not a decimal number: " + quote(value));
            if (is_bs) {
                // Any file system block size partclone supports is a power of
                // two between 512 bytes and a few MiB.
                if (*v < 512 || *v > (std::uint64_t{1} << 26) || (*v & (*v - 1)) != 0)
                    fail(line_no, "block_size " + std::to_string(*v) +
                                      " is not a power of two between 512 and 64 MiB");
                info.block_size = *v;
            } else {
                info.blocks_total = *v;
            }
            seen = true;
            if (have_block_size && have_blocks_total) {
                if (info.blocks_total != 0 && info.block_size > kMax64 / info.blocks_total)
                    fail(line_no, "block_size * blocks_total overflows 64 bits");
                device_bytes = info.block_size * info.blocks_total;
            }
        } else if (key == "offset") {
            if (!device_bytes)
                fail(line_no, "extent before the block_size and blocks_total lines");
            if (pending)
                fail(pending_line, "offset without a length line (next offset on line " +
                                       std::to_string(line_no) + ")");
            const auto v = parse_hex(value);
            if (!v)
                fail(line_no, "offset is not a 64-bit hex number: " + quote(value));
            if (info.extents.size() >= limits.max_extents)
                fail(line_no, "more than " + std::to_string(limits.max_extents) + " extents");
            if (*v < prev_end)
                fail(line_no, "extent at " + hex64(*v) +
                                  " overlaps or precedes the previous extent, which ends at " +
                                  hex64(prev_end));
            pending = PartcloneExtent{*v, 0, std::string(value)};
            pending_line = line_no;
        } else if (key == "length") {
            if (!pending)
                fail(line_no, "length without a preceding offset line");
            const auto v = parse_hex(value);
            if (!v)
                fail(line_no, "length is not a 64-bit hex number: " + quote(value));
            if (*v == 0)
                fail(line_no, "extent at " + hex64(pending->offset) + " has length 0");
            if (*v > kMax64 - pending->offset)
                fail(line_no, "extent at " + hex64(pending->offset) + " of length " + hex64(*v) +
                                  " overflows 64 bits");
            const std::uint64_t extent_end = pending->offset + *v;
            if (extent_end > *device_bytes)
                fail(line_no, "extent " + hex64(pending->offset) + ".." + hex64(extent_end) +
                                  " ends beyond the partition (block_size * blocks_total = " +
                                  hex64(*device_bytes) + ")");
            pending->length = *v;
            prev_end = extent_end;
            info.extents.push_back(std::move(*pending));
            pending.reset();
        } else if (key == "sha1") {
            if (value.size() != 40)
                fail(line_no, "sha1 is not 40 hex digits: " + quote(value));
            if (info.pieces.size() >= limits.max_pieces)
                fail(line_no, "more than " + std::to_string(limits.max_pieces) + " sha1 lines");
            Sha1Digest digest{};
            for (std::size_t i = 0; i < digest.size(); ++i) {
                const int hi = hex_digit(value[2 * i]);
                const int lo = hex_digit(value[2 * i + 1]);
                if (hi < 0 || lo < 0)
                    fail(line_no, "sha1 is not 40 hex digits: " + quote(value));
                digest[i] = static_cast<unsigned char>(hi << 4 | lo);
            }
            info.pieces.push_back(digest);
        } else {
            fail(line_no, "unknown key " + quote(key));
        }
    }

    if (pending)
        fail(pending_line, "offset without a length line (end of file)");
    if (!have_block_size)
        fail(line_no, "no block_size line");
    if (!have_blocks_total)
        fail(line_no, "no blocks_total line");
    if (info.extents.empty())
        fail(line_no, "no extents (offset/length lines)");
    return info;
}

PartcloneInfo read_partclone_info(const std::string& path, const PartcloneInfoLimits& limits) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw Error(Errc::InvalidArgs, "cannot open " + path + ": " + std::strerror(errno));
    // Closes on every path out; a close error on a read-only fd loses nothing.
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};

    struct stat st {};
    if (::fstat(fd, &st) != 0)
        throw Error(Errc::InvalidArgs, "cannot stat " + path + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode))
        throw Error(Errc::InvalidArgs, path + " is not a regular file");
    if (static_cast<std::uint64_t>(st.st_size) > limits.max_file_bytes)
        throw Error(Errc::InvalidArgs, path + " is larger than " +
                                           std::to_string(limits.max_file_bytes) +
                                           " bytes; not a torrent.info");

    std::string text(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::read(fd, text.data() + done, text.size() - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw Error(Errc::InvalidArgs, "cannot read " + path + ": " + std::strerror(errno));
        }
        if (n == 0)
            break;  // the file shrank while we read it; parse what is there
        done += static_cast<std::size_t>(n);
    }
    text.resize(done);

    try {
        return parse_partclone_info(text, limits);
    } catch (const Error& e) {
        throw Error(e.code(), path + ": " + e.what());
    }
}

bool looks_like_partclone_info(std::string_view head) {
    constexpr std::string_view kKey = "block_size:";
    if (head.substr(0, kKey.size()) != kKey)
        return false;
    std::string_view rest = head.substr(kKey.size());
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t'))
        rest.remove_prefix(1);
    std::size_t digits = 0;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9')
        ++digits;
    if (digits == 0 || digits > 20)
        return false;
    // The number must be complete within `head` (end of line) unless `head`
    // was cut right after it.
    return digits == rest.size() || rest[digits] == '\n' || rest[digits] == '\r';
}

}  // namespace ezio
