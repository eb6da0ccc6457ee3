#include "tiny_data.hpp"

#include <filesystem>
#include <stdexcept>
#include <vector>

#include <zlib.h>

#include "data/idx.hpp"
#include "util/rng.hpp"

namespace tailor::testing {

std::string idx_bytes(int ndim, const uint32_t* dims, const uint8_t* data, size_t n) {
  std::string out{0, 0, 8, static_cast<char>(ndim)};
  for (int i = 0; i < ndim; ++i)
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((dims[i] >> s) & 0xFF));
  out.append(reinterpret_cast<const char*>(data), n);
  return out;
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  if (!f || gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) != static_cast<int>(bytes.size()))
    throw std::runtime_error("cannot write " + path);
  gzclose(f);
}

void write_tiny_dataset(const std::string& dir, int train_n, int test_n, int size, int classes, uint64_t seed) {
  std::filesystem::create_directories(dir);
  Rng rng(seed);
  auto make = [&](const std::string& prefix, int n) {
    std::vector<uint8_t> images(static_cast<size_t>(n) * size * size), labels(n);
    for (int i = 0; i < n; ++i) {
      const int k = i % classes;
      labels[i] = static_cast<uint8_t>(k);
      for (int r = 0; r < size; ++r)
        for (int c = 0; c < size; ++c) {
          int v = static_cast<int>(rng.below(60));
          if (r == (2 * k + 1) % size) v += 150;
          images[(static_cast<size_t>(i) * size + r) * size + c] = static_cast<uint8_t>(v);
        }
    }
    const uint32_t idims[3] = {static_cast<uint32_t>(n), static_cast<uint32_t>(size), static_cast<uint32_t>(size)};
    const uint32_t ldims[1] = {static_cast<uint32_t>(n)};
    write_gz(dir + "/" + prefix + "-images-idx3-ubyte.gz", idx_bytes(3, idims, images.data(), images.size()));
    write_gz(dir + "/" + prefix + "-labels-idx1-ubyte.gz", idx_bytes(1, ldims, labels.data(), labels.size()));
  };
  make("train", train_n);
  make("t10k", test_n);
}

bool write_fashion_slice(const std::string& dir, uint32_t train_n, uint32_t test_n) {
  const std::string src = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(src + "/train-images-idx3-ubyte.gz")) return false;
  std::filesystem::create_directories(dir);
  for (const auto& [prefix, n] : {std::pair{std::string("train"), train_n}, std::pair{std::string("t10k"), test_n}}) {
    const IdxArray images = read_idx(src + "/" + prefix + "-images-idx3-ubyte.gz", 3);
    const IdxArray labels = read_idx(src + "/" + prefix + "-labels-idx1-ubyte.gz", 1);
    const uint32_t idims[3] = {n, images.dims[1], images.dims[2]}, ldims[1] = {n};
    write_gz(dir + "/" + prefix + "-images-idx3-ubyte.gz",
             idx_bytes(3, idims, images.data.data(), size_t{n} * idims[1] * idims[2]));
    write_gz(dir + "/" + prefix + "-labels-idx1-ubyte.gz", idx_bytes(1, ldims, labels.data.data(), n));
  }
  return true;
}

}  // namespace tailor::testing
