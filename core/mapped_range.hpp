// A read-only shared mapping of any byte range of a file or block device:
// mmap() wants a page-aligned offset, so the mapping starts at the page
// holding the range and `data` points at its first byte. Used where ezio
// reads an image without copying it (make-torrent hashing a piece in place,
// a seeder sending a chunk from the page cache).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace ezio {

struct MappedRange {
    void* map = nullptr;  // as mmap() returned it, for munmap()
    std::size_t map_len = 0;
    const char* data = nullptr;  // the range's first byte, inside the mapping
    std::size_t bytes = 0;       // the range's length
};

// Maps [offset, offset + bytes) of `fd` (bytes > 0) read-only and shared;
// nullopt with errno set when mmap() fails (ENODEV: a file system that
// cannot map). Pages past the end of the file are not checked here: reading
// them raises SIGBUS.
std::optional<MappedRange> map_range(int fd, std::uint64_t offset, std::size_t bytes);

// munmap() of the whole mapping; 0 or an errno value (EINVAL only for a
// range map_range() did not return).
int unmap_range(const MappedRange& m);

}  // namespace ezio
