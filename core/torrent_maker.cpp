#include "torrent_maker.hpp"

#include <fcntl.h>
#include <linux/fs.h>  // BLKGETSIZE64
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <optional>
#include <thread>

#include <libtorrent/bencode.hpp>
#include <libtorrent/create_torrent.hpp>
#include <libtorrent/entry.hpp>
#include <libtorrent/file_storage.hpp>
#include <libtorrent/hasher.hpp>

#include "error.hpp"
#include "hash_pool.hpp"
#include "layout.hpp"
#include "mapped_range.hpp"

namespace ezio {
namespace {

constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = 1024 * kKiB;
constexpr std::uint64_t kGiB = 1024 * kMiB;
constexpr std::uint64_t kMinPiece = 16 * kKiB;  // BitTorrent block; v2 leaf size
// libtorrent keeps piece sizes in an int; 128 MiB is far above any useful
// value and keeps a piece buffer per thread affordable.
constexpr std::uint64_t kMaxPiece = 128 * kMiB;
constexpr std::uint64_t kMinChunk = 4 * kKiB;
// Memory for piece buffers in flight; bounds buffers * piece size.
constexpr std::uint64_t kBufferBudget = 512 * kMiB;

bool is_pow2(std::uint64_t v) {
    return v != 0 && (v & (v - 1)) == 0;
}

std::uint64_t next_pow2(std::uint64_t v) {
    std::uint64_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

// Owns a file descriptor; close errors on a read-only descriptor lose no
// data, so they are not reported.
class Fd {
  public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0)
            ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

  private:
    int fd_;
};

std::string errno_text() {
    return std::strerror(errno);
}

void check_name(const std::string& name) {
    if (name.empty())
        throw Error(Errc::InvalidArgs, "torrent name is empty");
    if (name.size() > 255)
        throw Error(Errc::InvalidArgs, "torrent name is longer than 255 bytes");
    if (name == "." || name == "..")
        throw Error(Errc::InvalidArgs, "torrent name may not be \"" + name + "\"");
    for (char c : name) {
        // The name becomes a directory on whoever downloads the torrent.
        if (c == '/' || c == '\\' || static_cast<unsigned char>(c) < 0x20)
            throw Error(Errc::InvalidArgs,
                        "torrent name \"" + name + "\" contains '/', '\\' or a control character");
    }
}

void check_common(const MakeTorrentOptions& o) {
    check_name(o.name);
    for (const auto& t : o.trackers) {
        if (t.empty())
            throw Error(Errc::InvalidArgs, "empty tracker URL");
        for (char c : t)
            if (static_cast<unsigned char>(c) <= 0x20)
                throw Error(Errc::InvalidArgs,
                            "tracker URL \"" + t + "\" contains whitespace or a control character");
    }
    if (o.creation_date < 0)
        throw Error(Errc::InvalidArgs, "negative creation date");
}

struct Extent {
    std::string file_name;  // last path component: the offset in hex
    std::uint64_t length;
};

std::string hex32(std::uint64_t v) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out(32, '0');
    for (int i = 31; i >= 0 && v != 0; --i, v >>= 4)
        out[static_cast<std::size_t>(i)] = kDigits[v & 0xf];
    return out;
}

std::string to_hex(const char* data, std::size_t n) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * n);
    for (std::size_t i = 0; i < n; ++i) {
        const auto b = static_cast<unsigned char>(data[i]);
        out += kDigits[b >> 4];
        out += kDigits[b & 0xf];
    }
    return out;
}

