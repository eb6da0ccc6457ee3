#include "data/dataset.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <limits>

#include "data/idx.hpp"
#include "data/image.hpp"
#include "data/image_folder.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/names.hpp"
#include "util/rng.hpp"

namespace tailor {
namespace {

namespace fs = std::filesystem;

// <dir>/<prefix>-<kind>-idx<ndim>-ubyte, with ".gz" preferred when both exist.
std::string data_file(const std::string& dir, const std::string& prefix, const std::string& kind,
                      int ndim) {
  const std::string raw =
      (fs::path(dir) / (prefix + "-" + kind + "-idx" + std::to_string(ndim) + "-ubyte")).string();
  const std::string gz = raw + ".gz";
  std::error_code ec;
  if (fs::exists(gz, ec)) return gz;
  if (fs::exists(raw, ec)) return raw;
  throw Error("data file " + gz + " not found (nor " + raw + ")");
}

int to_int(uint32_t v, const std::string& what, const std::string& path) {
  if (v > static_cast<uint32_t>(std::numeric_limits<int>::max()))
    throw Error(path + ": " + what + " " + std::to_string(v) + " is too large");
  return static_cast<int>(v);
}

}  // namespace

Dataset load_dataset(const std::string& dir, const std::string& prefix, int num_classes_hint) {
  if (num_classes_hint < 0 || num_classes_hint > 256)
    throw Error("number of classes " + std::to_string(num_classes_hint) + " is not in [0, 256]");
  const std::string image_path = data_file(dir, prefix, "images", 3);
  const std::string label_path = data_file(dir, prefix, "labels", 1);
  IdxArray images = read_idx(image_path, 3);  // (n, rows, cols)
  IdxArray labels = read_idx(label_path, 1);  // (n)
  if (images.dims[0] != labels.dims[0])
    throw Error(image_path + " holds " + std::to_string(images.dims[0]) + " images but " +
                label_path + " holds " + std::to_string(labels.dims[0]) + " labels");

  Dataset d;
  d.rows = to_int(images.dims[1], "row count", image_path);
  d.cols = to_int(images.dims[2], "column count", image_path);
  d.images = std::move(images.data);
  d.labels = std::move(labels.data);

  if (num_classes_hint == 0) {
    const int max_label = *std::max_element(d.labels.begin(), d.labels.end());
    d.num_classes = std::max(2, max_label + 1);
  } else {
    d.num_classes = num_classes_hint;
    for (size_t i = 0; i < d.labels.size(); ++i) {
      if (d.labels[i] >= num_classes_hint)
        throw Error("label " + std::to_string(d.labels[i]) + " at index " + std::to_string(i) +
                    " out of range [0, " + std::to_string(num_classes_hint) + ") in " + label_path);
    }
  }
  return d;
}

namespace {

// classes.txt: one name a line (a final newline, \r\n endings and trailing blanks allowed);
// empty or repeated names, fewer than two or more than 256 lines are errors naming the line.
std::vector<std::string> read_class_file(const std::string& path) {
  const std::string text = read_file(path);
  std::vector<std::string> names;
  size_t at = 0;
  int line = 0;
  while (at < text.size()) {
    const size_t end = std::min(text.find('\n', at), text.size());
    std::string name = text.substr(at, end - at);
    at = end + 1;
    ++line;
    while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back()))) name.pop_back();
    if (name.empty()) throw Error(path + ":" + std::to_string(line) + ": empty class name (one name a line)");
    if (std::find(names.begin(), names.end(), name) != names.end())
      throw Error(path + ":" + std::to_string(line) + ": class '" + name + "' is named twice");
    names.push_back(std::move(name));
    if (names.size() > 256) throw Error(path + " names more than 256 classes");
  }
  if (names.size() < 2) throw Error(path + " names " + std::to_string(names.size()) + " class(es); a data set needs two or more");
  return names;
}

// CRC-32 of Fashion-MNIST's 60,000 training labels (Debian's dataset-fashion-mnist): the files
// that get its class names without a classes.txt.
constexpr uint32_t kFashionMnistTrainLabelsCrc = 0x2ed6e46au;

}  // namespace

