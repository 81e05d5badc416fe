// Durable file replacement: the new content is written to a temporary file in
// the same directory, fsync()ed, renamed over the old name, and the directory
// is fsync()ed, so after a crash the file holds either the old or the new
// content, never a mix.
#pragma once

#include <span>
#include <string>
#include <vector>

namespace ezio {

// Throws ezio::Error(Errc::IoError) naming the path and the cause.
void write_file_atomic(const std::string& path, std::span<const char> data);
// Reads a whole file; Errc::NotFound when missing, IoError otherwise.
std::vector<char> read_file(const std::string& path, std::size_t max_bytes = 256u << 20);
// mkdir -p with mode 0700 for the last component; IoError on failure.
void make_directories(const std::string& path);

}  // namespace ezio