// Builds and bencodes the torrent. `v2` is empty for v1-only torrents;
// otherwise it holds one merkle piece root per v1 piece, the pieces of each
// extent consecutive (hybrid pieces never span extents).
MakeTorrentResult generate(const std::string& name, const std::vector<Extent>& extents,
                           int piece_size, const std::vector<lt::sha1_hash>& v1,
                           const std::vector<lt::sha256_hash>& v2, const MakeTorrentOptions& o,
                           Errc count_mismatch, const std::string& source_desc) {
    const bool hybrid = !v2.empty();
    lt::file_storage fs;
    std::uint64_t total = 0;
    for (const auto& e : extents) {
        lt::error_code ec;
        fs.add_file(ec, name + "/" + e.file_name, static_cast<std::int64_t>(e.length));
        if (ec)
            throw Error(Errc::InvalidArgs, "cannot add extent " + e.file_name + " of " +
                                               std::to_string(e.length) +
                                               " bytes: " + ec.message());
        total += e.length;
    }

    try {
        // v1_only without canonical_files keeps our file order and adds no
        // pad files, which is what partclone's SHA-1s (and EZIO) expect.
        // Hybrid needs v2's canonical layout: pad files after every extent.
        lt::create_torrent ct(fs, piece_size,
                              hybrid ? lt::create_flags_t{} : lt::create_torrent::v1_only);

        if (static_cast<std::size_t>(ct.num_pieces()) != v1.size())
            throw Error(count_mismatch, source_desc + " has " + std::to_string(v1.size()) +
                                            " piece hashes, but " + std::to_string(extents.size()) +
                                            " extents totalling " + std::to_string(total) +
                                            " bytes make " + std::to_string(ct.num_pieces()) +
                                            " pieces of " + std::to_string(piece_size) + " bytes");
        for (std::size_t i = 0; i < v1.size(); ++i)
            ct.set_hash(lt::piece_index_t{static_cast<int>(i)}, v1[i]);

        if (hybrid) {
            // Canonicalising must not have reordered our extents (their names
            // are fixed-width hex in ascending order, so sorting keeps them).
            std::size_t next_extent = 0;
            std::size_t piece = 0;
            for (const auto f : ct.file_range()) {
                if (ct.files().pad_file_at(f))
                    continue;
                if (next_extent >= extents.size() ||
                    ct.files().file_name(f) != extents[next_extent].file_name)
                    throw Error(Errc::Failed,
                                "libtorrent reordered the extents of a hybrid torrent");
                const auto pieces =
                    (extents[next_extent].length + static_cast<std::uint64_t>(piece_size) - 1) /
                    static_cast<std::uint64_t>(piece_size);
                for (std::uint64_t k = 0; k < pieces; ++k)
                    ct.set_hash2(f, static_cast<int>(k), v2.at(piece++));
                ++next_extent;
            }
            if (piece != v2.size() || next_extent != extents.size())
                throw Error(Errc::Failed, "hybrid piece layout does not match libtorrent's");
        }

        for (std::size_t i = 0; i < o.trackers.size(); ++i)
            ct.add_tracker(o.trackers[i], static_cast<int>(i));
        if (!o.comment.empty())
            ct.set_comment(o.comment.c_str());
        if (!o.creator.empty())
            ct.set_creator(o.creator.c_str());
        ct.set_creation_date(static_cast<std::time_t>(o.creation_date));

        lt::entry e = ct.generate();
        MakeTorrentResult r;
        lt::bencode(std::back_inserter(r.torrent), e);

        std::vector<char> info;
        lt::bencode(std::back_inserter(info), e["info"]);
        const auto h1 = lt::hasher(info.data(), static_cast<int>(info.size())).final();
        r.info_hash = to_hex(h1.data(), h1.size());
        if (hybrid) {
            const auto h2 = lt::hasher256(info.data(), static_cast<int>(info.size())).final();
            r.info_hash_v2 = to_hex(h2.data(), h2.size());
        }
        r.name = name;
        r.piece_size = piece_size;
        r.piece_count = v1.size();
        r.extent_count = extents.size();
        r.total_bytes = total;
        return r;
    } catch (const lt::system_error& e) {
        // create_torrent and generate() report bad layouts this way.
        throw Error(Errc::Failed, "cannot create torrent: " + std::string(e.what()));
    }
}

bool all_zero(const char* p, std::size_t n) {
    std::size_t i = 0;
    // 64 bytes at a time, OR-ed together: the compiler turns this into wide
    // vector loads, fast enough that the check costs far less than hashing.
    for (; i + 64 <= n; i += 64) {
        std::uint64_t w[8];
        std::memcpy(w, p + i, sizeof w);
        if ((w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) != 0)
            return false;
    }
    for (; i < n; ++i)
        if (p[i] != 0)
            return false;
    return true;
}

