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
  std::string image_size = "auto", color = "auto";
};

// A sheet of the first `per_class` training pictures of each class: one row per class, in label
// order, 2x enlarged, with a 2-pixel grey gap between pictures.
Image sample_sheet(const Dataset& d, int per_class) {
  const int scale = 2, gap = 2, cell_w = d.cols * scale + gap, cell_h = d.rows * scale + gap;
  Image sheet;
  sheet.width = per_class * cell_w + gap;
  sheet.height = d.num_classes * cell_h + gap;
  sheet.channels = d.channels;
  sheet.pixels.assign(sheet.plane() * static_cast<size_t>(d.channels), 96);
  const size_t plane = static_cast<size_t>(d.rows) * static_cast<size_t>(d.cols);
  std::vector<int> shown(static_cast<size_t>(d.num_classes), 0);
  for (size_t i = 0; i < d.size(); ++i) {
    const int k = d.labels[i];
    if (shown[static_cast<size_t>(k)] >= per_class) continue;
    const int x0 = gap + shown[static_cast<size_t>(k)]++ * cell_w, y0 = gap + k * cell_h;
    const uint8_t* px = d.images.data() + i * static_cast<size_t>(d.pixels());
    for (int ch = 0; ch < d.channels; ++ch)
      for (int y = 0; y < d.rows * scale; ++y)
        for (int x = 0; x < d.cols * scale; ++x)
          sheet.pixels[static_cast<size_t>(ch) * sheet.plane() + static_cast<size_t>(y0 + y) * sheet.width + (x0 + x)] =
              px[static_cast<size_t>(ch) * plane + static_cast<size_t>((y / scale) * d.cols + x / scale)];
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
  c->add_option("--image-size", a->image_size, "Convert the pictures to this size, H or HxW, as train --image-size does")
      ->capture_default_str();
  c->add_option("--color", a->color, "grey, rgb or auto, as train --color")
      ->check(CLI::IsMember({"auto", "grey", "gray", "rgb"}))
      ->capture_default_str();
  return [a, c]() {
    if (!c->parsed()) return -1;
    DataOptions opt;
    parse_image_size(a->image_size, &opt.rows, &opt.cols);
    opt.color = parse_data_color(a->color);
    const TrainTestData d = load_train_test(a->dir, opt);
    const bool folder = is_image_folder(a->dir);
    std::vector<uint32_t> all(d.train.size());
    std::iota(all.begin(), all.end(), 0u);
    const Normalization n = compute_normalization(d.train, all);
    std::printf("%s: %s, %zu training and %zu test images of %dx%d (width x height), %s\n", a->dir.c_str(),
                folder ? "an image folder" : "IDX files", d.train.size(), d.test.size(), d.train.cols, d.train.rows,
                d.train.channels == 3 ? "colour (RGB)" : "grey");
    if (n.channels == 1) {
      std::printf("pixel mean %.4f, std %.4f (of 1 = white, over the training images)\n", n.mean[0], n.std[0]);
    } else {
      std::printf("pixel mean red %.4f, green %.4f, blue %.4f; std %.4f, %.4f, %.4f (of 1 = full, over the training "
                  "images)\n",
                  n.mean[0], n.mean[1], n.mean[2], n.std[0], n.std[1], n.std[2]);
    }
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
    write_png(out, sample_sheet(d.train, a->samples));
    std::printf("wrote %s: the first %d training pictures of each class, a row per class in the order above\n",
                out.c_str(), a->samples);
    return 0;
  };
}

}  // namespace tailor::cli
