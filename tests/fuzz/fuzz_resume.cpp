// resume.state (train --resume): read_resume_state against a run of fixed sizes. The seeds in
// corpus/resume are states of that shape, made by make_seeds.py.
#include <cstdint>

#include "fuzz_input.hpp"
#include "train/trainer.hpp"
#include "util/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = tailor::fuzz::write_input(tailor::fuzz::with_crc(data, size), "resume.state");
  const tailor::ResumeShape shape{/*values=*/20, /*stats=*/4, /*optim=*/40, /*dropout_streams=*/1, /*replicas=*/1,
                                  /*epochs=*/5};
  try {
    const tailor::ResumeState st = tailor::read_resume_state(path, shape);
    if (st.live.now.values.size() != shape.values || st.live.now.optim.size() != shape.optim ||
        st.live.dropout_rngs.size() != 1 || (!st.run.best.empty() && st.run.best.values.size() != shape.values) ||
        st.run.epoch < 1 || st.run.epoch > shape.epochs)
      __builtin_trap();
  } catch (const tailor::Error&) {
  }
  return 0;
}
