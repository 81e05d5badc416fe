#include "mapped_range.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

namespace ezio {

std::optional<MappedRange> map_range(int fd, std::uint64_t offset, std::size_t bytes) {
    static const long page_size = ::sysconf(_SC_PAGESIZE);
    if (page_size <= 0) {
        errno = EINVAL;
        return std::nullopt;
    }
    const auto page = static_cast<std::uint64_t>(page_size);
    const std::uint64_t from = offset - offset % page;  // 16 KiB pieces on 64 KiB pages too
    MappedRange m;
    m.map_len = bytes + static_cast<std::size_t>(offset - from);
    m.map = ::mmap(nullptr, m.map_len, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(from));
    if (m.map == MAP_FAILED)
        return std::nullopt;
    m.data = static_cast<const char*>(m.map) + (offset - from);
    m.bytes = bytes;
    return m;
}

int unmap_range(const MappedRange& m) {
    return ::munmap(m.map, m.map_len) == 0 ? 0 : errno;
}

}  // namespace ezio
