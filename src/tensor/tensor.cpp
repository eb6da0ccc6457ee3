#include "tensor/tensor.hpp"

#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

namespace tailor {

Shape::Shape(std::initializer_list<int64_t> d) {
  if (d.size() > kMaxRank) throw std::length_error("tensor rank above 4");
  for (int64_t v : d) dims[n++] = v;
}

Shape::Shape(const std::vector<int64_t>& d) {
  if (d.size() > kMaxRank) throw std::length_error("tensor rank above 4");
  n = d.size();
  for (size_t i = 0; i < n; ++i) dims[i] = d[i];
}

Shape Shape::batched(int64_t batch, const Shape& item) {
  if (item.n + 1 > kMaxRank) throw std::length_error("tensor rank above 4");
  Shape s;
  s.n = item.n + 1;
  s.dims[0] = batch;
  for (size_t i = 0; i < item.n; ++i) s.dims[i + 1] = item.dims[i];
  return s;
}

std::string Shape::str() const {
  std::string s = "(";
  for (size_t i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + ")";
}

void Buffer::Free::operator()(float* p) const { std::free(p); }

void Buffer::resize(size_t n) {
  if (n == size_) return;
  size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
  float* p = n ? static_cast<float*>(std::aligned_alloc(64, bytes)) : nullptr;
  if (n && !p) throw std::bad_alloc();
  if (p) std::memset(p, 0, bytes);
  ptr_.reset(p);
  size_ = n;
}

}  // namespace tailor
