// Resolving ezioctl's TARGET/SOURCE argument (core/target_path). A private
// directory stands in for /dev; nothing is ever opened, only stat()ed.
#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "error.hpp"
#include "target_path.hpp"

namespace ezio {
namespace {

namespace fs = std::filesystem;

// A block device node usable for stat(): one we make (root with CAP_MKNOD;
// loop major 7, never opened) or else any that /dev already has.
std::optional<std::string> block_device_in(const std::string& dir) {
    const std::string node = dir + "/blocknode";
    if (::mknod(node.c_str(), S_IFBLK | 0600, makedev(7, 200)) == 0)
        return node;
    if (DIR* d = ::opendir("/dev")) {
        while (dirent* e = ::readdir(d)) {
            std::string path = std::string("/dev/") + e->d_name;
            struct stat st {};
            if (::lstat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode)) {
                ::closedir(d);
                return path;
            }
        }
        ::closedir(d);
    }
    return std::nullopt;
}

class TargetPath : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/ezio-target-path.XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        // realpath: /tmp may itself be a symlink on some systems.
        root_ = fs::canonical(tmpl).string();
        dev_ = root_ + "/dev";
        work_ = root_ + "/work";
        fs::create_directories(dev_);
        fs::create_directories(work_);
        old_cwd_ = fs::current_path();
        fs::current_path(work_);
    }
    void TearDown() override {
        fs::current_path(old_cwd_);
        std::error_code ec;
        fs::remove_all(root_, ec);
    }

    void touch(const std::string& path) { std::ofstream(path) << "x"; }

    // Sets block_ to a block device or skips the test.
    bool need_block_device() {
        auto b = block_device_in(root_);
        if (!b)
            return false;
        block_ = fs::canonical(*b).string();
        return true;
    }

    std::string root_, dev_, work_, block_;
    fs::path old_cwd_;
};

struct Failure {
    Errc code;
    std::string message;
};

Failure failure_of(std::string_view arg, TargetKind kind, const std::string& dev_dir) {
    try {
        std::string p = resolve_target_path(arg, kind, dev_dir);
        ADD_FAILURE() << "'" << arg << "' resolved to " << p;
    } catch (const Error& e) {
        return {e.code(), e.what()};
    }
    return {Errc::Failed, ""};
}

TEST_F(TargetPath, BareNameIsLookedUpInTheDeviceDirectory) {
    if (!need_block_device())
        GTEST_SKIP() << "no block device node available";
    fs::create_symlink(block_, dev_ + "/sda1");
    EXPECT_EQ(resolve_target_path("sda1", TargetKind::Device, dev_), block_);
    // A file of the same name in the current directory does not matter.
    touch(work_ + "/sda1");
    EXPECT_EQ(resolve_target_path("sda1", TargetKind::Device, dev_), block_);
}

TEST_F(TargetPath, ByLinksAndRelativeDeviceNamesAreResolved) {
    if (!need_block_device())
        GTEST_SKIP() << "no block device node available";
    fs::create_directories(dev_ + "/disk/by-label");
    fs::create_directories(dev_ + "/mapper");
    fs::create_symlink(block_, dev_ + "/disk/by-label/root");
    fs::create_symlink("../disk/by-label/root", dev_ + "/mapper/vg-root");
    EXPECT_EQ(resolve_target_path(dev_ + "/disk/by-label/root", TargetKind::Device, dev_), block_);
    EXPECT_EQ(resolve_target_path("disk/by-label/root", TargetKind::Device, dev_), block_);
    EXPECT_EQ(resolve_target_path("mapper/vg-root", TargetKind::Device, dev_), block_);
    EXPECT_EQ(resolve_target_path(block_, TargetKind::Device, dev_), block_);
}

TEST_F(TargetPath, MissingDeviceIsInvalidTargetNamingThePath) {
    auto f = failure_of("sdz9", TargetKind::Device, dev_);
    EXPECT_EQ(f.code, Errc::InvalidTarget);
    EXPECT_NE(f.message.find(dev_ + "/sdz9"), std::string::npos) << f.message;
    EXPECT_NE(f.message.find("no such device"), std::string::npos) << f.message;

    f = failure_of("/dev/ezio-does-not-exist", TargetKind::Device, dev_);
    EXPECT_EQ(f.code, Errc::InvalidTarget);

    fs::create_symlink(dev_ + "/nowhere", dev_ + "/dangling");
    EXPECT_EQ(failure_of("dangling", TargetKind::Device, dev_).code, Errc::InvalidTarget);
}

