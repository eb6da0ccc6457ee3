#include <algorithm>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/model_options.hpp"
#include "inspect/analysis.hpp"
#include "kernels/kernels.hpp"
#include "train/checkpoint.hpp"
#include "train/evaluate.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace tailor::cli {

namespace {
struct EvalArgs {
  std::string run, data;
  int threads = -1;
  int64_t batch = 0;
  bool json = false;
  std::string predictions, logits;
  std::string tta = "run";
};
}  // namespace

Run add_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* c = app.add_subcommand("eval", "Test accuracy and loss of a saved run on the t10k images");
  c->add_option("run", a->run, "Run directory (or its model.ckpt)")->required();
  c->add_option("--data", a->data, "Data directory (default: the one the run was trained on)");
  c->add_option("--threads", a->threads, "Threads (default: the run's, which reproduces its figures exactly)")
      ->check(CLI::Range(1, 1024));
  c->add_option("--eval-batch", a->batch, "Images per batch (default: the run's)")->check(CLI::Range(1, 65536));
  c->add_flag("--json", a->json, "Print the result as JSON (full precision, as in summary.json)");
  add_tta_option(*c, a->tta);
  c->add_option("--predictions", a->predictions,
                "Also write every test image's prediction to this CSV (index,true,predicted,probability)");
  c->add_option("--logits", a->logits,
                "Also write every test image's logits to this CSV (index, then one column per class, "
                "9 significant digits)");
  return [a, c]() {
    if (!c->parsed()) return -1;
    LoadedModel m = load_model(checkpoint_path(a->run));
    apply_tta_option(m, a->tta);
    const int threads = a->threads > 0 ? resolve_threads(a->threads, "--threads") : m.threads;
    const int64_t batch = a->batch > 0 ? a->batch : m.eval_batch;
    kernels::set_threads(threads);
    const std::string dir = a->data.empty() ? m.data_dir : a->data;
    Dataset test = load_test_set(dir, m.classes, static_cast<int>(m.spec.in_channels), static_cast<int>(m.spec.height), static_cast<int>(m.spec.width));
    if (test.rows != m.spec.height || test.cols != m.spec.width)
      throw Error("test images in " + dir + " are " + std::to_string(test.rows) + "x" + std::to_string(test.cols) +
                  " but the model takes " + std::to_string(m.spec.height) + "x" + std::to_string(m.spec.width));
    std::vector<float> logits;
    const bool keep = !a->predictions.empty() || !a->logits.empty();
    EvalResult r = evaluate(*m.model, test, nullptr, m.norm, batch, keep ? &logits : nullptr, m.tta_flip);
    if (!a->predictions.empty()) {
      const int64_t k = m.spec.classes;
      std::string csv = "index,true,predicted,probability\n";
      for (size_t i = 0; i < test.size(); ++i) {
        const float* z = logits.data() + i * k;
        const int64_t best = std::max_element(z, z + k) - z;
        csv += fmt::format("{},{},{},{:.6f}\n", i, test.labels[i], best, softmax(z, k)[static_cast<size_t>(best)]);
      }
      write_file_atomic(a->predictions, csv);
    }
    if (!a->logits.empty()) {
      const int64_t k = m.spec.classes;
      std::string csv = "index";
      for (int64_t j = 0; j < k; ++j) csv += fmt::format(",{}", j);
      csv += "\n";
      for (size_t i = 0; i < test.size(); ++i) {
        csv += std::to_string(i);
        for (int64_t j = 0; j < k; ++j) csv += fmt::format(",{:.9g}", logits[i * k + j]);
        csv += "\n";
      }
      write_file_atomic(a->logits, csv);
    }
    if (a->json) {
      nlohmann::json j{{"test_acc", r.acc}, {"test_loss", r.loss}, {"count", r.count}, {"threads", threads}};
      std::printf("%s\n", j.dump().c_str());
      return 0;
    }
    std::printf("test accuracy: %.2f%% (%lld/%lld), loss %.4f\n", r.acc,
                static_cast<long long>(std::llround(r.acc * r.count / 100.0)), static_cast<long long>(r.count), r.loss);
    return 0;
  };
}

}  // namespace tailor::cli
