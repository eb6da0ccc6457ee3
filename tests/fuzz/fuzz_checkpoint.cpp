// model.ckpt: read_checkpoint and load_model (the model built from the file's description and
// filled with its arrays), then one forward pass when the model is small, as eval and predict run it.
#include <cstdint>
#include <vector>

#include "fuzz_input.hpp"
#include "train/checkpoint.hpp"
#include "util/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = tailor::fuzz::write_input(tailor::fuzz::with_crc(data, size), "model.ckpt");
  try {
    tailor::LoadedModel m = tailor::load_model(path);
    const int64_t pixels = m.spec.in_channels * m.spec.height * m.spec.width;
    if (tailor::training_bytes(m.spec, 1) < (uint64_t{64} << 20)) {
      std::vector<float> x(static_cast<size_t>(pixels), 0.5f);
      tailor::ConstView z = m.model->infer(tailor::ConstView(x.data(), tailor::Shape{1, pixels}));
      if (z.shape.numel() != m.spec.classes) __builtin_trap();
    }
  } catch (const tailor::Error&) {
  }
  return 0;
}
