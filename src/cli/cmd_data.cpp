// `tailor data DIR`: what tailor sees in a data set before anything is trained on it.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <numeric>

#include "cli/commands.hpp"
#include "data/dataset.hpp"
#include "data/image.hpp"
#include "data/image_folder.hpp"
#include "util/error.hpp"

namespace tailor::cli {

namespace {

struct DataArgs {
  std::string dir = kDefaultDataDir;
  std::string out;
  int samples = 8;
};

// A sheet of the first `per_class` training pictures of each class: one row per class, in label
// order, 2x enlarged, with a 2-pixel grey gap between pictures.
GreyImage sample_sheet(const Dataset& d, int per_class) {
  const int scale = 2, gap = 2, cell_w = d.cols * scale + gap, cell_h = d.rows * scale + gap;
  GreyImage sheet;
  sheet.width = per_class * cell_w + gap;
  sheet.height = d.num_classes * cell_h + gap;
  sheet.pixels.assign(static_cast<size_t>(sheet.width) * sheet.height, 96);
  std::vector<int> shown(static_cast<size_t>(d.num_classes), 0);
  for (size_t i = 0; i < d.size(); ++i) {
    const int k = d.labels[i];
    if (shown[static_cast<size_t>(k)] >= per_class) continue;
    const int x0 = gap + shown[static_cast<size_t>(k)]++ * cell_w, y0 = gap + k * cell_h;
    const uint8_t* px = d.images.data() + i * static_cast<size_t>(d.pixels());
    for (int y = 0; y < d.rows * scale; ++y)
      for (int x = 0; x < d.cols * scale; ++x)
        sheet.pixels[static_cast<size_t>(y0 + y) * sheet.width + (x0 + x)] = px[(y / scale) * d.cols + x / scale];
  }
  return sheet;
}

}  // namespace

Run add_data(CLI::App& app) {
  auto a = std::make_shared<DataArgs>();
  CLI::App* c = app.add_subcommand(
      "data", "What tailor sees in a data set (IDX files or an image folder): classes with their train and test "
              "counts, image size and colour, pixel mean and std, and a PNG sheet of samples per class");
  c->add_option("dir", a->dir, "Data directory: IDX files, or DIR/train/<class>/ and DIR/test/<class>/ pictures")
      ->capture_default_str();
  c->add_option("--out", a->out, "The sample sheet (PNG; default: <data directory's name>-samples.png here)");
  c->add_option("--samples", a->samples, "Pictures per class on the sheet")->check(CLI::Range(1, 64))->capture_default_str();
  return [a, c]() {
    if (!c->parsed()) return -1;
    const TrainTestData d = load_train_test(a->dir);
    const bool folder = is_image_folder(a->dir);
    std::vector<uint32_t> all(d.train.size());
    std::iota(all.begin(), all.end(), 0u);
    const Normalization n = compute_normalization(d.train, all);
    std::printf("%s: %s, %zu training and %zu test images of %dx%d, grey\n", a->dir.c_str(),
                folder ? "an image folder" : "IDX files", d.train.size(), d.test.size(), d.train.cols, d.train.rows);
    std::printf("pixel mean %.4f, std %.4f (of 1 = white, over the training images)\n", n.mean, n.std);
    std::printf("%3s  %-24s %8s %8s\n", "#", "class", "train", "test");
    std::vector<size_t> train_count(static_cast<size_t>(d.train.num_classes)), test_count(train_count.size());
    for (uint8_t l : d.train.labels) ++train_count[l];
    for (uint8_t l : d.test.labels)
      if (l < test_count.size()) ++test_count[l];
    for (size_t k = 0; k < d.classes.size(); ++k)
      std::printf("%3zu  %-24s %8zu %8zu\n", k, d.classes[k].c_str(), train_count[k], test_count[k]);
    std::string out = a->out;
    if (out.empty()) {
      std::string name = std::filesystem::path(a->dir).lexically_normal().filename().string();
      if (name.empty()) name = std::filesystem::path(a->dir).lexically_normal().parent_path().filename().string();
      out = (name.empty() ? std::string("data") : name) + "-samples.png";
    }
    write_png_grey(out, sample_sheet(d.train, a->samples));
    std::printf("wrote %s: the first %d training pictures of each class, a row per class in the order above\n",
                out.c_str(), a->samples);
    return 0;
  };
}

}  // namespace tailor::cli