namespace {
constexpr NameTable<DataColor> kColorNames[] = {
    {"auto", DataColor::automatic}, {"grey", DataColor::grey}, {"gray", DataColor::grey}, {"rgb", DataColor::rgb}};
}  // namespace

DataColor parse_data_color(const std::string& name) { return parse_name(kColorNames, name, "--color"); }
const char* data_color_name(DataColor c) {
  for (const auto& [n, v] : kColorNames)
    if (v == c) return n;
  return "auto";
}
std::vector<std::string> data_color_names() { return names_of(kColorNames); }

void parse_image_size(const std::string& text, int* rows, int* cols) {
  if (text.empty() || text == "auto") {
    *rows = *cols = 0;
    return;
  }
  auto side = [&](const std::string& s) {
    int v = 0;
    bool ok = !s.empty() && s.size() <= 4;
    for (char ch : s) ok = ok && ch >= '0' && ch <= '9', v = ok ? v * 10 + (ch - '0') : v;
    if (!ok || v < 1 || v > 1024)
      throw Error("--image-size '" + text + "' is not a size such as 32 or 24x32 (each side 1 to 1024 pixels)");
    return v;
  };
  const size_t x = text.find('x');
  *rows = side(text.substr(0, x));
  *cols = x == std::string::npos ? *rows : side(text.substr(x + 1));
}

std::string image_size_name(int rows, int cols) {
  return rows <= 0 || cols <= 0 ? "auto" : std::to_string(rows) + "x" + std::to_string(cols);
}

namespace {

// An IDX set's images resized to (rows, cols), in place; the same size changes nothing.
void resize_idx(Dataset& d, int rows, int cols) {
  if (rows <= 0 || (rows == d.rows && cols == d.cols)) return;
  std::vector<uint8_t> out;
  out.reserve(d.size() * static_cast<size_t>(rows) * static_cast<size_t>(cols));
  Image img;
  img.width = d.cols, img.height = d.rows;
  const size_t p = static_cast<size_t>(d.pixels());
  for (size_t i = 0; i < d.size(); ++i) {
    img.pixels.assign(d.images.begin() + static_cast<ptrdiff_t>(i * p), d.images.begin() + static_cast<ptrdiff_t>((i + 1) * p));
    const auto px = resize_area(img, rows, cols);
    out.insert(out.end(), px.begin(), px.end());
  }
  d.images = std::move(out);
  d.rows = rows, d.cols = cols;
}

}  // namespace

TrainTestData load_train_test(const std::string& dir, const DataOptions& opt) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error("data directory " + dir +
                " not found (install Debian's dataset-fashion-mnist package: apt-get install "
                "dataset-fashion-mnist, or pass --data DIR)");
  if (is_image_folder(dir)) return load_image_folder(dir, opt);
  if (opt.color == DataColor::rgb)
    throw Error("--color rgb: " + dir + " holds IDX files, which are grey (use --color grey or auto)");
  // predict fits a picture's object into the model's size keeping its aspect, as the IDX images
  // were made: a stretched training set would not match it.
  auto check_aspect = [&](const Dataset& d) {
    if (opt.rows > 0 && static_cast<int64_t>(opt.rows) * d.cols != static_cast<int64_t>(opt.cols) * d.rows)
      throw Error("--image-size " + image_size_name(opt.rows, opt.cols) + ": the IDX images in " + dir + " are " +
                  image_size_name(d.rows, d.cols) + "; resize them keeping that shape (for example --image-size " +
                  std::to_string(std::min(opt.rows, opt.cols)) + ")");
  };
  TrainTestData out;
  const std::string class_file = (fs::path(dir) / "classes.txt").string();
  const bool named = fs::exists(class_file, ec);
  if (named) out.classes = read_class_file(class_file);
  try {
    out.train = load_dataset(dir, "train", named ? static_cast<int>(out.classes.size()) : 0);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + (named ? " (" + class_file + " names " + std::to_string(out.classes.size()) +
                                                     " classes)" : ""));
  }
  // Every class has training images: a gap in the labels is a damaged file or a wrong classes.txt.
  std::vector<size_t> count(static_cast<size_t>(out.train.num_classes), 0);
  for (uint8_t l : out.train.labels) ++count[l];
  for (size_t k = 0; k < count.size(); ++k)
    if (count[k] == 0)
      throw Error(data_file(dir, "train", "labels", 1) + ": no training image has label " + std::to_string(k) +
                  (named ? ", though " + class_file + " names " + std::to_string(count.size()) + " classes"
                         : ", though labels run up to " + std::to_string(count.size() - 1) +
                               " (a damaged label? a classes.txt beside the files names the classes)"));
  if (!named) {
    const uint32_t crc = static_cast<uint32_t>(
        crc32(0L, out.train.labels.data(), static_cast<uInt>(out.train.labels.size())));
    out.classes = out.train.num_classes == 10 && crc == kFashionMnistTrainLabelsCrc
                      ? fashion_mnist_class_names()
                      : numbered_class_names(out.train.num_classes);
  }
  out.test = load_dataset(dir, "t10k", out.train.num_classes);
  if (out.test.rows != out.train.rows || out.test.cols != out.train.cols)
    throw Error(data_file(dir, "t10k", "images", 3) + " holds " + std::to_string(out.test.rows) +
                "x" + std::to_string(out.test.cols) + " images but the training set's are " +
                std::to_string(out.train.rows) + "x" + std::to_string(out.train.cols));
  check_aspect(out.train);
  resize_idx(out.train, opt.rows, opt.cols);
  resize_idx(out.test, opt.rows, opt.cols);
  return out;
}

