#include "data/image.hpp"

#include <png.h>
// jpeglib.h needs size_t and FILE declared first.
#include <cstdio>
#include <jpeglib.h>
#include <csetjmp>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace tailor {
namespace {

// A pixel counts as part of the object above this (of 255) after inversion: high enough that
// paper texture and compression noise do not widen the bounding box.
constexpr int kInkThreshold = 32;

// `limit`: the most pixels a decode may produce (load_image: kMaxImagePixels; a server: lower).
void check_pixel_count(uint64_t width, uint64_t height, const std::string& path, uint64_t limit) {
  if (width == 0 || height == 0)
    throw NotAnImage(path + ": image is " + std::to_string(width) + "x" + std::to_string(height) +
                     ", which is empty");
  if (width * height > limit)
    throw ImageTooLarge(path + ": image is " + std::to_string(width) + "x" + std::to_string(height) +
                        ", more than the limit of " + std::to_string(limit) + " pixels");
}

// Interleaved samples (height, width, 3) -> planes (3, height, width).
std::vector<uint8_t> to_planes(const std::vector<uint8_t>& packed, size_t plane) {
  std::vector<uint8_t> out(packed.size());
  for (size_t i = 0; i < plane; ++i)
    for (size_t c = 0; c < 3; ++c) out[c * plane + i] = packed[i * 3 + c];
  return out;
}

// Frees libpng's simplified-API state on every path out (finish_read frees it too; freeing
// twice is harmless because png_image_free checks `opaque`).
struct PngImageGuard {
  png_image* image;
  ~PngImageGuard() { png_image_free(image); }
};

Image decode_png(const std::string& path, const std::string& bytes, bool colour, uint64_t limit) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  PngImageGuard guard{&image};
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size()))
    throw NotAnImage(path + ": cannot read PNG (libpng: " + image.message + ")");
  check_pixel_count(image.width, image.height, path, limit);
  // libpng converts any colour type / bit depth to 8-bit sRGB grey (luminance) or RGB and, since
  // the output has no alpha, composites onto `background` (its green channel, for grey output).
  // `colour` keeps a colour file's colour; a grey file stays one plane.
  const bool rgb = colour && (image.format & PNG_FORMAT_FLAG_COLOR);
  image.format = rgb ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  Image out;
  out.width = static_cast<int>(image.width);
  out.height = static_cast<int>(image.height);
  out.channels = rgb ? 3 : 1;
  out.pixels.resize(out.plane() * static_cast<size_t>(out.channels));
  const png_color white = {255, 255, 255};
  if (!png_image_finish_read(&image, &white, out.pixels.data(), out.width * out.channels, nullptr))
    throw NotAnImage(path + ": cannot decode PNG (libpng: " + image.message + ")");
  if (rgb) out.pixels = to_planes(out.pixels, out.plane());
  return out;
}

// libjpeg reports errors through error_exit, which must not return: it jumps back to decode_jpeg
// (no C++ object with a destructor is live between setjmp and the jump but the message buffer).
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void jpeg_quiet(j_common_ptr, int) {}  // warnings (e.g. premature end of data) are not errors

