#include "data/image_folder.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <utility>

#include "data/image.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace tailor {

namespace fs = std::filesystem;

namespace {

bool is_picture_name(const std::string& name) {
  std::string ext = fs::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".pgm";
}

// The entries of `dir` not starting with '.', sorted by name (bytes).
std::vector<fs::path> sorted_entries(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename().string().rfind('.', 0) != 0) out.push_back(it->path());
  if (ec) throw Error(dir.string() + ": cannot list (" + ec.message() + ")");
  std::sort(out.begin(), out.end());
  return out;
}

// Class name -> its pictures, sorted, for one split; errors name the folder or file at fault.
std::map<std::string, std::vector<fs::path>> list_split(const fs::path& split) {
  std::map<std::string, std::vector<fs::path>> classes;
  std::error_code ec;
  for (const fs::path& entry : sorted_entries(split)) {
    if (!fs::is_directory(entry, ec))
      throw Error(entry.string() + ": not a class folder (" + split.string() +
                  " holds one sub-directory of pictures per class)");
    auto& files = classes[entry.filename().string()];
    for (const fs::path& f : sorted_entries(entry)) {
      if (fs::is_directory(f, ec))
        throw Error(f.string() + ": a folder inside class folder " + entry.string() + " (pictures only)");
      if (!is_picture_name(f.filename().string()))
        throw Error(f.string() + ": not a picture (.png, .jpg, .jpeg or .pgm expected in a class folder)");
      files.push_back(f);
    }
  }
  if (classes.empty()) throw Error(split.string() + " has no class folders (one sub-directory of pictures per class)");
  return classes;
}

GreyImage decode_file(const fs::path& f) { return decode_image(read_file(f.string()), f.string()); }

// Every picture of a split, in class then file order, resized to (rows, cols); labels are the
// classes' positions in sorted order.
Dataset convert_split(const std::map<std::string, std::vector<fs::path>>& split, int rows, int cols) {
  Dataset d;
  d.rows = rows, d.cols = cols;
  d.num_classes = static_cast<int>(split.size());
  uint8_t label = 0;
  for (const auto& [name, files] : split) {
    for (const fs::path& f : files) {
      const std::vector<uint8_t> px = resize_area(decode_file(f), rows, cols);
      d.images.insert(d.images.end(), px.begin(), px.end());
      d.labels.push_back(label);
    }
    ++label;
  }
  return d;
}

}  // namespace

bool is_image_folder(const std::string& dir) {
  std::error_code ec;
  return fs::is_directory(fs::path(dir) / "train", ec) && fs::is_directory(fs::path(dir) / "test", ec);
}

TrainTestData load_image_folder(const std::string& dir) {
  const fs::path root(dir), train_dir = root / "train", test_dir = root / "test";
  const auto train = list_split(train_dir), test = list_split(test_dir);
  TrainTestData out;
  for (const auto& [name, files] : train) {
    if (files.empty()) throw Error((train_dir / name).string() + " is an empty class folder (no pictures)");
    if (!test.count(name))
      throw Error("class '" + name + "' is in " + train_dir.string() + " but not in " + test_dir.string() +
                  " (both splits need the same class folders)");
    out.classes.push_back(name);
  }
  for (const auto& [name, files] : test)
    if (!train.count(name))
      throw Error("class '" + name + "' is in " + test_dir.string() + " but not in " + train_dir.string() +
                  " (both splits need the same class folders)");
  if (out.classes.size() < 2) throw Error(train_dir.string() + " has one class folder; a data set needs two or more");
  if (out.classes.size() > 256) throw Error(train_dir.string() + " has more than 256 class folders");

  // The size: the most common among the training pictures (ties: the smaller), its longer side
  // capped at 64. Decoding twice keeps only one picture in memory at full size.
  std::map<std::pair<int, int>, size_t> sizes;  // (height, width) -> count
  for (const auto& [name, files] : train)
    for (const fs::path& f : files) {
      const GreyImage img = decode_file(f);
      ++sizes[{img.height, img.width}];
    }
  auto common = std::max_element(sizes.begin(), sizes.end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; })->first;
  int rows = common.first, cols = common.second;
  if (std::max(rows, cols) > kMaxFolderImageSide) {
    const double f = static_cast<double>(kMaxFolderImageSide) / std::max(rows, cols);
    rows = std::max(1, static_cast<int>(std::lround(rows * f)));
    cols = std::max(1, static_cast<int>(std::lround(cols * f)));
  }

  out.train = convert_split(train, rows, cols);
  out.test = convert_split(test, rows, cols);
  return out;
}

Dataset load_image_folder_test(const std::string& dir, const std::vector<std::string>& classes, int rows, int cols) {
  const fs::path test_dir = fs::path(dir) / "test";
  const auto test = list_split(test_dir);
  std::vector<std::string> names;
  for (const auto& [name, files] : test) names.push_back(name);
  if (names != classes) {
    std::string want;
    for (const auto& c : classes) want += (want.empty() ? "" : ", ") + c;
    throw Error(test_dir.string() + "'s class folders are not the model's classes (" + want + ")");
  }
  return convert_split(test, rows, cols);
}

}  // namespace tailor