// Reads exactly `len` bytes at `off`, looping over short reads.
void read_full(int fd, char* buf, std::size_t len, std::uint64_t off, const std::string& path) {
    while (len > 0) {
        const ssize_t n = ::pread(fd, buf, len, static_cast<off_t>(off));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw Error(Errc::IoError, "cannot read " + path + " at offset " + std::to_string(off) +
                                           ": " + errno_text());
        }
        if (n == 0)
            throw Error(Errc::IoError, path + " ended at offset " + std::to_string(off) +
                                           ", before its size when opened (did it shrink?)");
        buf += n;
        len -= static_cast<std::size_t>(n);
        off += static_cast<std::uint64_t>(n);
    }
}

struct OpenedImage {
    std::uint64_t size = 0;
    TorrentSource kind = TorrentSource::ImageFile;
};

// The size of the file or block device `fd`, described by `st`; nullopt
// (errno set) when a device's size cannot be read.
std::optional<std::uint64_t> size_of(int fd, const struct stat& st) {
    if (!S_ISBLK(st.st_mode))
        return static_cast<std::uint64_t>(st.st_size);
    std::uint64_t size = 0;
    if (::ioctl(fd, BLKGETSIZE64, &size) != 0)
        return std::nullopt;
    return size;
}

OpenedImage inspect(int fd, const std::string& path) {
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        throw Error(Errc::InvalidArgs, "cannot stat " + path + ": " + errno_text());
    if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode))
        throw Error(Errc::InvalidArgs, path + " is neither a regular file nor a block device");
    const auto size = size_of(fd, st);
    if (!size)
        throw Error(Errc::InvalidArgs, "cannot get the size of " + path + ": " + errno_text());
    OpenedImage img;
    img.size = *size;
    img.kind = S_ISBLK(st.st_mode) ? TorrentSource::BlockDevice : TorrentSource::ImageFile;
    if (img.size == 0)
        throw Error(Errc::InvalidArgs, path + " is empty");
    return img;
}

// v1 piece hashes of the whole image, each piece mapped read-only and hashed
// in place by the pool's workers. nullopt when the file cannot be mapped at
// all (a file system without mmap): the caller reads it instead.
std::optional<std::vector<lt::sha1_hash>> hash_mapped_image(int fd, const std::string& path,
                                                            const OpenedImage& img,
                                                            std::uint64_t piece, int threads,
                                                            std::uint64_t in_flight,
                                                            const MakeTorrentOptions& o) {
    HashPool pool(threads, 0, static_cast<std::size_t>(in_flight));
    std::uint64_t off = 0;
    for (std::size_t index = 0; off < img.size; ++index) {
        const std::uint64_t len = std::min(piece, img.size - off);
        const auto mapped = map_range(fd, off, static_cast<std::size_t>(len));
        if (!mapped) {
            if (off == 0)
                return std::nullopt;
            throw Error(Errc::IoError, "cannot map " + path + " at offset " + std::to_string(off) +
                                           ": " + errno_text());
        }
        // Starts reading the whole piece from a device at once, instead of
        // page fault by page fault. Only advice: failure changes nothing but
        // speed.
        (void)::madvise(mapped->map, mapped->map_len, MADV_WILLNEED);
        pool.submit_mapped(*mapped, index);
        off += len;
        if (o.progress)
            o.progress(off, img.size);
        if (pool.first_failure())
            break;
    }
    pool.finish();
    if (const auto failed = pool.first_failure()) {
        const std::uint64_t at = *failed * piece;
        struct stat st {};
        const auto now = ::fstat(fd, &st) == 0 ? size_of(fd, st) : std::nullopt;
        if (now && *now < std::min(at + piece, img.size))
            throw Error(Errc::IoError, path + " ended at offset " + std::to_string(*now) +
                                           ", before its size when opened (did it shrink?)");
        throw Error(Errc::IoError, "cannot read " + path + " in the " + std::to_string(piece) +
                                       " bytes from offset " + std::to_string(at) + ": I/O error");
    }
    return pool.v1_hashes();
}