Image decode_jpeg(const std::string& path, const std::string& bytes, bool colour, uint64_t limit) {
  jpeg_decompress_struct cinfo;
  JpegError err;
  err.message[0] = '\0';
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_error_exit;
  err.mgr.emit_message = jpeg_quiet;
  Image out;
  // Filled in before setjmp returns a second time; checked after the jump.
  int failure = 0;  // 1 = libjpeg error, 2 = too large, 3 = empty
  uint64_t width = 0, height = 0;
  jpeg_create_decompress(&cinfo);
  if (setjmp(err.jump) == 0) {
    jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    jpeg_read_header(&cinfo, TRUE);
    width = cinfo.image_width, height = cinfo.image_height;
    if (width == 0 || height == 0) failure = 3;
    else if (width * height > limit) failure = 2;
    if (failure == 0) {
      // libjpeg converts YCbCr to grey or RGB (CMYK is refused); a grey file stays one plane.
      const bool rgb = colour && cinfo.jpeg_color_space != JCS_GRAYSCALE;
      cinfo.out_color_space = rgb ? JCS_RGB : JCS_GRAYSCALE;
      jpeg_start_decompress(&cinfo);
      out.width = static_cast<int>(cinfo.output_width);
      out.height = static_cast<int>(cinfo.output_height);
      out.channels = rgb ? 3 : 1;
      out.pixels.resize(out.plane() * static_cast<size_t>(out.channels));
      while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out.pixels.data() + static_cast<size_t>(cinfo.output_scanline) * out.width * out.channels;
        jpeg_read_scanlines(&cinfo, &row, 1);
      }
      jpeg_finish_decompress(&cinfo);
      if (rgb) out.pixels = to_planes(out.pixels, out.plane());
    }
  } else {
    failure = 1;
  }
  jpeg_destroy_decompress(&cinfo);
  if (failure == 1) throw NotAnImage(path + ": cannot decode JPEG (libjpeg: " + err.message + ")");
  if (failure != 0) check_pixel_count(width, height, path, limit);
  return out;
}

// Netpbm PGM (https://netpbm.sourceforge.net/doc/pgm.html): "P2" or "P5", then width, height
// and maxval as decimal text separated by whitespace, with '#' comments to end of line.
class PgmReader {
 public:
  PgmReader(const std::string& path, const std::string& bytes, uint64_t limit) : path_(path), s_(bytes), limit_(limit) {}

  Image read() {
    const bool plain = s_[1] == '2';
    pos_ = 2;
    const uint64_t width = number("width");
    const uint64_t height = number("height");
    const uint64_t maxval = number("maxval");
    check_pixel_count(width, height, path_, limit_);
    if (maxval < 1 || maxval > 65535)
      throw NotAnImage(path_ + ": PGM maxval " + std::to_string(maxval) + " is not in [1, 65535]");

    Image img;
    img.width = static_cast<int>(width);
    img.height = static_cast<int>(height);
    const size_t count = static_cast<size_t>(width * height);
    const size_t bytes_per_sample = maxval < 256 ? 1 : 2;
    if (!plain) {
      // Exactly one whitespace byte separates maxval from the binary raster.
      if (pos_ >= s_.size() || !is_space(s_[pos_]))
        throw NotAnImage(path_ + ": PGM header must end with one whitespace byte before the raster");
      ++pos_;
      const size_t need = count * bytes_per_sample;
      if (s_.size() - pos_ < need)
        throw NotAnImage(path_ + ": PGM raster truncated (needs " + std::to_string(need) +
                    " bytes, file has " + std::to_string(s_.size() - pos_) + ")");
    }
    // Plain samples need a digit each and whitespace between, so a file too short to hold
    // them is refused before the buffer is allocated.
    if (plain && s_.size() - pos_ < 2 * count - 1)
      throw NotAnImage(path_ + ": PGM raster truncated (" + std::to_string(count) +
                  " samples cannot fit in the " + std::to_string(s_.size() - pos_) + " bytes left)");
    img.pixels.resize(count);
    for (size_t i = 0; i < count; ++i) {
      uint64_t v;
      if (plain) {
        v = number("sample");
      } else if (bytes_per_sample == 1) {
        v = static_cast<uint8_t>(s_[pos_++]);
      } else {  // 16-bit samples are big-endian
        v = (uint64_t{static_cast<uint8_t>(s_[pos_])} << 8) | static_cast<uint8_t>(s_[pos_ + 1]);
        pos_ += 2;
      }
      if (v > maxval)
        throw NotAnImage(path_ + ": PGM sample " + std::to_string(v) + " at pixel " + std::to_string(i) +
                    " exceeds maxval " + std::to_string(maxval));
      img.pixels[i] = static_cast<uint8_t>((v * 255 + maxval / 2) / maxval);  // rounded
    }
    return img;
  }