Dataset load_test_set(const std::string& dir, const std::vector<std::string>& classes, int channels, int rows,
                      int cols) {
  if (dir.empty())
    throw Error("the run was trained on pictures given in memory (the library or the Python module), so it names no "
                "data directory: pass one with --data");
  if (is_image_folder(dir)) return load_image_folder_test(dir, classes, channels, rows, cols);
  if (channels != 1)
    throw Error(dir + " holds IDX files, which are grey, but the model takes " + std::to_string(channels) +
                " channels (pass the data set it was trained on with --data)");
  Dataset d = load_dataset(dir, "t10k", static_cast<int>(classes.size()));
  resize_idx(d, rows, cols);
  return d;
}

Split stratified_split(const std::vector<uint8_t>& labels, int num_classes, size_t val_count,
                       uint64_t seed) {
  const size_t n = labels.size();
  if (num_classes < 1 || num_classes > 256)
    throw Error("number of classes " + std::to_string(num_classes) + " is not in [1, 256]");
  if (n > std::numeric_limits<uint32_t>::max())
    throw Error("data set of " + std::to_string(n) + " images is too large to index");
  if (n == 0) throw Error("cannot split an empty data set");
  if (val_count >= n)
    throw Error("--val " + std::to_string(val_count) + " must be smaller than the " +
                std::to_string(n) + " training images");

  // by_class[k]: indices of class k, ascending.
  std::vector<std::vector<uint32_t>> by_class(static_cast<size_t>(num_classes));
  for (size_t i = 0; i < n; ++i) {
    if (labels[i] >= num_classes)
      throw Error("label " + std::to_string(labels[i]) + " at index " + std::to_string(i) +
                  " out of range [0, " + std::to_string(num_classes) + ")");
    by_class[labels[i]].push_back(static_cast<uint32_t>(i));
  }

  // Largest remainder (Hamilton): quota_k = floor(v c_k / n), then the v - sum(quota) leftover
  // places go to the largest remainders (v c_k mod n), ties to the lower class. Each share is
  // then within 1 of v c_k / n, and never above c_k since v < n.
  std::vector<size_t> quota(by_class.size());
  // n < 2^32 and v < n, so v c_k < 2^64.
  std::vector<std::pair<uint64_t, size_t>> remainder;  // (remainder, class)
  size_t assigned = 0;
  for (size_t k = 0; k < by_class.size(); ++k) {
    const uint64_t share = uint64_t{val_count} * by_class[k].size();
    quota[k] = static_cast<size_t>(share / n);
    assigned += quota[k];
    remainder.emplace_back(share % n, k);
  }
  std::stable_sort(remainder.begin(), remainder.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t i = 0; assigned < val_count; ++i, ++assigned) ++quota[remainder[i].second];

  // Partial Fisher-Yates per class: the first quota_k positions of the shuffle go to val.
  Rng rng(seed);
  Split split;
  split.val.reserve(val_count);
  split.train.reserve(n - val_count);
  for (size_t k = 0; k < by_class.size(); ++k) {
    std::vector<uint32_t>& idx = by_class[k];
    for (size_t i = 0; i < quota[k]; ++i) std::swap(idx[i], idx[i + rng.below(idx.size() - i)]);
    split.val.insert(split.val.end(), idx.begin(), idx.begin() + static_cast<ptrdiff_t>(quota[k]));
    split.train.insert(split.train.end(), idx.begin() + static_cast<ptrdiff_t>(quota[k]), idx.end());
  }
  std::sort(split.val.begin(), split.val.end());
  std::sort(split.train.begin(), split.train.end());
  return split;
}