MakeTorrentResult image_torrent(int fd, const std::string& path, const MakeTorrentOptions& o) {
    check_common(o);
    if (!o.data_source.empty())
        throw Error(Errc::InvalidArgs,
                    "a data source is for a torrent.info only; " + path + " is the data itself");
    const OpenedImage img = inspect(fd, path);

    std::uint64_t piece = static_cast<std::uint64_t>(o.piece_size);
    if (o.piece_size == 0) {
        piece = img.size > 4 * kGiB ? 16 * kMiB : 4 * kMiB;
    } else if (o.piece_size < 0 || !is_pow2(piece) || piece < kMinPiece || piece > kMaxPiece) {
        throw Error(Errc::InvalidArgs, "piece size " + std::to_string(o.piece_size) +
                                           " is not a power of two from 16 KiB to 128 MiB");
    }
    // A chunk never straddles a piece (both are powers of two), so each read
    // lands whole in one piece buffer. Larger chunks than the piece are
    // clamped rather than refused, so the default works with small pieces.
    const std::uint64_t chunk = std::min(o.chunk_size, piece);
    if (o.skip_zero && (!is_pow2(chunk) || chunk < kMinChunk))
        throw Error(Errc::InvalidArgs, "chunk size " + std::to_string(o.chunk_size) +
                                           " is not a power of two of at least 4 KiB");
    if (o.threads < 0 || o.threads > 1024)
        throw Error(Errc::InvalidArgs,
                    "thread count " + std::to_string(o.threads) + " is out of range");

    int threads = o.threads;
    if (threads == 0)
        threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    // One buffer being filled and one ready beyond what the workers hold,
    // within the memory budget.
    const auto budget_buffers = std::max<std::uint64_t>(3, kBufferBudget / piece);
    const auto buffers =
        std::min<std::uint64_t>(static_cast<std::uint64_t>(threads) + 2, budget_buffers);
    threads =
        static_cast<int>(std::min<std::uint64_t>(static_cast<std::uint64_t>(threads), buffers - 1));

    // A whole image in pieces of its own bytes: hashed in place from the page
    // cache, saving the copy a read() makes (a fifth of the CPU time).
    if (!o.skip_zero && !o.hybrid) {
        if (auto v1 = hash_mapped_image(fd, path, img, piece, threads, buffers, o)) {
            MakeTorrentResult r = generate(o.name, {{hex32(0), img.size}}, static_cast<int>(piece),
                                           *v1, {}, o, Errc::Failed, path);
            r.source = img.kind;
            r.source_bytes = img.size;
            return r;
        }
    }

    // Reading sequentially; a larger readahead helps block devices. Only
    // advice: failure changes nothing but speed.
    (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

    const LayoutLimits limits;
    // Hybrid torrents carry a pad file per extent.
    const auto max_extents =
        static_cast<std::size_t>(o.hybrid ? limits.max_files / 2 : limits.max_files);

    struct Run {
        std::uint64_t offset, length;
    };
    std::vector<Run> runs;
    HashPool pool(threads, static_cast<std::size_t>(piece), static_cast<std::size_t>(buffers));

    char* buf = nullptr;
    std::size_t fill = 0;
    std::size_t next_piece = 0;
    std::size_t file_piece = 0;  // hybrid: index of the next piece within the current extent
    const std::size_t piece_sz = static_cast<std::size_t>(piece);
    constexpr std::size_t kLeaf = 16 * 1024;

    // `pad` (hybrid only): a pad file follows the data in this piece.
    auto flush = [&](bool pad) {
        PieceTask t;
        t.index = next_piece++;
        if (o.hybrid) {
            // The pad file after the extent is zeros in v1; v2 hashes only
            // the data. A file shorter than a piece has a tree of its own
            // size, any other piece a full piece-sized subtree (BEP 52).
            if (pad)
                std::memset(buf + fill, 0, piece_sz - fill);
            t.v1_bytes = pad ? piece_sz : fill;
            t.v2_bytes = fill;
            t.v2_leaves = (file_piece == 0 && fill < piece_sz)
                              ? static_cast<std::size_t>(next_pow2((fill + kLeaf - 1) / kLeaf))
                              : piece_sz / kLeaf;
            ++file_piece;
        } else {
            t.v1_bytes = fill;
        }
        if (next_piece > static_cast<std::size_t>(limits.max_pieces))
            throw Error(Errc::InvalidArgs, path + " needs more than " +
                                               std::to_string(limits.max_pieces) +
                                               " pieces; use a larger piece size");
        pool.submit(buf, t);
        buf = nullptr;
        fill = 0;
    };
    // Hybrid pieces never span extents: the piece an extent ends in is
    // completed with padding. libtorrent pads after every file, the last one
    // too, except in a torrent of a single file (file_storage::canonicalize).
    auto close_extent = [&](bool at_end) {
        if (fill > 0)
            flush(!(at_end && runs.size() == 1));
        file_piece = 0;
    };

    for (std::uint64_t off = 0; off < img.size;) {
        if (buf == nullptr)
            buf = pool.acquire();
        const std::uint64_t room = o.skip_zero ? chunk : piece - fill;
        const auto want = static_cast<std::size_t>(std::min(room, img.size - off));
        read_full(fd, buf + fill, want, off, path);
        const bool keep = !o.skip_zero || !all_zero(buf + fill, want);
        if (keep) {
            if (runs.empty() || runs.back().offset + runs.back().length != off) {
                if (runs.size() >= max_extents)
                    throw Error(Errc::InvalidArgs,
                                path + " has more than " + std::to_string(max_extents) +
                                    " separate non-zero extents; use a larger chunk size");
                runs.push_back({off, 0});
            }
            runs.back().length += want;
            fill += want;
            if (fill == piece_sz)
                flush(false);
        } else if (o.hybrid && !runs.empty() && runs.back().offset + runs.back().length == off) {
            close_extent(false);
        }
        off += want;
        if (o.progress)
            o.progress(off, img.size);
    }
    if (o.hybrid) {
        close_extent(true);
    } else if (fill > 0) {
        flush(false);
    }
    pool.finish();

    if (runs.empty())
        throw Error(Errc::InvalidArgs, path + " holds only zeros; nothing to share");

    std::vector<Extent> extents;
    extents.reserve(runs.size());
    for (const auto& r : runs)
        extents.push_back({hex32(r.offset), r.length});

    std::vector<lt::sha256_hash> v2;
    if (o.hybrid)
        v2 = pool.v2_roots();
    MakeTorrentResult r = generate(o.name, extents, static_cast<int>(piece), pool.v1_hashes(), v2,
                                   o, Errc::Failed, path);
    r.source = img.kind;
    r.source_bytes = img.size;
    return r;
}

int open_read_only(const std::string& path) {
    // Read-only and never O_EXCL: making a torrent from a device must not
    // keep anyone else from using it.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw Error(Errc::InvalidArgs, "cannot open " + path + ": " + errno_text());
    return fd;
}

std::string usable_name(const std::string& candidate) {
    try {
        check_name(candidate);
        return candidate;
    } catch (const Error&) {
        return "image";
    }
}

// torrent.info plus the partition it describes: reads the used extents in
// order, checks each 16 MiB piece against partclone's SHA-1 and hashes it
// again in pieces of `piece` bytes (which divides 16 MiB), on all cores.
std::vector<lt::sha1_hash> rehash_extents(const PartcloneInfo& info, std::uint64_t piece,
                                          const MakeTorrentOptions& o) {
    const std::string& path = o.data_source;
    const Fd fd(open_read_only(path));
    const OpenedImage img = inspect(fd.get(), path);
    const std::uint64_t total = info.total_length();
    for (const auto& e : info.extents) {
        if (e.offset > img.size || e.length > img.size - e.offset)
            throw Error(Errc::InvalidArgs, path + " is " + std::to_string(img.size) +
                                               " bytes, too small for the extent at " +
                                               std::to_string(e.offset) + " of " +
                                               std::to_string(e.length) + " bytes in torrent.info");
    }
    const auto expected_pieces = (total + kPartclonePieceSize - 1) / kPartclonePieceSize;
    if (info.pieces.size() != expected_pieces)
        throw Error(Errc::InvalidTorrent, "torrent.info has " + std::to_string(info.pieces.size()) +
                                              " piece hashes, but its extents total " +
                                              std::to_string(total) + " bytes, which make " +
                                              std::to_string(expected_pieces) +
                                              " pieces of 16 MiB");
    if (o.threads < 0 || o.threads > 1024)
        throw Error(Errc::InvalidArgs,
                    "thread count " + std::to_string(o.threads) + " is out of range");
    int threads = o.threads;
    if (threads == 0)
        threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    // Reading sequentially (extents are in ascending order); only advice.
    (void)::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);

    const std::size_t big = kPartclonePieceSize;
    const auto per_big = static_cast<std::size_t>(big / piece);
    HashPool pool(threads, big, static_cast<std::size_t>(threads) + 2);
    std::size_t index = 0;
    std::size_t fill = 0;
    std::uint64_t done = 0;
    char* buf = nullptr;
    auto flush = [&] {
        PieceTask t;
        t.index = index;
        t.v1_bytes = fill;
        t.sub_bytes = static_cast<std::size_t>(piece);
        t.sub_first = index * per_big;
        pool.submit(buf, t);
        buf = nullptr;
        fill = 0;
        ++index;
    };
    for (const auto& e : info.extents) {
        for (std::uint64_t pos = 0; pos < e.length;) {
            if (buf == nullptr)
                buf = pool.acquire();
            const auto n =
                static_cast<std::size_t>(std::min<std::uint64_t>(big - fill, e.length - pos));
            read_full(fd.get(), buf + fill, n, e.offset + pos, path);
            fill += n;
            pos += n;
            done += n;
            if (fill == big)
                flush();
            if (o.progress)
                o.progress(done, total);
        }
    }
    if (fill > 0)
        flush();
    pool.finish();

    for (std::size_t i = 0; i < info.pieces.size(); ++i) {
        const lt::sha1_hash want(
            lt::span<char const>(reinterpret_cast<const char*>(info.pieces[i].data()), 20));
        if (pool.v1_hashes()[i] != want)
            throw Error(Errc::InvalidArgs,
                        path + " does not hold what partclone captured: 16 MiB piece " +
                            std::to_string(i) +
                            " differs from torrent.info's SHA-1 (was the partition changed or "
                            "mounted since, or is it another partition?)");
    }
    return pool.sub_hashes();
}

}  // namespace

