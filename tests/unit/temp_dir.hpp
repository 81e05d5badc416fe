// A directory under /tmp for one test, removed with everything in it when
// the test is done (or fails).
#pragma once

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace ezio::test {

class TempDir {
  public:
    TempDir() {
        char tmpl[] = "/tmp/ezio-test-XXXXXX";
        if (!::mkdtemp(tmpl))
            throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::filesystem::path path;
};

}  // namespace ezio::test
