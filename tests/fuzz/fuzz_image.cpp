// Picture decoding (PNG, JPEG, PGM, detected from the content) in grey and in colour, and the
// conversions to a model's input, as `tailor predict`, `tailor serve` and image folders run them.
#include <cstdint>

#include "data/image.hpp"
#include "util/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    // The server's limit on an upload's pixels, smaller: the decoders' memory stays bounded.
    const tailor::Image img =
        tailor::decode_image(std::string(reinterpret_cast<const char*>(data), size), "fuzz input", uint64_t{1} << 22);
    if (img.width < 1 || img.height < 1 || img.channels != 1 ||
        img.pixels.size() != static_cast<size_t>(img.width) * img.height)
      __builtin_trap();
    if (tailor::to_dataset_format(img, 28, 28).size() != 28 * 28) __builtin_trap();
    if (tailor::to_dataset_format(img, 5, 9).size() != 5 * 9) __builtin_trap();
  } catch (const tailor::Error&) {
  }
  for (tailor::ColorMode mode : {tailor::ColorMode::keep, tailor::ColorMode::rgb}) {
    try {
      const tailor::Image img = tailor::decode_image(std::string(reinterpret_cast<const char*>(data), size),
                                                     "fuzz input", uint64_t{1} << 22, mode);
      const size_t c = static_cast<size_t>(img.channels);
      if ((c != 1 && c != 3) || (mode == tailor::ColorMode::rgb && c != 3) || img.pixels.size() != c * img.plane())
        __builtin_trap();
      if (tailor::resize_area(img, 7, 5).size() != c * 35) __builtin_trap();
      if (tailor::shows_colour(img) && c != 3) __builtin_trap();
    } catch (const tailor::Error&) {
    }
  }
  return 0;
}
