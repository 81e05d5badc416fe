// SlabPool's mapped slabs: the bytes of any (unaligned) range of a file,
// kept mapped while any reference is held and unmapped by the last
// release; a range the file cannot supply is refused with EFAULT, not a
// SIGBUS.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "disk_buffers.hpp"
#include "temp_dir.hpp"

namespace {

// Whether the page holding `p` is mapped in this process (mincore() fails
// with ENOMEM on an unmapped page).
bool page_mapped(const char* p) {
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    void* start = reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(p) / page * page);
    unsigned char vec = 0;
    if (::mincore(start, 1, &vec) == 0)
        return true;
    EXPECT_EQ(errno, ENOMEM);
    return false;
}

class MappedSlab : public ::testing::Test {
  protected:
    void SetUp() override {
        data.resize(5 * 4096 + 123);
        for (std::size_t i = 0; i < data.size(); ++i)
            data[i] = static_cast<char>(i * 7 + i / 4096);
        const std::string path = (dir.path / "image").string();
        std::ofstream(path, std::ios::binary)
            .write(data.data(), static_cast<std::streamsize>(data.size()));
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        ASSERT_GE(fd, 0);
    }
    void TearDown() override {
        if (fd >= 0)
            ::close(fd);
    }

    ezio::test::TempDir dir;
    std::vector<char> data;
    int fd = -1;
    ezio::SlabPool pool{1 << 20};
};

TEST_F(MappedSlab, AnUnalignedRangeHasItsBytesUntilTheLastRelease) {
    const std::uint64_t offset = 4096 + 1000;
    const std::size_t len = 2 * 4096 + 77;
    int err = 0;
    const char* slab = pool.map(fd, offset, len, err);
    ASSERT_NE(slab, nullptr) << std::strerror(err);
    EXPECT_EQ(std::string(slab, len), std::string(data.data() + offset, len));
    EXPECT_EQ(pool.in_use(), 1u);

    pool.add_ref(slab);
    pool.release(slab + 5000);  // any byte of it
    EXPECT_TRUE(page_mapped(slab));
    EXPECT_EQ(slab[len - 1], data[offset + len - 1]);

    // The descriptor is not needed any more: the mapping holds the file.
    ASSERT_EQ(::close(fd), 0);
    fd = -1;
    EXPECT_EQ(slab[0], data[offset]);

    pool.release(slab);
    EXPECT_EQ(pool.in_use(), 0u);
    EXPECT_FALSE(page_mapped(slab));
    EXPECT_FALSE(page_mapped(slab + len - 1));
}

TEST_F(MappedSlab, ARangePastTheEndOfTheFileIsRefusedWithEfault) {
    int err = 0;
    // Starts inside the file, ends two pages past it.
    EXPECT_EQ(pool.map(fd, data.size() - 100, 3 * 4096, err), nullptr);
    EXPECT_EQ(err, EFAULT);
    EXPECT_EQ(pool.in_use(), 0u);
}

TEST_F(MappedSlab, MappedAndCopiedSlabsLiveSideBySide) {
    int err = 0;
    const char* mapped = pool.map(fd, 10, 100, err);
    ASSERT_NE(mapped, nullptr) << std::strerror(err);
    char* copied = pool.get(4096);
    ASSERT_NE(copied, nullptr);
    EXPECT_EQ(pool.in_use(), 2u);
    pool.release(copied);
    EXPECT_TRUE(page_mapped(mapped));
    EXPECT_EQ(std::string(mapped, 100), std::string(data.data() + 10, 100));
    pool.release(mapped);
    EXPECT_EQ(pool.in_use(), 0u);
}

}  // namespace
