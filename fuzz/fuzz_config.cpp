// libFuzzer target: ezio::parse_config(), eziod.conf's parser. The file is
// root's, but it is also what `ezioctl autodeploy` rewrites and what a
// network-booted image may carry, so it gets the hostile-input treatment.
//
// Contract under test: any text parses or throws ezio::Error (InvalidArgs)
// naming the origin; nothing else. What parses is within range.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config.hpp"
#include "error.hpp"

namespace {

void check(bool ok) {
    if (!ok)
        std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const ezio::DaemonConfig c = ezio::parse_config(text, "fuzz.conf");
        check(c.engine.listen_port >= 0 && c.engine.listen_port <= 65535);
        check(c.engine.io_threads >= 0);
        (void)ezio::to_string(c.log_level);
        (void)ezio::to_string(c.autodeploy.then);
    } catch (const ezio::Error& e) {
        check(e.code() == ezio::Errc::InvalidArgs);
        check(std::string_view(e.what()).starts_with("fuzz.conf"));
    }
    return 0;
}