Normalization compute_normalization(const Dataset& d, const std::vector<uint32_t>& indices) {
  if (indices.empty()) throw Error("cannot compute normalization over zero images");
  if (d.channels != 1 && d.channels != 3)
    throw Error("a data set of " + std::to_string(d.channels) + " channels is not supported (1 or 3)");
  const size_t p = static_cast<size_t>(d.pixels()), plane = p / static_cast<size_t>(d.channels);
  // Exact integer sums: at most 2^32 images of 2^30 pixels would overflow, far beyond any input.
  std::array<uint64_t, kMaxChannels> sum{}, sum_sq{};
  for (uint32_t i : indices) {
    if (i >= d.size())
      throw Error("image index " + std::to_string(i) + " outside the data set of " +
                  std::to_string(d.size()));
    const uint8_t* img = d.images.data() + i * p;
    for (size_t c = 0; c < static_cast<size_t>(d.channels); ++c)
      for (size_t j = c * plane; j < (c + 1) * plane; ++j) {
        sum[c] += img[j];
        sum_sq[c] += uint64_t{img[j]} * img[j];
      }
  }
  Normalization norm;
  norm.channels = d.channels;
  const double count = static_cast<double>(indices.size()) * static_cast<double>(plane);
  for (int c = 0; c < d.channels; ++c) {
    const double mean = static_cast<double>(sum[c]) / count;  // in pixel units
    const double var = std::max(0.0, static_cast<double>(sum_sq[c]) / count - mean * mean);
    norm.mean[c] = static_cast<float>(mean / 255.0);
    const double sd = std::sqrt(var) / 255.0;
    norm.std[c] = sd > 1e-6 ? static_cast<float>(sd) : 1.0f;
  }
  return norm;
}

void gather_batch(const Dataset& d, const uint32_t* idx, size_t n, const Normalization& norm, float* out,
                  int32_t* out_labels) {
  // to_model_input: one multiply-add per pixel (a table lookup does not vectorise: it cost 8%
  // of an FCN epoch).
  const size_t p = static_cast<size_t>(d.pixels());
  if (norm.channels != d.channels)
    throw Error("a normalisation of " + std::to_string(norm.channels) + " channel(s) for a data set of " +
                std::to_string(d.channels));
  for (size_t b = 0; b < n; ++b)
    if (idx[b] >= d.size())
      throw Error("image index " + std::to_string(idx[b]) + " outside the data set of " +
                  std::to_string(d.size()));
  // Rows over the threads (the images are scattered in memory: two cores wait on two at once).
  // Each pixel's value does not depend on the split.
#pragma omp parallel for schedule(static) if (n * p >= 16384)
  for (size_t b = 0; b < n; ++b) {
    const uint32_t i = idx[b];
    const uint8_t* img = d.images.data() + i * p;
    float* dst = out + b * p;
    to_model_input(img, p, norm, dst);
    out_labels[b] = d.labels[i];
  }
}

std::vector<std::string> fashion_mnist_class_names() {
  return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
}

std::vector<std::string> numbered_class_names(int num_classes) {
  std::vector<std::string> names;
  for (int k = 0; k < num_classes; ++k) names.push_back(std::to_string(k));
  return names;
}

}  // namespace tailor
