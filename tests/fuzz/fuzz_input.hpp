#pragma once
// Shared by the libFuzzer harnesses: the readers under test take file paths, so each input is
// written to one file per process (in /dev/shm when there is one: no disk traffic) and read back.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include <zlib.h>

namespace tailor::fuzz {

inline std::string scratch_dir() {
  static const std::string dir = [] {
    const std::filesystem::path base =
        std::filesystem::is_directory("/dev/shm") ? std::filesystem::path("/dev/shm") : std::filesystem::temp_directory_path();
    const std::filesystem::path d = base / ("tailor-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d.string();
  }();
  return dir;
}

// Writes `bytes` to scratch_dir()/name and returns the path.
inline std::string write_input(const std::string& bytes, const std::string& name) {
  const std::string path = scratch_dir() + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) __builtin_trap();
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) __builtin_trap();
  std::fclose(f);
  return path;
}

// Checkpoint-format inputs get their CRC-32 appended, so the fuzzer explores what lies behind the
// checksum (a wrong checksum is refused first; the unit tests cover that).
inline std::string with_crc(const uint8_t* data, size_t size) {
  std::string s(reinterpret_cast<const char*>(data), size);
  const uint32_t crc = static_cast<uint32_t>(crc32(0L, data, static_cast<uInt>(size)));
  s.append(reinterpret_cast<const char*>(&crc), 4);
  return s;
}

}  // namespace tailor::fuzz