 private:
  static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
  }

  // Skips whitespace and comments, then reads one unsigned decimal number.
  uint64_t number(const char* what) {
    while (pos_ < s_.size()) {
      if (is_space(s_[pos_])) {
        ++pos_;
      } else if (s_[pos_] == '#') {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
    if (pos_ >= s_.size()) throw NotAnImage(path_ + ": PGM ends before its " + what);
    if (s_[pos_] < '0' || s_[pos_] > '9')
      throw NotAnImage(path_ + ": PGM " + what + " is not a number at byte " + std::to_string(pos_));
    uint64_t v = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      v = v * 10 + static_cast<uint64_t>(s_[pos_++] - '0');
      if (v > (uint64_t{1} << 32)) throw NotAnImage(path_ + ": PGM " + what + " is too large");
    }
    return v;
  }

  const std::string& path_;
  const std::string& s_;
  uint64_t limit_;
  size_t pos_ = 0;
};

// One output sample is sum(weight * source[src]) over its taps.
struct Tap {
  int src;
  float weight;
};

// Taps mapping a line of `src` samples to `dst` samples. Shrinking: area average, each output
// covers [j r, (j+1) r) with r = src/dst and weighs each source pixel by its overlap. Enlarging:
// bilinear at the pixel-centre-aligned position x = (j + 0.5) r - 0.5.
std::vector<std::vector<Tap>> resample_taps(int src, int dst) {
  std::vector<std::vector<Tap>> taps(static_cast<size_t>(dst));
  const double r = static_cast<double>(src) / dst;
  for (int j = 0; j < dst; ++j) {
    auto& t = taps[static_cast<size_t>(j)];
    if (dst <= src) {
      const double lo = j * r, hi = (j + 1) * r;
      for (int i = static_cast<int>(lo); i < src && i < hi; ++i) {
        const double overlap = std::min<double>(i + 1, hi) - std::max<double>(i, lo);
        if (overlap > 0) t.push_back({i, static_cast<float>(overlap / r)});
      }
    } else {
      const double x = std::clamp((j + 0.5) * r - 0.5, 0.0, static_cast<double>(src - 1));
      const int i0 = static_cast<int>(x);
      const int i1 = std::min(i0 + 1, src - 1);
      const float f = static_cast<float>(x - i0);
      t.push_back({i0, 1.0f - f});
      t.push_back({i1, f});
    }
  }
  return taps;
}

// Mean of the outermost ring of pixels, each counted once.
double border_mean(const Image& img) {
  const int w = img.width, h = img.height;
  uint64_t sum = 0, count = 0;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      if (y != 0 && y != h - 1 && x != 0 && x != w - 1) x = w - 1;  // jump across the interior
      sum += img.pixels[static_cast<size_t>(y) * w + x];
      ++count;
    }
  }
  return static_cast<double>(sum) / static_cast<double>(count);
}

}  // namespace

Image decode_image(const std::string& bytes, const std::string& name, uint64_t max_pixels, ColorMode mode) {
  const bool colour = mode != ColorMode::grey;
  const int planes = mode == ColorMode::rgb ? 3 : 0;  // 0: as decoded
  static const unsigned char kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPngSignature, 8) == 0)
    return with_planes(decode_png(name, bytes, colour, max_pixels), planes);
  if (bytes.size() >= 3 && static_cast<uint8_t>(bytes[0]) == 0xFF && static_cast<uint8_t>(bytes[1]) == 0xD8 &&
      static_cast<uint8_t>(bytes[2]) == 0xFF)
    return with_planes(decode_jpeg(name, bytes, colour, max_pixels), planes);
  if (bytes.size() >= 2 && bytes[0] == 'P' && (bytes[1] == '2' || bytes[1] == '5'))
    return with_planes(PgmReader(name, bytes, max_pixels).read(), planes);
  throw NotAnImage(name + ": not a PNG, JPEG or PGM (P2/P5) image");
}

Image load_image(const std::string& path, ColorMode mode) {
  return decode_image(read_file(path), path, kMaxImagePixels, mode);
}

bool shows_colour(const Image& img) {
  if (img.channels != 3) return false;
  const size_t n = img.plane();
  const uint8_t *r = img.pixels.data(), *g = r + n, *b = g + n;
  for (size_t i = 0; i < n; ++i)
    if (r[i] != g[i] || g[i] != b[i]) return true;
  return false;
}

