#pragma once
// Shapes and buffers. A Tensor owns 64-byte-aligned floats; a View is a (pointer, shape) pair
// that layers read and write. Shapes are PyTorch-ordered: (N, C, H, W) or (N, F).
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace tailor {

// Up to four dimensions stored inline: copying a Shape or a View never touches the heap, so a
// training step can pass them around freely.
struct Shape {
  static constexpr size_t kMaxRank = 4;
  std::array<int64_t, kMaxRank> dims{};
  size_t n = 0;

  Shape() = default;
  Shape(std::initializer_list<int64_t> d);
  explicit Shape(const std::vector<int64_t>& d);
  // (batch, item...) from an item shape.
  static Shape batched(int64_t batch, const Shape& item);

  size_t rank() const { return n; }
  int64_t operator[](size_t i) const { return dims[i]; }
  int64_t numel() const {
    int64_t r = 1;
    for (size_t i = 0; i < n; ++i) r *= dims[i];
    return r;
  }
  // Elements per item of the leading (batch) dimension.
  int64_t per_item() const { return n == 0 || dims[0] == 0 ? 1 : numel() / dims[0]; }
  Shape with_batch(int64_t b) const {
    Shape s = *this;
    s.dims[0] = b;
    return s;
  }
  std::vector<int64_t> vec() const { return {dims.begin(), dims.begin() + n}; }
  bool operator==(const Shape& o) const { return n == o.n && dims == o.dims; }
  std::string str() const;
};

struct View {
  float* data = nullptr;
  Shape shape;
  int64_t numel() const { return shape.numel(); }
  bool empty() const { return data == nullptr; }
};

struct ConstView {
  const float* data = nullptr;
  Shape shape;
  ConstView() = default;
  ConstView(const float* d, Shape s) : data(d), shape(std::move(s)) {}
  ConstView(const View& v) : data(v.data), shape(v.shape) {}  // NOLINT: implicit on purpose
  int64_t numel() const { return shape.numel(); }
};

// Owning, aligned, zero-initialised float buffer.
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t n) { resize(n); }
  void resize(size_t n);
  float* data() { return ptr_.get(); }
  const float* data() const { return ptr_.get(); }
  size_t size() const { return size_; }

 private:
  struct Free { void operator()(float* p) const; };
  std::unique_ptr<float, Free> ptr_;
  size_t size_ = 0;
};

}  // namespace tailor
