// `tailor export`: a run's model as ONNX (docs/export.md).
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/model_options.hpp"
#include "export/onnx_export.hpp"
#include "train/checkpoint.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace tailor::cli {

namespace {
struct ExportArgs {
  std::string run, out;
  int opset = 13;
  std::string tta = "run";
};

// The run's summary.json figures worth carrying with the model, when the run has one.
nlohmann::json run_metadata(const std::string& ckpt) {
  nlohmann::json meta = nlohmann::json::object();
  const std::filesystem::path summary = std::filesystem::path(ckpt).parent_path() / "summary.json";
  std::ifstream in(summary);
  if (!in) return meta;
  try {
    const nlohmann::json s = nlohmann::json::parse(in);
    for (const char* key : {"test_acc", "val_acc", "weights", "epochs_run"})
      if (s.contains(key)) meta[key] = s[key];
  } catch (const nlohmann::json::exception&) {
    throw Error(summary.string() + " is not valid JSON (the run's figures cannot go into the model's metadata)");
  }
  return meta;
}
}  // namespace

Run add_export(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  CLI::App* c = app.add_subcommand("export", "Write a saved run's model as ONNX: raw pixels in, logits and "
                                             "probabilities out (docs/export.md)");
  c->add_option("run", a->run, "Run directory (or its model.ckpt)")->required();
  c->add_option("--out", a->out, "The .onnx file to write (default: RUN/model.onnx)");
  c->add_option("--opset", a->opset, "ONNX operator set version, " + std::to_string(kOnnxMinOpset) + " to " +
                                         std::to_string(kOnnxMaxOpset))
      ->capture_default_str();
  add_tta_option(*c, a->tta);
  return [a, c]() {
    if (!c->parsed()) return -1;
    const auto t0 = std::chrono::steady_clock::now();
    const std::string ckpt = checkpoint_path(a->run);
    LoadedModel m = load_model(ckpt);
    apply_tta_option(m, a->tta);
    OnnxExport options;
    options.opset = a->opset;
    options.metadata = run_metadata(ckpt);
    const std::string bytes = onnx_model_bytes(m, options);
    const std::string out =
        a->out.empty() ? (std::filesystem::path(ckpt).parent_path() / "model.onnx").string() : a->out;
    write_file_atomic(out, bytes);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("wrote %s: %s %s%s, opset %d, %zu weights, %.1f KiB, %.0f ms\n", out.c_str(),
                family_name(m.spec.family).c_str(), m.spec.widths_str().c_str(),
                m.tta_flip ? " with test-time flips" : "", a->opset, m.model->num_values(), bytes.size() / 1024.0, ms);
    return 0;
  };
}

}  // namespace tailor::cli