int rehash_piece_size(std::uint64_t total_bytes) {
    std::uint64_t p = 256 * kKiB;
    while (p < kPartclonePieceSize && total_bytes / (2 * p) >= 1000)
        p *= 2;
    return static_cast<int>(p);
}

std::string default_torrent_creator() {
    return "ezio " EZIO_VERSION;
}

MakeTorrentResult make_torrent_result_from_partclone(const PartcloneInfo& info,
                                                     const MakeTorrentOptions& o) {
    check_common(o);
    const bool rehash = !o.data_source.empty();
    if (!rehash && o.piece_size != 0 && o.piece_size != kPartclonePieceSize)
        throw Error(Errc::InvalidArgs,
                    "piece size must be 16 MiB for a torrent.info: partclone's SHA-1s are over 16 "
                    "MiB pieces (another piece size needs the partition's data to rehash)");
    if (rehash && o.piece_size != 0 &&
        (o.piece_size < 0 || !is_pow2(static_cast<std::uint64_t>(o.piece_size)) ||
         static_cast<std::uint64_t>(o.piece_size) < kMinPiece ||
         o.piece_size > kPartclonePieceSize))
        throw Error(Errc::InvalidArgs, "piece size " + std::to_string(o.piece_size) +
                                           " is not a power of two from 16 KiB to 16 MiB");
    if (o.skip_zero)
        throw Error(Errc::InvalidArgs,
                    "skip-zero needs the image data; a torrent.info lists only used blocks");
    if (o.hybrid)
        throw Error(
            Errc::InvalidArgs,
            "a hybrid torrent needs SHA-256 of the image data; a torrent.info has only SHA-1s");
    if (info.extents.empty())
        throw Error(Errc::InvalidTorrent, "torrent.info has no extents");

    std::vector<Extent> extents;
    extents.reserve(info.extents.size());
    for (const auto& e : info.extents)
        extents.push_back({e.offset_text, e.length});
    std::vector<lt::sha1_hash> v1;
    int piece_size = kPartclonePieceSize;
    if (rehash) {
        piece_size = o.piece_size ? o.piece_size : rehash_piece_size(info.total_length());
        v1 = rehash_extents(info, static_cast<std::uint64_t>(piece_size), o);
    } else {
        v1.reserve(info.pieces.size());
        for (const auto& p : info.pieces)
            v1.emplace_back(lt::span<char const>(reinterpret_cast<const char*>(p.data()), 20));
    }

    MakeTorrentResult r = generate(o.name, extents, piece_size, v1, {}, o,
                                   rehash ? Errc::Failed : Errc::InvalidTorrent, "torrent.info");
    r.source = TorrentSource::PartcloneInfo;
    r.source_bytes = info.block_size * info.blocks_total;
    return r;
}

