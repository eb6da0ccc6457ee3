#include <algorithm>
#include <memory>
#include <numeric>

#include "cli/commands.hpp"
#include "cli/model_options.hpp"
#include "data/image.hpp"
#include "inspect/analysis.hpp"
#include "kernels/kernels.hpp"
#include "train/checkpoint.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace tailor::cli {

namespace {
struct PredictArgs {
  std::string run;
  std::vector<std::string> images;
  int top = 3;
  std::string tta = "run";
};
}  // namespace

Run add_predict(CLI::App& app) {
  auto a = std::make_shared<PredictArgs>();
  CLI::App* c = app.add_subcommand("predict", "Classify PNG, JPEG or PGM images with a saved run (top classes with probabilities)");
  c->add_option("run", a->run, "Run directory (or its model.ckpt)")->required();
  c->add_option("images", a->images, "Image files (PNG, JPEG or PGM, any size and colour; converted like the data set)")->required();
  c->add_option("--top", a->top, "How many classes to show per image")->check(CLI::Range(1, 1000))->capture_default_str();
  add_tta_option(*c, a->tta);
  return [a, c]() {
    if (!c->parsed()) return -1;
    LoadedModel m = load_model(checkpoint_path(a->run));
    apply_tta_option(m, a->tta);
    kernels::set_threads(1);
    const int k = static_cast<int>(m.spec.classes);
    for (const std::string& path : a->images) {
      const std::vector<float> x = input_for_model(m, fit_for_model(m, decode_for_model(m, read_file(path), path)));
      const std::vector<float> p = softmax(logits_for_model(m, x).data(), k);
      std::vector<int> order(k);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int l, int r) { return p[l] > p[r]; });
      std::printf("%s:", path.c_str());
      for (int j = 0; j < std::min(a->top, k); ++j)
        std::printf("%s %s %.1f%%", j ? "," : "", m.classes[order[j]].c_str(), 100.0 * p[order[j]]);
      std::printf("\n");
    }
    return 0;
  };
}

}  // namespace tailor::cli
