// `tailor inspect RUN`: where a trained model goes wrong and what it looks at. Writes the
// confusion matrix, per-class figures, the most confident mistakes and saliency maps of chosen
// test images to RUN/inspect/, tied together by index.html.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/model_options.hpp"
#include "inspect/analysis.hpp"
#include "inspect/render.hpp"
#include "kernels/kernels.hpp"
#include "train/checkpoint.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/rng.hpp"

namespace tailor::cli {

namespace {

namespace fs = std::filesystem;

struct InspectArgs {
  std::string run, data, out, images;
  int samples = 10, mistakes = 24, patch = 4, stride = 2, threads = -1, columns = 6;
  uint64_t seed = 1;
  std::string tta = "run";
};

// "3,17,42" -> {3, 17, 42}, each inside the test set of n images; repeats are dropped.
std::vector<int64_t> parse_indices(const std::string& text, int64_t n) {
  std::vector<int64_t> out;
  size_t a = 0;
  while (a <= text.size()) {
    size_t b = text.find(',', a);
    if (b == std::string::npos) b = text.size();
    const std::string tok = text.substr(a, b - a);
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(tok, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (tok.empty() || used != tok.size())
      throw Error("--images " + text + ": '" + tok + "' is not a test image index");
    if (v < 0 || v >= n)
      throw Error("--images " + std::to_string(v) + " is outside the test set (" + std::to_string(n) +
                  " images, indices 0 to " + std::to_string(n - 1) + ")");
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
    a = b + 1;
  }
  return out;
}

// Stratified and seeded: one image of each class in turn (each class's images in a seeded
// shuffle) until `count` are chosen or the set runs out. Ten classes and count 10: one of each.
std::vector<int64_t> sample_images(const Dataset& d, int count, uint64_t seed) {
  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(std::max(d.num_classes, 1)));
  for (size_t i = 0; i < d.size(); ++i) by_class[std::min<size_t>(d.labels[i], by_class.size() - 1)].push_back(static_cast<int64_t>(i));
  Rng rng(seed);
  for (auto& v : by_class)
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
  std::vector<int64_t> out;
  for (size_t round = 0; static_cast<int>(out.size()) < count; ++round) {
    bool any = false;
    for (const auto& v : by_class)
      if (round < v.size() && static_cast<int>(out.size()) < count) out.push_back(v[round]), any = true;
    if (!any) break;
  }
  return out;
}

Tile tile(const Dataset& d, int64_t i) {
  const auto* px = d.images.data() + static_cast<size_t>(i) * d.pixels();
  return {d.rows, d.cols, std::vector<uint8_t>(px, px + d.pixels()), d.channels};
}

}  // namespace

Run add_inspect(CLI::App& app) {
  auto a = std::make_shared<InspectArgs>();
  CLI::App* c = app.add_subcommand(
      "inspect",
      "Explain a saved run on its test set: confusion matrix, per-class precision and recall, the most confident "
      "mistakes, and saliency maps (gradient and occlusion) of chosen images; writes PNG, CSV and index.html");
  c->add_option("run", a->run, "Run directory (or its model.ckpt)")->required();
  c->add_option("--data", a->data, "Data directory holding t10k-* (default: the one the run was trained on)");
  c->add_option("--out", a->out, "Output directory (default: RUN/inspect)");
  c->add_option("--images", a->images,
                "Test image indices to explain with saliency maps, comma-separated, e.g. 3,17,42 (0-based; overrides --samples)");
  c->add_option("--samples", a->samples,
                "When --images is not given: how many test images to explain, one per class in turn, drawn with --seed")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  c->add_option("--seed", a->seed, "Seed of the sampled images")->capture_default_str();
  c->add_option("--mistakes", a->mistakes, "Size of the gallery of the most confident mistakes")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  c->add_option("--occlusion-patch", a->patch, "Side in pixels of the black square moved over the image for occlusion")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  c->add_option("--occlusion-stride", a->stride, "Step in pixels between occlusion squares")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  add_tta_option(*c, a->tta);
  c->add_option("--threads", a->threads, "Threads (default: the run's, which reproduces its test accuracy exactly)")
      ->check(CLI::Range(1, 1024));
  return [a, c]() {
    if (!c->parsed()) return -1;
    if (!fs::exists(a->run)) throw Error("run " + a->run + " does not exist");
    std::string run_dir = fs::is_directory(a->run) ? a->run : fs::path(a->run).parent_path().string();
    while (run_dir.size() > 1 && run_dir.back() == '/') run_dir.pop_back();
    if (run_dir.empty()) run_dir = ".";
    LoadedModel m = load_model(checkpoint_path(a->run));
    apply_tta_option(m, a->tta);
    const int threads = a->threads > 0 ? resolve_threads(a->threads, "--threads") : m.threads;
    const int64_t batch = m.eval_batch;
    kernels::set_threads(threads);
    const std::string dir = a->data.empty() ? m.data_dir : a->data;
    const Dataset test = load_test_set(dir, m.classes, static_cast<int>(m.spec.in_channels), static_cast<int>(m.spec.height), static_cast<int>(m.spec.width));
    if (test.rows != m.spec.height || test.cols != m.spec.width)
      throw Error("test images in " + dir + " are " + std::to_string(test.rows) + "x" + std::to_string(test.cols) +
                  " but the model takes " + std::to_string(m.spec.height) + "x" + std::to_string(m.spec.width));
    const int64_t n = static_cast<int64_t>(test.size());
    if (n == 0) throw Error("the test set in " + dir + " is empty");
    // Every value is checked before anything is written.
    const std::vector<int64_t> chosen = a->images.empty() ? sample_images(test, a->samples, a->seed) : parse_indices(a->images, n);
    if (a->patch > std::min(test.rows, test.cols))
      throw Error("--occlusion-patch " + std::to_string(a->patch) + " is larger than the " + std::to_string(test.rows) +
                  "x" + std::to_string(test.cols) + " images");
    const std::string out = a->out.empty() ? run_dir + "/inspect" : a->out;
    ensure_writable_dir(out);
    ensure_writable_dir(out + "/saliency");
    const std::vector<std::string>& classes = m.classes;
    auto name = [&](int64_t k) { return classes.at(static_cast<size_t>(k)); };

    InspectPage page;
    page.run = run_dir;
    page.model = family_name(m.spec.family) + ", " + m.spec.widths_str();
    page.weights = static_cast<int64_t>(m.model->num_values());
    page.data_dir = dir;
    page.classes = classes;
    page.patch = a->patch;
    page.stride = a->stride;
    std::printf("inspect %s: %s (%lld weights), %lld test images from %s, %d threads\n", run_dir.c_str(), page.model.c_str(),
                static_cast<long long>(page.weights), static_cast<long long>(n), dir.c_str(), threads);
    std::fflush(stdout);

    const Predictions p = predict_dataset(*m.model, test, m.norm, batch, m.tta_flip);
    page.counts = confusion_counts(p);
    page.stats = class_stats(page.counts, p.classes);
    int64_t correct = 0;
    for (int64_t k = 0; k < p.classes; ++k) correct += page.counts[static_cast<size_t>(k * p.classes + k)];
    const double acc = 100.0 * static_cast<double>(correct) / static_cast<double>(n);
    auto write = [&](const std::string& file, const std::string& text) {
      write_file_atomic(out + "/" + file, text);
      page.files.push_back(file);
    };
    write("confusion.csv", confusion_csv(page.counts, classes));
    write("confusion_normalised.csv", confusion_normalised_csv(page.counts, classes));
    write("per_class.csv", per_class_csv(page.stats, classes));
    confusion_png(out + "/confusion.png", page.counts, classes,
                  fmt::format("Confusion matrix: test accuracy {:.2f}% ({} of {} images)", acc, correct, n));
    page.files.push_back("confusion.png");
    std::printf("confusion matrix and per-class figures: test accuracy %.2f%% (%lld/%lld)\n", acc,
                static_cast<long long>(correct), static_cast<long long>(n));
    std::fflush(stdout);

    // The gallery of confident mistakes.
    std::string csv = "index,true,predicted,probability\n";
    std::vector<GalleryItem> gallery;
    for (int64_t i : confident_mistakes(p, a->mistakes)) {
      const int truth = p.truth[static_cast<size_t>(i)], pred = p.pred[static_cast<size_t>(i)];
      const double prob = p.prob(i, pred);
      page.mistakes.push_back({i, truth, pred, prob, ""});
      csv += fmt::format("{},{},{},{:.6f}\n", i, csv_field(name(truth)), csv_field(name(pred)), prob);
      gallery.push_back({tile(test, i),
                         {"true: " + name(truth), fmt::format("pred: {} {:.1f}%", name(pred), 100 * prob), fmt::format("test image {}", i)}});
    }
    write("mistakes.csv", csv);
    gallery_png(out + "/mistakes.png",
                fmt::format("The {} most confident mistakes (of {}): true class, predicted class and its probability",
                            gallery.size(), n - correct),
                gallery, a->columns, "No test image was misclassified.");
    page.files.push_back("mistakes.png");
    std::printf("mistakes: %zu of %lld in the gallery\n", gallery.size(), static_cast<long long>(n - correct));
    std::fflush(stdout);

    // Saliency maps explain the predicted class; occluded squares are black, in the run's normalisation.
    std::vector<float> fill;
    for (int ch = 0; ch < m.norm.channels; ++ch) fill.push_back((0.0f - m.norm.mean[ch]) / m.norm.std[ch]);
    std::vector<float> x(static_cast<size_t>(test.pixels()));
    for (size_t j = 0; j < chosen.size(); ++j) {
      const int64_t i = chosen[j];
      const int truth = p.truth[static_cast<size_t>(i)], pred = p.pred[static_cast<size_t>(i)];
      const double prob = p.prob(i, pred);
      const uint8_t* px = test.images.data() + static_cast<size_t>(i) * test.pixels();
      to_model_input(px, x.size(), m.norm, x.data());
      SaliencyFigure f;
      f.image = tile(test, i);
      f.gradient = normalise_map(gradient_saliency(*m.model, x.data(), pred, test.channels));
      const std::vector<float> occ = occlusion_saliency(*m.model, x.data(), pred, a->patch, a->stride, fill, test.rows, test.cols);
      float peak = 0;
      for (float v : occ) peak = std::max(peak, std::fabs(v));
      f.occlusion = normalise_map(occ);
      f.title = fmt::format("test image {}: true {}, predicted {} {:.1f}%", i, name(truth), name(pred), 100 * prob);
      f.subtitle = fmt::format("both maps explain the predicted class; occlusion: {0}x{0} black squares, stride {1}; "
                               "black line: the object's outline",
                               a->patch, a->stride);
      f.gradient_label = "|d score / d pixel|\n1 = the largest";
      f.occlusion_label = fmt::format("drop in p(predicted) when covered\n1 = {:.3f}; red: for it, blue: against", peak);
      const std::string file = "saliency/" + std::to_string(i) + ".png";
      saliency_png(out + "/" + file, f);
      page.saliency.push_back({i, truth, pred, prob, file});
      page.files.push_back(file);
      std::printf("saliency %zu/%zu: test image %lld (true %s, predicted %s %.1f%%)\n", j + 1, chosen.size(),
                  static_cast<long long>(i), name(truth).c_str(), name(pred).c_str(), 100 * prob);
      std::fflush(stdout);
    }

    write_file_atomic(out + "/index.html", inspect_html(page));
    const ConfusedPair worst = most_confused(page.counts, p.classes);
    std::printf("wrote %s/index.html and %zu files beside it\n", out.c_str(), page.files.size());
    std::printf("test accuracy %.2f%% (%lld/%lld)", acc, static_cast<long long>(correct), static_cast<long long>(n));
    if (worst.count > 0)
      std::printf("; most confused: %s predicted as %s, %lld times (%.1f%% of %s)", name(worst.truth).c_str(),
                  name(worst.pred).c_str(), static_cast<long long>(worst.count), worst.row_percent, name(worst.truth).c_str());
    std::printf("\n");
    return 0;
  };
}

}  // namespace tailor::cli
