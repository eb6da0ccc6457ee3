#pragma once
// Image files for `tailor predict`: read a PNG or PGM, turn it into a data-set-style input.
#include <cstdint>
#include <string>
#include <vector>

#include "util/error.hpp"

namespace tailor {

struct GreyImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;  // (height, width), row-major, 0 = black
};

// Images larger than this are refused before any pixel buffer is allocated.
inline constexpr uint64_t kMaxImagePixels = uint64_t{64} << 20;

// The two ways a picture can be refused, so a server can answer 415 or 413.
class NotAnImage : public Error {
 public:
  using Error::Error;
};
class ImageTooLarge : public Error {
 public:
  using Error::Error;
};

// Reads a PNG (any colour type and bit depth, via libpng; colour becomes luminance, alpha is
// composited on white), a JPEG (baseline or progressive, via libjpeg; colour becomes luminance)
// or a PGM (P2 or P5, maxval up to 65535, scaled to 0..255). The format is detected from the
// content, not the extension. Errors name the file.
GreyImage load_image(const std::string& path);
// The same for bytes in memory; `name` stands for the file in errors. Pictures of more than
// max_pixels throw ImageTooLarge (checked from the header, before decoding); bytes that are not
// one of the three formats, or fail to decode, throw NotAnImage.
GreyImage decode_image(const std::string& bytes, const std::string& name,
                       uint64_t max_pixels = kMaxImagePixels);

// Converts a picture the way Fashion-MNIST was made, giving (rows, cols) uint8:
//   1. if the border is lighter than the middle (mean of the outermost pixels > 127), invert,
//      so the object is light on dark;
//   2. crop to the bounding box of pixels above a small threshold;
//   3. scale so the box's longer side fills the canvas (area-average when shrinking, bilinear
//      when enlarging; for a square canvas the longer side becomes `rows`);
//   4. centre it on a black rows x cols canvas.
// A blank image gives an all-black canvas.
std::vector<uint8_t> to_dataset_format(const GreyImage& img, int rows, int cols);

// How a picture becomes a model's input: `object` as Fashion-MNIST's were made (to_dataset_format
// below: inverted if light-backed, cropped to the object, centred), `whole` as an image-folder data
// set's (resize_area below: the whole picture resized, as the training pictures were).
enum class PictureFit { object, whole };
std::vector<uint8_t> fit_picture(const GreyImage& img, int rows, int cols, PictureFit fit);
const char* picture_fit_name(PictureFit fit);  // "object", "whole"

// The whole picture resized to (rows, cols) uint8, nothing cropped or inverted: area averaging
// when shrinking, bilinear when enlarging (each axis on its own). The same size gives the same
// bytes back.
std::vector<uint8_t> resize_area(const GreyImage& img, int rows, int cols);

// An 8-bit greyscale PNG file's bytes, encoded in memory by libpng.
std::string encode_png_grey(const GreyImage& img);
// Writes an 8-bit greyscale PNG (encoded in memory by libpng, then write_file_atomic).
void write_png_grey(const std::string& path, const GreyImage& img);

}  // namespace tailor
