// ezio::read_mapped_guarded: reads a file mapping without letting a
// vanished page kill the process.
//
// Reading a mapped page the kernel cannot supply (the file was truncated
// under the mapping, or the device failed to read it) raises SIGBUS. This
// runs `read(arg)` with a process-wide SIGBUS handler (installed on first
// use, and again whenever another handler has replaced it) that,
// when the faulting address lies in [begin, begin + len) of this thread's
// guarded range, jumps back here and reports failure instead. Faults
// anywhere else go to the disposition SIGBUS had before (the default one
// terminates), so other bugs are not hidden.
//
// The jump abandons `read` mid-way: it must not own anything that needs a
// destructor or a lock (hashing into a caller-owned context is fine; the
// context is garbage afterwards).
#pragma once

#include <cstddef>

namespace ezio {

// True when `read(arg)` returned normally, false when it faulted on the
// range (or, never seen, when the handler could not be installed).
bool read_mapped_guarded(const char* begin, std::size_t len, void (*read)(void*), void* arg);

}  // namespace ezio
