// Picture decoding (PNG, JPEG, PGM, detected from the content) and the conversion to a model's
// input, as `tailor predict` and `tailor serve` run them.
#include <cstdint>

#include "data/image.hpp"
#include "util/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    // The server's limit on an upload's pixels, smaller: the decoders' memory stays bounded.
    const tailor::Image img =
        tailor::decode_image(std::string(reinterpret_cast<const char*>(data), size), "fuzz input", uint64_t{1} << 22);
    if (img.width < 1 || img.height < 1 || img.pixels.size() != static_cast<size_t>(img.width) * img.height)
      __builtin_trap();
    if (tailor::to_dataset_format(img, 28, 28).size() != 28 * 28) __builtin_trap();
    if (tailor::to_dataset_format(img, 5, 9).size() != 5 * 9) __builtin_trap();
  } catch (const tailor::Error&) {
  }
  return 0;
}