Image with_planes(Image img, int channels) {
  if (channels == 3 && img.channels == 1) {
    const size_t n = img.pixels.size();
    img.pixels.resize(3 * n);
    std::copy_n(img.pixels.begin(), n, img.pixels.begin() + static_cast<ptrdiff_t>(n));
    std::copy_n(img.pixels.begin(), n, img.pixels.begin() + static_cast<ptrdiff_t>(2 * n));
    img.channels = 3;
  } else if (channels != 0 && channels != img.channels) {
    throw Error("a picture of " + std::to_string(img.channels) + " channel(s) cannot become " + std::to_string(channels));
  }
  return img;
}

std::vector<uint8_t> to_dataset_format(const Image& img, int rows, int cols) {
  if (rows < 1 || cols < 1)
    throw Error("image size " + std::to_string(rows) + "x" + std::to_string(cols) + " is empty");
  std::vector<uint8_t> canvas(static_cast<size_t>(rows) * static_cast<size_t>(cols), 0);
  const int w = img.width, h = img.height;
  if (w <= 0 || h <= 0) return canvas;
  if (img.channels != 1)
    throw Error("a picture is fitted to the object in grey only (this one has " + std::to_string(img.channels) +
                " channels)");
  if (img.pixels.size() != static_cast<size_t>(w) * static_cast<size_t>(h))
    throw Error("image of " + std::to_string(w) + "x" + std::to_string(h) + " has " +
                std::to_string(img.pixels.size()) + " pixels");

  // 1. Data-set images are light objects on black; a photo on white paper is the reverse.
  const bool invert = border_mean(img) > 127.0;
  auto at = [&](int x, int y) {
    const int v = img.pixels[static_cast<size_t>(y) * w + x];
    return invert ? 255 - v : v;
  };

  // 2. Bounding box [x0, x1] x [y0, y1] of the ink.
  int x0 = w, x1 = -1, y0 = h, y1 = -1;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      if (at(x, y) > kInkThreshold) {
        x0 = std::min(x0, x), x1 = std::max(x1, x);
        y0 = std::min(y0, y), y1 = std::max(y1, y);
      }
  if (x1 < 0) return canvas;  // blank
  const int bw = x1 - x0 + 1, bh = y1 - y0 + 1;

  // 3. One scale for both axes, so the longer side fills the canvas and shapes keep their aspect.
  const double scale = std::min(static_cast<double>(cols) / bw, static_cast<double>(rows) / bh);
  const int nw = std::clamp(static_cast<int>(std::lround(bw * scale)), 1, cols);
  const int nh = std::clamp(static_cast<int>(std::lround(bh * scale)), 1, rows);

  // Separable resampling: crop (bh, bw) -> rows resized (bh, nw) -> both resized (nh, nw).
  const auto tx = resample_taps(bw, nw), ty = resample_taps(bh, nh);
  std::vector<float> wide(static_cast<size_t>(bh) * nw);
  for (int y = 0; y < bh; ++y)
    for (int j = 0; j < nw; ++j) {
      float acc = 0;
      for (const Tap& t : tx[static_cast<size_t>(j)]) acc += t.weight * static_cast<float>(at(x0 + t.src, y0 + y));
      wide[static_cast<size_t>(y) * nw + j] = acc;
    }

  // 4. Centre the box on the canvas.
  const int ox = (cols - nw) / 2, oy = (rows - nh) / 2;
  for (int i = 0; i < nh; ++i)
    for (int j = 0; j < nw; ++j) {
      float acc = 0;
      for (const Tap& t : ty[static_cast<size_t>(i)]) acc += t.weight * wide[static_cast<size_t>(t.src) * nw + j];
      canvas[static_cast<size_t>(oy + i) * cols + (ox + j)] =
          static_cast<uint8_t>(std::clamp(std::lround(acc), 0L, 255L));
    }
  return canvas;
}