std::vector<char> make_torrent_from_partclone(const PartcloneInfo& info,
                                              const MakeTorrentOptions& o) {
    return make_torrent_result_from_partclone(info, o).torrent;
}

MakeTorrentResult make_torrent_result_from_image(const std::string& path,
                                                 const MakeTorrentOptions& o) {
    const Fd fd(open_read_only(path));
    return image_torrent(fd.get(), path, o);
}

std::vector<char> make_torrent_from_image(const std::string& path, const MakeTorrentOptions& o) {
    return make_torrent_result_from_image(path, o).torrent;
}

MakeTorrentResult make_torrent(const std::string& source, const MakeTorrentOptions& options) {
    namespace fs = std::filesystem;
    MakeTorrentOptions o = options;
    std::error_code ec;
    fs::path abs = fs::absolute(source, ec);
    if (ec)
        abs = source;
    abs = abs.lexically_normal();
    if (!abs.has_filename())
        abs = abs.parent_path();  // "dir/" -> "dir"

    struct stat st {};
    if (::stat(source.c_str(), &st) != 0)
        throw Error(Errc::InvalidArgs, "cannot access " + source + ": " + errno_text());

    if (S_ISDIR(st.st_mode)) {
        // partclone -O DIR: the torrent.info inside names the partition by
        // its directory.
        const std::string info_path = (fs::path(source) / "torrent.info").string();
        if (::access(info_path.c_str(), F_OK) != 0)
            throw Error(Errc::InvalidArgs, source + " is a directory without a torrent.info");
        if (o.name.empty())
            o.name = usable_name(abs.filename().string());
        return make_torrent_result_from_partclone(read_partclone_info(info_path), o);
    }

    const Fd fd(open_read_only(source));
    if (S_ISREG(st.st_mode)) {
        char head[64];
        ssize_t n;
        do {
            n = ::pread(fd.get(), head, sizeof head, 0);
        } while (n < 0 && errno == EINTR);
        if (n < 0)
            throw Error(Errc::InvalidArgs, "cannot read " + source + ": " + errno_text());
        if (looks_like_partclone_info(std::string_view(head, static_cast<std::size_t>(n)))) {
            if (o.name.empty())
                o.name = usable_name(abs.parent_path().filename().string());
            return make_torrent_result_from_partclone(read_partclone_info(source), o);
        }
    }
    if (o.name.empty())
        o.name = usable_name(abs.stem().string());
    return image_torrent(fd.get(), source, o);
}

}  // namespace ezio