TEST_F(TargetPath, NonBlockDevicesAreRefused) {
    touch(dev_ + "/image");
    auto f = failure_of("image", TargetKind::Device, dev_);
    EXPECT_EQ(f.code, Errc::InvalidTarget);
    EXPECT_NE(f.message.find("--file"), std::string::npos) << "suggests --file: " << f.message;

    f = failure_of("/dev/null", TargetKind::Device, dev_);
    EXPECT_EQ(f.code, Errc::InvalidTarget);
    EXPECT_NE(f.message.find("character device"), std::string::npos) << f.message;

    fs::create_directories(dev_ + "/disk");
    f = failure_of("disk", TargetKind::Device, dev_);
    EXPECT_EQ(f.code, Errc::InvalidTarget);
    EXPECT_NE(f.message.find("directory"), std::string::npos) << f.message;

    EXPECT_EQ(failure_of("", TargetKind::Device, dev_).code, Errc::InvalidTarget);
    EXPECT_EQ(failure_of(std::string_view("sd\0a", 4), TargetKind::Device, dev_).code,
              Errc::InvalidTarget);
}

TEST_F(TargetPath, ExplicitlyRelativeDevicePathUsesTheCurrentDirectory) {
    if (!need_block_device())
        GTEST_SKIP() << "no block device node available";
    fs::create_symlink(block_, work_ + "/mydisk");
    EXPECT_EQ(resolve_target_path("./mydisk", TargetKind::Device, dev_), block_);
    EXPECT_EQ(failure_of("mydisk", TargetKind::Device, dev_).code, Errc::InvalidTarget);
}

TEST_F(TargetPath, FileIsMadeAbsolute) {
    touch(work_ + "/disk.img");
    EXPECT_EQ(resolve_target_path("disk.img", TargetKind::File, dev_), work_ + "/disk.img");
    EXPECT_EQ(resolve_target_path("./sub/../disk.img", TargetKind::File, dev_),
              work_ + "/disk.img");
    // Symlinks are resolved: eziod opens what the link points to now.
    fs::create_symlink(work_ + "/disk.img", work_ + "/link.img");
    EXPECT_EQ(resolve_target_path("link.img", TargetKind::File, dev_), work_ + "/disk.img");
}

TEST_F(TargetPath, MissingFileInAnExistingDirectoryIsAccepted) {
    EXPECT_EQ(resolve_target_path("new.img", TargetKind::File, dev_), work_ + "/new.img");
    EXPECT_EQ(resolve_target_path(root_ + "/new.img", TargetKind::File, dev_), root_ + "/new.img");
    EXPECT_FALSE(fs::exists(work_ + "/new.img")) << "resolution must not create anything";
}

TEST_F(TargetPath, BadFilesAreRefused) {
    EXPECT_EQ(failure_of("nodir/new.img", TargetKind::File, dev_).code, Errc::InvalidTarget);
    EXPECT_EQ(failure_of(work_, TargetKind::File, dev_).code, Errc::InvalidTarget);
    EXPECT_EQ(failure_of("sub/", TargetKind::File, dev_).code, Errc::InvalidTarget);
    EXPECT_EQ(failure_of(".", TargetKind::File, dev_).code, Errc::InvalidTarget);
    EXPECT_EQ(failure_of("/dev/null", TargetKind::File, dev_).code, Errc::InvalidTarget);
    fs::create_symlink(work_ + "/nowhere.img", work_ + "/dangling.img");
    auto f = failure_of("dangling.img", TargetKind::File, dev_);
    EXPECT_EQ(f.code, Errc::InvalidTarget);
    EXPECT_NE(f.message.find("dangling"), std::string::npos) << f.message;
    touch(work_ + "/plain");
    EXPECT_EQ(failure_of("plain/new.img", TargetKind::File, dev_).code, Errc::InvalidTarget);
}

TEST_F(TargetPath, BlockDeviceWithFileKindIsRefused) {
    if (!need_block_device())
        GTEST_SKIP() << "no block device node available";
    auto f = failure_of(block_, TargetKind::File, dev_);
    EXPECT_EQ(f.code, Errc::InvalidTarget);
    EXPECT_NE(f.message.find("block device"), std::string::npos) << f.message;
}

TEST_F(TargetPath, SourceMayBeDeviceOrFile) {
    touch(work_ + "/image.raw");
    EXPECT_EQ(resolve_target_path("image.raw", TargetKind::DeviceOrFile, dev_),
              work_ + "/image.raw");
    EXPECT_EQ(resolve_target_path(work_ + "/image.raw", TargetKind::DeviceOrFile, dev_),
              work_ + "/image.raw");
    EXPECT_EQ(failure_of("missing.raw", TargetKind::DeviceOrFile, dev_).code, Errc::InvalidTarget);
    EXPECT_EQ(failure_of("/dev/null", TargetKind::DeviceOrFile, dev_).code, Errc::InvalidTarget);
    EXPECT_EQ(failure_of(work_, TargetKind::DeviceOrFile, dev_).code, Errc::InvalidTarget);

    if (!need_block_device())
        GTEST_SKIP() << "no block device node available";
    fs::create_symlink(block_, dev_ + "/sda1");
    touch(work_ + "/sda1");
    // A bare name means the device; "./NAME" means the file.
    EXPECT_EQ(resolve_target_path("sda1", TargetKind::DeviceOrFile, dev_), block_);
    EXPECT_EQ(resolve_target_path("./sda1", TargetKind::DeviceOrFile, dev_), work_ + "/sda1");
}

}  // namespace
}  // namespace ezio
