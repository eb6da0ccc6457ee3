#pragma once
// A tiny, learnable IDX data set for tests that run the whole program: class k is a bright
// horizontal bar at row 2k+1 of an 8x8 (or larger) image, plus noise.
#include <cstdint>
#include <string>

namespace tailor::testing {

void write_tiny_dataset(const std::string& dir, int train_n, int test_n, int size = 8, int classes = 3,
                        uint64_t seed = 1);
// The first train_n training and test_n test images of Fashion-MNIST (Debian's
// dataset-fashion-mnist) as IDX files in dir; false when the data set is not installed.
bool write_fashion_slice(const std::string& dir, uint32_t train_n, uint32_t test_n);
// Raw IDX bytes, for tests that damage them.
std::string idx_bytes(int ndim, const uint32_t* dims, const uint8_t* data, size_t n);
void write_gz(const std::string& path, const std::string& bytes);

}  // namespace tailor::testing
