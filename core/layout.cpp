#include "layout.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>

#include "error.hpp"

namespace ezio {

std::optional<std::uint64_t> parse_hex_offset(std::string_view name) {
    if (name.empty())
        return std::nullopt;
    std::uint64_t value = 0;
    for (char c : name) {
        unsigned digit;
        if (c >= '0' && c <= '9')
            digit = static_cast<unsigned>(c - '0');
        else if (c >= 'a' && c <= 'f')
            digit = static_cast<unsigned>(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            digit = static_cast<unsigned>(c - 'A' + 10);
        else
            return std::nullopt;
        if (value > (~std::uint64_t{0} >> 4))
            return std::nullopt;  // would overflow
        value = (value << 4) | digit;
    }
    return value;
}

ImageLayout ImageLayout::from_files(const lt::file_storage& files, const LayoutLimits& limits) {
    const int n = files.num_files();
    if (n <= 0)
        throw Error(Errc::InvalidTorrent, "torrent has no files");
    if (n > limits.max_files)
        throw Error(Errc::InvalidTorrent, "torrent has " + std::to_string(n) +
                                              " files, more than the limit of " +
                                              std::to_string(limits.max_files));

    ImageLayout layout;
    layout.offsets_.resize(static_cast<std::size_t>(n), kPad);

    struct Span {
        std::uint64_t begin, end;
        int file;
    };
    std::vector<Span> spans;
    spans.reserve(static_cast<std::size_t>(n));

    // A single-file torrent has no directory: it is a whole raw image at 0.
    const bool single = n == 1 && files.file_path(lt::file_index_t{0}) == files.name();

    for (lt::file_index_t i{0}; i < lt::file_index_t{n}; ++i) {
        if (files.pad_file_at(i))
            continue;
        const std::int64_t size = files.file_size(i);
        if (size < 0)
            throw Error(Errc::InvalidTorrent,
                        "file " + files.file_path(i) + " has a negative length");
        std::uint64_t offset = 0;
        if (!single) {
            const std::string name(files.file_name(i));
            auto parsed = parse_hex_offset(name);
            if (!parsed)
                throw Error(Errc::InvalidTorrent,
                            "file " + files.file_path(i) +
                                " is not named by a hex partition offset that fits 64 bits");
            offset = *parsed;
        }
        const auto length = static_cast<std::uint64_t>(size);
        if (length > ~std::uint64_t{0} - offset)
            throw Error(Errc::InvalidTorrent,
                        "file " + files.file_path(i) + " ends beyond the 64-bit address space");
        layout.offsets_[static_cast<std::size_t>(static_cast<int>(i))] = offset;
        if (length == 0)
            continue;
        spans.push_back({offset, offset + length, static_cast<int>(i)});
        layout.data_bytes_ += length;
        layout.end_ = std::max(layout.end_, offset + length);
    }

    std::sort(spans.begin(), spans.end(),
              [](const Span& a, const Span& b) { return a.begin < b.begin; });
    for (std::size_t k = 1; k < spans.size(); ++k) {
        if (spans[k].begin < spans[k - 1].end) {
            throw Error(Errc::InvalidTorrent,
                        "file " + files.file_path(lt::file_index_t{spans[k].file}) +
                            " overlaps file " +
                            files.file_path(lt::file_index_t{spans[k - 1].file}));
        }
    }
    layout.extents_ = spans.size();
    return layout;
}

void ImageLayout::check_fits(std::uint64_t size, const std::string& target) const {
    if (end_ > size)
        throw Error(Errc::InvalidTarget, target + " holds " + std::to_string(size) +
                                             " bytes but the image needs " + std::to_string(end_));
}

std::string info_hash_hex(const lt::torrent_info& ti) {
    const auto& ih = ti.info_hashes();
    static const char digits[] = "0123456789abcdef";
    const char* data = ih.has_v1() ? ih.v1.data() : ih.v2.data();
    const std::size_t n = ih.has_v1() ? ih.v1.size() : ih.v2.size();
    std::string out;
    out.reserve(2 * n);
    for (std::size_t i = 0; i < n; ++i) {
        const auto b = static_cast<unsigned char>(data[i]);
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

ImageTorrent load_image_torrent(std::span<const char> bytes, const LayoutLimits& limits) {
    if (bytes.empty())
        throw Error(Errc::InvalidTorrent, "torrent is empty");
    if (static_cast<std::int64_t>(bytes.size()) > limits.max_torrent_bytes)
        throw Error(Errc::InvalidTorrent, "torrent is larger than " +
                                              std::to_string(limits.max_torrent_bytes) + " bytes");
    lt::load_torrent_limits lim;
    lim.max_buffer_size = static_cast<int>(limits.max_torrent_bytes);
    lim.max_pieces = limits.max_pieces;
    lim.max_decode_depth = 100;
    lim.max_decode_tokens =
        static_cast<int>(std::min<std::int64_t>(limits.max_files * 8 + 4096, 100'000'000));

    std::shared_ptr<lt::torrent_info> info;
    try {
        info = std::make_shared<lt::torrent_info>(
            lt::span<char const>(bytes.data(), static_cast<std::ptrdiff_t>(bytes.size())), lim,
            lt::from_span);
    } catch (const std::exception& e) {
        throw Error(Errc::InvalidTorrent, std::string("torrent is not valid: ") + e.what());
    }
    if (!info->is_valid())
        throw Error(Errc::InvalidTorrent, "torrent is not valid");
    ImageLayout layout = ImageLayout::from_files(info->files(), limits);
    return ImageTorrent{std::move(info), std::move(layout)};
}

ImageTorrent load_image_torrent_file(const std::string& path, const LayoutLimits& limits) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw Error(Errc::InvalidArgs, "cannot open " + path);
    in.seekg(0, std::ios::end);
    const auto size = static_cast<std::int64_t>(in.tellg());
    if (size < 0)
        throw Error(Errc::InvalidArgs, "cannot read " + path);
    if (size > limits.max_torrent_bytes)
        throw Error(Errc::InvalidTorrent, path + " is larger than " +
                                              std::to_string(limits.max_torrent_bytes) + " bytes");
    in.seekg(0);
    std::vector<char> bytes(static_cast<std::size_t>(size));
    if (!in.read(bytes.data(), size))
        throw Error(Errc::InvalidArgs, "cannot read " + path);
    return load_image_torrent(bytes, limits);
}

}  // namespace ezio
