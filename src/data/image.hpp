#pragma once
// Picture files: read a PNG, JPEG or PGM in grey or colour, turn it into a data-set-style input.
#include <cstdint>
#include <string>
#include <vector>

#include "util/error.hpp"

namespace tailor {

// A decoded picture: `channels` planes (1 grey, 3 red/green/blue) of (height, width) bytes each,
// one plane after the other (the model's input order), rows top first, 0 = dark.
struct Image {
  int width = 0, height = 0, channels = 1;
  std::vector<uint8_t> pixels;  // (channels, height, width)
  size_t plane() const { return static_cast<size_t>(width) * static_cast<size_t>(height); }
};

// How a picture's colour is decoded: `grey` as luminance (libpng's and libjpeg's own conversion),
// `rgb` as three planes (a grey file's one plane repeated), `keep` as the file stores it (three
// planes for a colour PNG or JPEG, one for a grey one or a PGM).
enum class ColorMode { grey, rgb, keep };

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
// `mode` other than grey decodes colour as described at ColorMode.
Image load_image(const std::string& path, ColorMode mode = ColorMode::grey);
// The same for bytes in memory; `name` stands for the file in errors. Pictures of more than
// max_pixels throw ImageTooLarge (checked from the header, before decoding); bytes that are not
// one of the three formats, or fail to decode, throw NotAnImage.
Image decode_image(const std::string& bytes, const std::string& name, uint64_t max_pixels = kMaxImagePixels,
                   ColorMode mode = ColorMode::grey);

// Whether a picture shows colour: three planes that differ somewhere (a colour file whose
// pixels are all grey does not).
bool shows_colour(const Image& img);
// The picture in `channels` planes: 1 and 3 unchanged; a grey picture to 3 repeats its plane.
// (3 to 1 is decode_image's job: it is the formats' own luminance.)
Image with_planes(Image img, int channels);

// Converts a picture the way Fashion-MNIST was made, giving (rows, cols) uint8:
//   1. if the border is lighter than the middle (mean of the outermost pixels > 127), invert,
//      so the object is light on dark;
//   2. crop to the bounding box of pixels above a small threshold;
//   3. scale so the box's longer side fills the canvas (area-average when shrinking, bilinear
//      when enlarging; for a square canvas the longer side becomes `rows`);
//   4. centre it on a black rows x cols canvas.
// A blank image gives an all-black canvas. Grey pictures only (an Error otherwise).
std::vector<uint8_t> to_dataset_format(const Image& img, int rows, int cols);

// How a picture becomes a model's input: `object` as Fashion-MNIST's were made (to_dataset_format
// below: inverted if light-backed, cropped to the object, centred), `whole` as an image-folder data
// set's (resize_area below: the whole picture resized, as the training pictures were).
enum class PictureFit { object, whole };
std::vector<uint8_t> fit_picture(const Image& img, int rows, int cols, PictureFit fit);
const char* picture_fit_name(PictureFit fit);  // "object", "whole"

// The whole picture resized to (rows, cols) uint8 per channel (channels*rows*cols bytes, planes
// in turn), nothing cropped or inverted: area averaging when shrinking, bilinear when enlarging
// (each axis on its own). The same size gives the same bytes back.
std::vector<uint8_t> resize_area(const Image& img, int rows, int cols);

// An 8-bit PNG file's bytes (grey for one plane, RGB for three), encoded in memory by libpng.
std::string encode_png(const Image& img);
// Writes that PNG (encoded in memory by libpng, then write_file_atomic).
void write_png(const std::string& path, const Image& img);

}  // namespace tailor