std::vector<uint8_t> fit_picture(const Image& img, int rows, int cols, PictureFit fit) {
  return fit == PictureFit::whole ? resize_area(img, rows, cols) : to_dataset_format(img, rows, cols);
}

const char* picture_fit_name(PictureFit fit) { return fit == PictureFit::whole ? "whole" : "object"; }

std::vector<uint8_t> resize_area(const Image& img, int rows, int cols) {
  const int w = img.width, h = img.height;
  if (rows < 1 || cols < 1 || w < 1 || h < 1 || img.channels < 1 ||
      img.pixels.size() != img.plane() * static_cast<size_t>(img.channels))
    throw Error("cannot resize a " + std::to_string(w) + "x" + std::to_string(h) + " image to " +
                std::to_string(cols) + "x" + std::to_string(rows));
  if (w == cols && h == rows) return img.pixels;  // lossless: the same bytes
  // Separable, as to_dataset_format: (h, w) -> rows resized (h, cols) -> both (rows, cols), each
  // plane on its own.
  const auto tx = resample_taps(w, cols), ty = resample_taps(h, rows);
  const size_t out_plane = static_cast<size_t>(rows) * cols;
  std::vector<float> wide(static_cast<size_t>(h) * cols);
  std::vector<uint8_t> out(out_plane * static_cast<size_t>(img.channels));
  for (int ch = 0; ch < img.channels; ++ch) {
    const uint8_t* src = img.pixels.data() + static_cast<size_t>(ch) * img.plane();
    uint8_t* dst = out.data() + static_cast<size_t>(ch) * out_plane;
    for (int y = 0; y < h; ++y)
      for (int j = 0; j < cols; ++j) {
        float acc = 0;
        for (const Tap& t : tx[static_cast<size_t>(j)])
          acc += t.weight * static_cast<float>(src[static_cast<size_t>(y) * w + t.src]);
        wide[static_cast<size_t>(y) * cols + j] = acc;
      }
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < cols; ++j) {
        float acc = 0;
        for (const Tap& t : ty[static_cast<size_t>(i)]) acc += t.weight * wide[static_cast<size_t>(t.src) * cols + j];
        dst[static_cast<size_t>(i) * cols + j] = static_cast<uint8_t>(std::clamp(std::lround(acc), 0L, 255L));
      }
  }
  return out;
}

std::string encode_png(const Image& img) {
  if (img.width <= 0 || img.height <= 0 || (img.channels != 1 && img.channels != 3) ||
      img.pixels.size() != img.plane() * static_cast<size_t>(img.channels))
    throw Error("image of " + std::to_string(img.width) + "x" + std::to_string(img.height) + "x" +
                std::to_string(img.channels) + " has " + std::to_string(img.pixels.size()) + " samples");
  // libpng takes colour interleaved: planes (3, h, w) -> (h, w, 3).
  std::vector<uint8_t> packed;
  if (img.channels == 3) {
    const size_t n = img.plane();
    packed.resize(3 * n);
    for (size_t i = 0; i < n; ++i)
      for (size_t c = 0; c < 3; ++c) packed[i * 3 + c] = img.pixels[c * n + i];
  }
  const uint8_t* data = img.channels == 3 ? packed.data() : img.pixels.data();
  const int stride = img.width * img.channels;
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(img.width);
  image.height = static_cast<png_uint_32>(img.height);
  image.format = img.channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  // First call sizes the buffer, second fills it.
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&image, nullptr, &size, 0, data, stride, nullptr) ||
      size == 0)
    throw Error(std::string("PNG encoding failed (libpng: ") + image.message + ")");
  std::string png(size, '\0');
  if (!png_image_write_to_memory(&image, png.data(), &size, 0, data, stride, nullptr))
    throw Error(std::string("PNG encoding failed (libpng: ") + image.message + ")");
  png.resize(size);
  return png;
}

void write_png(const std::string& path, const Image& img) {
  std::string png;
  try {
    png = encode_png(img);
  } catch (const Error& e) {
    throw Error("cannot write " + path + ": " + e.what());
  }
  write_file_atomic(path, png);
}

}  // namespace tailor
