#pragma once
// Results are never left half-written: every file goes to `<path>.tmp` first, is flushed, and
// is renamed over the target (rename is atomic on one file system).
#include <string>
#include <string_view>

namespace tailor {

// Writes `bytes` to `path` atomically; throws tailor::Error naming the path on failure.
void write_file_atomic(const std::string& path, std::string_view bytes);

// Reads a whole file; throws tailor::Error naming the path if it cannot be opened.
std::string read_file(const std::string& path);

// Creates `dir` (and parents) and checks that a file can be written there; throws on failure.
void ensure_writable_dir(const std::string& dir);

}  // namespace tailor
