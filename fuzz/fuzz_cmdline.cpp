// libFuzzer target: the kernel command-line parser of auto-deploy
// (core/autodeploy.hpp): split_kernel_cmdline(), parse_kernel_cmdline() and
// apply_overrides(). /proc/cmdline comes from a boot loader that a PXE
// server configures, so it is input like any other.
//
// Contract under test: parsing either succeeds or throws ezio::Error
// (InvalidArgs); nothing else. Splitting never fails and never yields an
// empty word unless quotes made one.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "autodeploy.hpp"
#include "error.hpp"

namespace {

void check(bool ok) {
    if (!ok)
        std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    for (const auto& word : ezio::split_kernel_cmdline(text))
        check(!word.empty() || text.find('"') != std::string_view::npos);
    try {
        const ezio::AutoDeployOverrides o = ezio::parse_kernel_cmdline(text);
        try {
            ezio::AutoDeployConfig base;
            base.torrent = "/srv/sda1.torrent";
            base.target = "sda1";
            (void)ezio::apply_overrides(base, o);
            (void)ezio::apply_overrides(ezio::AutoDeployConfig{}, o);
        } catch (const ezio::Error& e) {
            check(e.code() == ezio::Errc::InvalidArgs);
        }
    } catch (const ezio::Error& e) {
        check(e.code() == ezio::Errc::InvalidArgs);
    }
    return 0;
}
