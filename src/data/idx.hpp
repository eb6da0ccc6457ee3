#pragma once
// IDX files, the format MNIST and Fashion-MNIST ship in (http://yann.lecun.com/exdb/mnist/):
//   bytes 0-1  zero
//   byte  2    element type, 0x08 = unsigned byte (the only type read here)
//   byte  3    ndim
//   then ndim big-endian uint32 dimensions, then prod(dims) bytes, row-major.
// Raw and gzip-compressed files are both read; gzip is detected by its magic bytes 1f 8b,
// not by the file name.
#include <cstdint>
#include <string>
#include <vector>

namespace tailor {

struct IdxArray {
  std::vector<uint32_t> dims;  // (d0, d1, ...), all > 0
  std::vector<uint8_t> data;   // prod(dims) bytes, row-major
};

// Every dimension product above this is refused before anything is allocated.
inline constexpr uint64_t kIdxMaxDataBytes = uint64_t{1} << 30;

// Reads `path`, which must hold exactly `expected_ndim` dimensions of unsigned bytes and exactly
// the bytes its header describes. Throws tailor::Error (one line naming the path) on anything
// else: missing file, wrong magic, wrong type or ndim, a zero dimension, more than 1 GiB, too
// little or too much data, truncated or corrupt gzip.
IdxArray read_idx(const std::string& path, int expected_ndim);

}  // namespace tailor
