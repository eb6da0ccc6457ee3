// Tests for src/data: the IDX reader on good and hostile files, data set loading, the split,
// normalisation and batching, and the image files used by `tailor predict`.
#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "data/idx.hpp"
#include "data/image.hpp"
#include "jpeg_encode.hpp"
#include "util/error.hpp"
#include "util/rng.hpp"

namespace tailor {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("tailor_test_data_" + std::to_string(getpid()) + "_" + info->test_suite_name() + "_" +
             info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb9");
  ASSERT_NE(f, nullptr) << path;
  if (!bytes.empty()) {
    ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
  }
  ASSERT_EQ(gzclose(f), Z_OK);
}

// An IDX file: magic 00 00 08 ndim (or `magic` when given), big-endian dims, then `data`.
std::string idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data,
                      uint32_t magic = 0) {
  if (magic == 0) magic = 0x00000800u | static_cast<uint32_t>(dims.size());
  std::string s;
  auto put32 = [&](uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((v >> shift) & 0xff));
  };
  put32(magic);
  for (uint32_t d : dims) put32(d);
  s.append(data.begin(), data.end());
  return s;
}

std::vector<uint8_t> iota_bytes(size_t n, int start = 0) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((start + static_cast<int>(i)) & 0xff);
  return v;
}

// Runs `f`, which must throw tailor::Error whose message contains every one of `parts`.
void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no tailor::Error thrown; expected one mentioning " << parts.at(0);
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "error is not one line: " << msg;
    for (const std::string& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "message \"" << msg << "\" lacks \"" << p << "\"";
  }
}

// ---- IDX ----------------------------------------------------------------------------------

TEST(Idx, RawRoundTrip) {
  TempDir dir;
  const std::string path = dir.file("a-idx3-ubyte");
  write_bytes(path, idx_bytes({3, 2, 4}, iota_bytes(24)));
  IdxArray a = read_idx(path, 3);
  EXPECT_EQ(a.dims, (std::vector<uint32_t>{3, 2, 4}));
  EXPECT_EQ(a.data, iota_bytes(24));
}

TEST(Idx, GzipRoundTripDetectedByContent) {
  TempDir dir;
  // A big enough array that inflate runs over several input and output chunks.
  const std::vector<uint8_t> data = iota_bytes(300 * 1000, 7);
  const std::string gz_named_raw = dir.file("images-idx3-ubyte");
  write_gz(gz_named_raw, idx_bytes({300, 100, 10}, data));
  IdxArray a = read_idx(gz_named_raw, 3);
  EXPECT_EQ(a.dims, (std::vector<uint32_t>{300, 100, 10}));
  EXPECT_EQ(a.data, data);

  const std::string raw_named_gz = dir.file("labels-idx1-ubyte.gz");
  write_bytes(raw_named_gz, idx_bytes({5}, iota_bytes(5)));
  EXPECT_EQ(read_idx(raw_named_gz, 1).data, iota_bytes(5));
}

TEST(Idx, ConcatenatedGzipMembersAreOneStream) {
  TempDir dir;
  const std::string whole = idx_bytes({6}, iota_bytes(6));
  write_gz(dir.file("a.gz"), whole.substr(0, 7));
  write_gz(dir.file("b.gz"), whole.substr(7));
  const std::string path = dir.file("ab.gz");
  write_bytes(path, read_bytes(dir.file("a.gz")) + read_bytes(dir.file("b.gz")));
  EXPECT_EQ(read_idx(path, 1).data, iota_bytes(6));
}

TEST(Idx, MissingFile) {
  TempDir dir;
  const std::string path = dir.file("nothing-here-idx1-ubyte");
  expect_error([&] { read_idx(path, 1); }, {path});
}

TEST(Idx, WrongMagicSaysFoundAndExpected) {
  TempDir dir;
  const std::string path = dir.file("bad-magic");
  write_bytes(path, idx_bytes({2}, {1, 2}, 0x12340801u));
  expect_error([&] { read_idx(path, 1); }, {path, "0x12340801", "0x00000801"});
}

TEST(Idx, WrongElementType) {
  TempDir dir;
  const std::string path = dir.file("floats");
  write_bytes(path, idx_bytes({1}, {0, 0, 0, 0}, 0x00000D01u));
  expect_error([&] { read_idx(path, 1); }, {path, "0x0D", "0x08"});
}

TEST(Idx, WrongNdim) {
  TempDir dir;
  const std::string path = dir.file("labels-idx1-ubyte");
  write_bytes(path, idx_bytes({4}, iota_bytes(4)));
  expect_error([&] { read_idx(path, 3); }, {path, "1 dimensions, expected 3"});
}

TEST(Idx, ZeroDimension) {
  TempDir dir;
  const std::string path = dir.file("zero");
  write_bytes(path, idx_bytes({2, 0, 3}, {}));
  expect_error([&] { read_idx(path, 3); }, {path, "zero"});
}

TEST(Idx, HugeHeaderRefusedBeforeReading) {
  TempDir dir;
  const std::string path = dir.file("huge");
  write_bytes(path, idx_bytes({65536, 65536, 65536}, {1, 2, 3}));
  expect_error([&] { read_idx(path, 3); }, {path, "1 GiB"});
  const std::string gz = dir.file("huge.gz");
  write_gz(gz, idx_bytes({65536, 65536, 65536}, {1, 2, 3}));
  expect_error([&] { read_idx(gz, 3); }, {gz, "1 GiB"});
}

TEST(Idx, HeaderLargerThanData) {
  TempDir dir;
  const std::string raw = dir.file("short");
  write_bytes(raw, idx_bytes({10}, iota_bytes(5)));
  expect_error([&] { read_idx(raw, 1); }, {raw, "header says 10 bytes of data but file holds 5"});
  const std::string gz = dir.file("short.gz");
  write_gz(gz, idx_bytes({10}, iota_bytes(5)));
  expect_error([&] { read_idx(gz, 1); }, {gz, "header says 10 bytes of data but file holds 5"});
}

TEST(Idx, TrailingData) {
  TempDir dir;
  const std::string raw = dir.file("long");
  write_bytes(raw, idx_bytes({4}, iota_bytes(9)));
  expect_error([&] { read_idx(raw, 1); }, {raw, "extra data"});
  const std::string gz = dir.file("long.gz");
  write_gz(gz, idx_bytes({4}, iota_bytes(9)));
  expect_error([&] { read_idx(gz, 1); }, {gz, "extra data"});
}

TEST(Idx, ShortHeader) {
  TempDir dir;
  const std::string empty = dir.file("empty");
  write_bytes(empty, "");
  expect_error([&] { read_idx(empty, 1); }, {empty, "header"});
  const std::string cut = dir.file("cut");
  write_bytes(cut, idx_bytes({3, 3, 3}, {}).substr(0, 9));
  expect_error([&] { read_idx(cut, 3); }, {cut, "header"});
}

TEST(Idx, TruncatedGzip) {
  TempDir dir;
  const std::string whole = dir.file("whole.gz");
  write_gz(whole, idx_bytes({100, 10, 10}, iota_bytes(10000)));
  const std::string bytes = read_bytes(whole);
  for (size_t keep : {size_t{3}, size_t{12}, bytes.size() / 2, bytes.size() - 1}) {
    const std::string path = dir.file("cut" + std::to_string(keep) + ".gz");
    write_bytes(path, bytes.substr(0, keep));
    expect_error([&] { read_idx(path, 3); }, {path, "truncated"});
  }
}

TEST(Idx, CorruptGzip) {
  TempDir dir;
  const std::string whole = dir.file("whole.gz");
  write_gz(whole, idx_bytes({100, 10, 10}, iota_bytes(10000)));
  const std::string bytes = read_bytes(whole);

  // A wrong CRC-32 in the trailer (the last 8 bytes are CRC-32 and length).
  std::string bad_crc = bytes;
  bad_crc[bad_crc.size() - 8] = static_cast<char>(bad_crc[bad_crc.size() - 8] ^ 0x5a);
  const std::string crc_path = dir.file("crc.gz");
  write_bytes(crc_path, bad_crc);
  expect_error([&] { read_idx(crc_path, 3); }, {crc_path, "corrupt gzip"});

  // Garbage in the deflate data: any error will do, as long as it names the file.
  std::string bad_data = bytes;
  for (size_t i = 12; i < 40 && i < bad_data.size(); ++i) bad_data[i] = static_cast<char>(0xff);
  const std::string data_path = dir.file("data.gz");
  write_bytes(data_path, bad_data);
  expect_error([&] { read_idx(data_path, 3); }, {data_path});

  // Bytes after the gzip stream that are not another gzip member.
  const std::string tail_path = dir.file("tail.gz");
  write_bytes(tail_path, bytes + "junk");
  expect_error([&] { read_idx(tail_path, 3); }, {tail_path, "after the end of the gzip stream"});
}

// Random damage to a valid file must end in a result or a tailor::Error naming the file, never
// a crash, a hang or another exception type.
TEST(Idx, MutatedFilesFailCleanly) {
  TempDir dir;
  const std::string base = dir.file("base.gz");
  write_gz(base, idx_bytes({20, 5, 5}, iota_bytes(500)));
  const std::string good_gz = read_bytes(base);
  const std::string good_raw = idx_bytes({20, 5, 5}, iota_bytes(500));
  Rng rng(123);
  for (int trial = 0; trial < 300; ++trial) {
    std::string bytes = (trial % 2 == 0) ? good_gz : good_raw;
    const int edits = 1 + static_cast<int>(rng.below(4));
    for (int e = 0; e < edits; ++e)
      bytes[rng.below(bytes.size())] = static_cast<char>(rng.below(256));
    if (rng.below(4) == 0) bytes.resize(rng.below(bytes.size()));
    std::string name = "m";
    name += std::to_string(trial);
    const std::string path = dir.file(name);
    write_bytes(path, bytes);
    try {
      read_idx(path, 3);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
}

// ---- Data set -----------------------------------------------------------------------------

// Writes <prefix>-images-idx3-ubyte and <prefix>-labels-idx1-ubyte (gzipped when `gz`), image
// i filled with the byte i.
void write_set(const TempDir& dir, const std::string& prefix, int rows, int cols,
               const std::vector<uint8_t>& labels, bool gz, size_t image_count = SIZE_MAX) {
  if (image_count == SIZE_MAX) image_count = labels.size();
  std::vector<uint8_t> images;
  for (size_t i = 0; i < image_count; ++i)
    images.insert(images.end(), static_cast<size_t>(rows * cols), static_cast<uint8_t>(i));
  const std::string ext = gz ? ".gz" : "";
  const std::string img = idx_bytes({static_cast<uint32_t>(image_count), static_cast<uint32_t>(rows),
                                     static_cast<uint32_t>(cols)},
                                    images);
  const std::string lbl = idx_bytes({static_cast<uint32_t>(labels.size())}, labels);
  if (gz) {
    write_gz(dir.file(prefix + "-images-idx3-ubyte" + ext), img);
    write_gz(dir.file(prefix + "-labels-idx1-ubyte" + ext), lbl);
  } else {
    write_bytes(dir.file(prefix + "-images-idx3-ubyte"), img);
    write_bytes(dir.file(prefix + "-labels-idx1-ubyte"), lbl);
  }
}

TEST(Dataset, LoadsAndInfersClassCount) {
  TempDir dir;
  write_set(dir, "train", 2, 3, {0, 2, 1, 2}, true);
  Dataset d = load_dataset(dir.str(), "train");
  EXPECT_EQ(d.size(), 4u);
  EXPECT_EQ(d.rows, 2);
  EXPECT_EQ(d.cols, 3);
  EXPECT_EQ(d.pixels(), 6);
  EXPECT_EQ(d.num_classes, 3);
  EXPECT_EQ(d.labels, (std::vector<uint8_t>{0, 2, 1, 2}));
  ASSERT_EQ(d.images.size(), 24u);
  EXPECT_EQ(d.images[3 * 6 + 5], 3);

  write_set(dir, "one", 1, 1, {0, 0, 0}, false);
  EXPECT_EQ(load_dataset(dir.str(), "one").num_classes, 2);  // never fewer than two classes
}

TEST(Dataset, PrefersGzipWhenBothExist) {
  TempDir dir;
  write_set(dir, "train", 1, 1, {0, 1, 0}, false);
  write_set(dir, "train", 1, 1, {1, 1, 0, 0, 1}, true);
  EXPECT_EQ(load_dataset(dir.str(), "train").size(), 5u);
}

TEST(Dataset, CountMismatchNamesBothFiles) {
  TempDir dir;
  write_set(dir, "train", 2, 2, {0, 1, 0, 1}, false, 5);
  expect_error([&] { load_dataset(dir.str(), "train"); },
               {dir.file("train-images-idx3-ubyte"), dir.file("train-labels-idx1-ubyte"), "5", "4"});
}

TEST(Dataset, FilesMustHaveTheRightRank) {
  TempDir dir;
  write_set(dir, "train", 2, 2, {0, 1}, false);
  // Replace the labels by a 2-D array.
  const std::string labels = dir.file("train-labels-idx1-ubyte");
  write_bytes(labels, idx_bytes({2, 1}, {0, 1}));
  expect_error([&] { load_dataset(dir.str(), "train"); }, {labels});
  // And the images by a 1-D one.
  write_bytes(labels, idx_bytes({2}, {0, 1}));
  const std::string images = dir.file("train-images-idx3-ubyte");
  write_bytes(images, idx_bytes({8}, iota_bytes(8)));
  expect_error([&] { load_dataset(dir.str(), "train"); }, {images});
}

TEST(Dataset, TestLabelOutsideTrainingClasses) {
  TempDir dir;
  write_set(dir, "train", 2, 2, {0, 1, 2, 1}, true);
  write_set(dir, "t10k", 2, 2, {0, 3, 1}, true);
  expect_error([&] { load_train_test(dir.str()); },
               {"label 3 at index 1 out of range [0, 3) in", dir.file("t10k-labels-idx1-ubyte.gz")});
}

TEST(Dataset, TrainTestLoadsBoth) {
  TempDir dir;
  write_set(dir, "train", 3, 2, {0, 1, 2, 3, 4}, true);
  write_set(dir, "t10k", 3, 2, {1, 1}, false);
  TrainTestData data = load_train_test(dir.str());
  EXPECT_EQ(data.train.size(), 5u);
  EXPECT_EQ(data.test.size(), 2u);
  EXPECT_EQ(data.test.num_classes, 5);  // the training set's, not max(test label) + 1
}

TEST(Dataset, TestImageSizeMustMatchTrain) {
  TempDir dir;
  write_set(dir, "train", 2, 2, {0, 1}, false);
  write_set(dir, "t10k", 3, 2, {0, 1}, false);
  expect_error([&] { load_train_test(dir.str()); }, {dir.file("t10k-images-idx3-ubyte"), "3x2", "2x2"});
}

TEST(Dataset, MissingDirectorySaysHowToInstall) {
  const std::string dir = "/nonexistent/tailor-test-data";
  expect_error([&] { load_train_test(dir); }, {dir, "dataset-fashion-mnist", "--data"});
}

TEST(Dataset, MissingFileNamesIt) {
  TempDir dir;
  write_set(dir, "train", 2, 2, {0, 1}, false);
  expect_error([&] { load_train_test(dir.str()); }, {dir.file("t10k-images-idx3-ubyte")});
}

TEST(Dataset, ClassNames) {
  const auto ten = fashion_mnist_class_names();
  ASSERT_EQ(ten.size(), 10u);
  EXPECT_EQ(ten[0], "T-shirt/top");
  EXPECT_EQ(ten[6], "Shirt");
  EXPECT_EQ(ten[9], "Ankle boot");
  EXPECT_EQ(numbered_class_names(3), (std::vector<std::string>{"0", "1", "2"}));
}

// Fashion-MNIST's names belong to Fashion-MNIST's files (recognised by their training labels):
// any other ten-class set, digits say, is "0".."9" (it once printed "Pullover" for a "2").
TEST(Dataset, FashionMnistNamesOnlyForFashionMnist) {
  if (fs::exists(kDefaultDataDir)) {
    EXPECT_EQ(load_train_test(kDefaultDataDir).classes, fashion_mnist_class_names());
  }
  TempDir dir;
  std::vector<uint8_t> labels;
  for (int i = 0; i < 30; ++i) labels.push_back(static_cast<uint8_t>(i % 10));
  write_set(dir, "train", 2, 2, labels, false);
  write_set(dir, "t10k", 2, 2, labels, false);
  EXPECT_EQ(load_train_test(dir.str()).classes, numbered_class_names(10));
}

// classes.txt beside the files names the classes in label order.
TEST(Dataset, ClassesTxtNamesTheClasses) {
  TempDir dir;
  write_set(dir, "train", 2, 2, {0, 1, 2, 1}, false);
  write_set(dir, "t10k", 2, 2, {2, 0}, false);
  std::ofstream(dir.file("classes.txt")) << "cat\r\ndog  \nbird\n";
  const TrainTestData d = load_train_test(dir.str());
  EXPECT_EQ(d.classes, (std::vector<std::string>{"cat", "dog", "bird"}));
  EXPECT_EQ(d.train.num_classes, 3);
  // Four names for three labels: the fourth class has no training image.
  std::ofstream(dir.file("classes.txt")) << "cat\ndog\nbird\nfish\n";
  expect_error([&] { load_train_test(dir.str()); }, {"no training image has label 3", dir.file("classes.txt"), "4 classes"});
  // Two names for three labels.
  std::ofstream(dir.file("classes.txt")) << "cat\ndog\n";
  expect_error([&] { load_train_test(dir.str()); }, {"label 2", "out of range [0, 2)", dir.file("classes.txt")});
  std::ofstream(dir.file("classes.txt")) << "cat\n\nbird\n";
  expect_error([&] { load_train_test(dir.str()); }, {dir.file("classes.txt") + ":2", "empty class name"});
  std::ofstream(dir.file("classes.txt")) << "cat\ndog\ncat\n";
  expect_error([&] { load_train_test(dir.str()); }, {dir.file("classes.txt") + ":3", "named twice"});
}

// One damaged label byte (200 in a 3-class set) once made a 201-class model without a word.
TEST(Dataset, ALabelWithAGapBelowItIsAnError) {
  TempDir dir;
  write_set(dir, "train", 2, 2, {0, 1, 2, 200, 1, 0}, false);
  write_set(dir, "t10k", 2, 2, {0, 1}, false);
  expect_error([&] { load_train_test(dir.str()); },
               {dir.file("train-labels-idx1-ubyte"), "no training image has label 3", "labels run up to 200"});
}

// ---- Split --------------------------------------------------------------------------------

// 1000 labels over 5 unequal classes, interleaved.
std::vector<uint8_t> skewed_labels() {
  const int counts[5] = {500, 300, 150, 37, 13};
  std::vector<uint8_t> labels;
  for (int k = 0; k < 5; ++k) labels.insert(labels.end(), static_cast<size_t>(counts[k]), static_cast<uint8_t>(k));
  Rng rng(5);
  for (size_t i = labels.size() - 1; i > 0; --i) std::swap(labels[i], labels[rng.below(i + 1)]);
  return labels;
}

TEST(Split, SizesStratifiedDisjointCovering) {
  const auto labels = skewed_labels();
  const size_t val_count = 101;
  Split s = stratified_split(labels, 5, val_count, 42);
  ASSERT_EQ(s.val.size(), val_count);
  ASSERT_EQ(s.train.size(), labels.size() - val_count);
  EXPECT_TRUE(std::is_sorted(s.val.begin(), s.val.end()));
  EXPECT_TRUE(std::is_sorted(s.train.begin(), s.train.end()));

  std::set<uint32_t> all(s.train.begin(), s.train.end());
  all.insert(s.val.begin(), s.val.end());
  EXPECT_EQ(all.size(), labels.size());  // disjoint and covering
  EXPECT_EQ(*all.rbegin(), labels.size() - 1);

  std::vector<int> total(5, 0), in_val(5, 0);
  for (uint8_t l : labels) ++total[l];
  for (uint32_t i : s.val) ++in_val[labels[i]];
  for (int k = 0; k < 5; ++k) {
    const double exact = static_cast<double>(val_count) * total[k] / static_cast<double>(labels.size());
    EXPECT_LT(std::abs(in_val[k] - exact), 1.0) << "class " << k;
  }
}

TEST(Split, SeedDecides) {
  const auto labels = skewed_labels();
  Split a = stratified_split(labels, 5, 200, 7);
  Split b = stratified_split(labels, 5, 200, 7);
  Split c = stratified_split(labels, 5, 200, 8);
  EXPECT_EQ(a.val, b.val);
  EXPECT_EQ(a.train, b.train);
  EXPECT_NE(a.val, c.val);
}

TEST(Split, EdgeSizes) {
  const auto labels = skewed_labels();
  Split none = stratified_split(labels, 5, 0, 1);
  EXPECT_TRUE(none.val.empty());
  EXPECT_EQ(none.train.size(), labels.size());
  Split most = stratified_split(labels, 5, labels.size() - 1, 1);
  EXPECT_EQ(most.train.size(), 1u);
  expect_error([&] { stratified_split(labels, 5, labels.size(), 1); }, {"--val", "1000"});
}

// ---- Normalisation and batches ------------------------------------------------------------

Dataset two_by_two() {
  Dataset d;
  d.rows = 2;
  d.cols = 2;
  d.num_classes = 3;
  d.images = {0, 255, 0, 255, /**/ 255, 255, 255, 255, /**/ 51, 51, 51, 51};
  d.labels = {2, 0, 1};
  return d;
}

TEST(Normalization, MeanAndStd) {
  const Dataset d = two_by_two();
  // Image 0 alone: pixels {0, 1, 0, 1} -> mean 0.5, std 0.5.
  Normalization a = compute_normalization(d, {0});
  EXPECT_EQ(a.channels, 1);
  EXPECT_NEAR(a.mean[0], 0.5, 1e-6);
  EXPECT_NEAR(a.std[0], 0.5, 1e-6);
  // Images 0 and 1: {0,1,0,1,1,1,1,1} -> mean 0.75, var 0.75 - 0.5625 = 0.1875.
  Normalization b = compute_normalization(d, {0, 1});
  EXPECT_NEAR(b.mean[0], 0.75, 1e-6);
  EXPECT_NEAR(b.std[0], std::sqrt(0.1875), 1e-6);
  // A constant image has std 0, which would divide by zero: std 1 instead.
  Normalization c = compute_normalization(d, {2});
  EXPECT_NEAR(c.mean[0], 0.2, 1e-6);
  EXPECT_EQ(c.std[0], 1.0f);
}

// Colour: statistics per channel, and each plane of a gathered image in its own channel's terms.
TEST(Normalization, PerChannel) {
  Dataset d;
  d.rows = 1, d.cols = 2, d.channels = 3, d.num_classes = 2;
  // Two images of (3 planes x 2 pixels): red {0, 255} / {255, 255}, green all 51, blue {0, 0} / {0, 255}.
  d.images = {0, 255, 51, 51, 0, 0, 255, 255, 51, 51, 0, 255};
  d.labels = {0, 1};
  const Normalization n = compute_normalization(d, {0, 1});
  ASSERT_EQ(n.channels, 3);
  EXPECT_NEAR(n.mean[0], 0.75, 1e-6);
  EXPECT_NEAR(n.std[0], std::sqrt(0.1875), 1e-6);
  EXPECT_NEAR(n.mean[1], 0.2, 1e-6);
  EXPECT_EQ(n.std[1], 1.0f);  // constant channel
  EXPECT_NEAR(n.mean[2], 0.25, 1e-6);
  EXPECT_NEAR(n.std[2], std::sqrt(0.1875), 1e-6);
  std::vector<float> out(6);
  std::vector<int32_t> label(1);
  const uint32_t idx[1] = {1};
  gather_batch(d, idx, 1, n, out.data(), label.data());
  const float r = (1 - 0.75f) / std::sqrt(0.1875f), g = 0.0f, b0 = (0 - 0.25f) / std::sqrt(0.1875f),
              b1 = (1 - 0.25f) / std::sqrt(0.1875f);
  const std::vector<float> want = {r, r, g, g, b0, b1};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(out[i], want[i], 1e-5) << i;
  // A grey normalisation for a colour set is refused, not read past.
  expect_error([&] { gather_batch(d, idx, 1, Normalization{}, out.data(), label.data()); }, {"1 channel", "3"});
}

TEST(Normalization, GatherBatch) {
  const Dataset d = two_by_two();
  const uint32_t idx[3] = {2, 0, 1};
  std::vector<float> out(3 * 4, -99.0f);
  std::vector<int32_t> labels(3, -1);
  gather_batch(d, idx, 3, Normalization{1, {0.5f}, {0.25f}}, out.data(), labels.data());
  const float x51 = (0.2f - 0.5f) / 0.25f;  // -1.2
  const std::vector<float> want = {x51, x51, x51, x51, -2, 2, -2, 2, 2, 2, 2, 2};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(out[i], want[i], 1e-5) << i;
  EXPECT_EQ(labels, (std::vector<int32_t>{1, 2, 0}));

  const uint32_t bad[1] = {3};
  expect_error([&] { gather_batch(d, bad, 1, {}, out.data(), labels.data()); }, {"3"});
}

// ---- Images -------------------------------------------------------------------------------

Image blank(int w, int h, uint8_t v) {
  Image img;
  img.width = w;
  img.height = h;
  img.pixels.assign(static_cast<size_t>(w) * static_cast<size_t>(h), v);
  return img;
}

void fill_rect(Image& img, int x, int y, int w, int h, uint8_t v) {
  for (int r = y; r < y + h; ++r)
    for (int c = x; c < x + w; ++c) img.pixels[static_cast<size_t>(r) * img.width + c] = v;
}

TEST(Image, PngRoundTrip) {
  TempDir dir;
  Image img = blank(5, 3, 0);
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>(i * 17);
  // A .pgm name on a PNG: detection goes by content.
  const std::string path = dir.file("round.pgm");
  write_png(path, img);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  Image back = load_image(path);
  EXPECT_EQ(back.width, 5);
  EXPECT_EQ(back.height, 3);
  EXPECT_EQ(back.pixels, img.pixels);
}

TEST(Image, PngAlphaCompositedOnWhite) {
  TempDir dir;
  // Two RGBA pixels: opaque black, fully transparent black.
  const uint8_t rgba[8] = {0, 0, 0, 255, 0, 0, 0, 0};
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = 2;
  image.height = 1;
  image.format = PNG_FORMAT_RGBA;
  const std::string path = dir.file("alpha.png");
  ASSERT_TRUE(png_image_write_to_file(&image, path.c_str(), 0, rgba, 0, nullptr)) << image.message;
  Image img = load_image(path);
  ASSERT_EQ(img.pixels.size(), 2u);
  EXPECT_EQ(img.pixels[0], 0);
  EXPECT_EQ(img.pixels[1], 255);
}

TEST(Image, PgmPlainWithComments) {
  TempDir dir;
  const std::string path = dir.file("plain.pgm");
  write_bytes(path, "P2\n# made by hand\n3 2\n# max\n255\n0 128 255\n 10 20\n30\n");
  Image img = load_image(path);
  EXPECT_EQ(img.width, 3);
  EXPECT_EQ(img.height, 2);
  EXPECT_EQ(img.pixels, (std::vector<uint8_t>{0, 128, 255, 10, 20, 30}));

  const std::string scaled = dir.file("scaled.pgm");
  write_bytes(scaled, "P2 3 1 15 0 15 7");
  EXPECT_EQ(load_image(scaled).pixels, (std::vector<uint8_t>{0, 255, 119}));  // 7*255/15 = 119
}

TEST(Image, PgmBinary8And16Bit) {
  TempDir dir;
  const std::string p8 = dir.file("eight");
  write_bytes(p8, std::string("P5\n2 2\n255\n") + std::string("\x00\x40\x80\xff", 4));
  EXPECT_EQ(load_image(p8).pixels, (std::vector<uint8_t>{0, 64, 128, 255}));

  const std::string p16 = dir.file("sixteen");
  write_bytes(p16, std::string("P5 2 1 65535\n") + std::string("\xff\xff\x80\x00", 4));
  EXPECT_EQ(load_image(p16).pixels, (std::vector<uint8_t>{255, 128}));  // 0x8000*255/65535 = 127.5 -> 128
}

TEST(Image, BadFilesNameThemselves) {
  TempDir dir;
  const std::string missing = dir.file("missing.png");
  expect_error([&] { load_image(missing); }, {missing});
  const std::string text = dir.file("notes.png");
  write_bytes(text, "hello");
  expect_error([&] { load_image(text); }, {text, "PNG, JPEG or PGM"});
  const std::string cut = dir.file("cut.pgm");
  write_bytes(cut, "P5 4 4 255\nabc");
  expect_error([&] { load_image(cut); }, {cut, "truncated"});
  const std::string huge = dir.file("huge.pgm");
  write_bytes(huge, "P5 100000 100000 255\n");
  expect_error([&] { load_image(huge); }, {huge, "limit of 67108864 pixels"});
  const std::string over = dir.file("over.pgm");
  write_bytes(over, "P2 1 1 10 11");
  expect_error([&] { load_image(over); }, {over, "maxval"});
  const std::string broken_png = dir.file("broken.png");
  write_bytes(broken_png, std::string("\x89PNG\r\n\x1a\n", 8) + "garbage");
  expect_error([&] { load_image(broken_png); }, {broken_png});
  const std::string broken_jpeg = dir.file("broken.jpg");
  write_bytes(broken_jpeg, std::string("\xFF\xD8\xFF\xE0", 4) + "garbage");
  expect_error([&] { load_image(broken_jpeg); }, {broken_jpeg, "JPEG"});
  // The two refusals a server tells apart (413 and 415).
  EXPECT_THROW(decode_image("P5 2000 2000 255\n", "upload", 1000000), ImageTooLarge);
  EXPECT_THROW(decode_image("GIF89a", "upload"), NotAnImage);
}

// A JPEG made with libjpeg: colour (a red-to-blue gradient over green) at quality 95.
std::string make_jpeg(int width, int height) {
  Image img;
  img.width = width, img.height = height, img.channels = 3;
  img.pixels.resize(img.plane() * 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const size_t i = static_cast<size_t>(y) * width + x;
      img.pixels[i] = static_cast<uint8_t>(255 * x / (width - 1));
      img.pixels[img.plane() + i] = 128;
      img.pixels[2 * img.plane() + i] = static_cast<uint8_t>(255 - 255 * x / (width - 1));
    }
  return testing::encode_jpeg(img, 95);
}

TEST(Image, JpegColourBecomesLuminance) {
  TempDir dir;
  const std::string path = dir.file("photo.jpg");
  write_bytes(path, make_jpeg(40, 16));
  Image img = load_image(path);
  ASSERT_EQ(img.width, 40);
  ASSERT_EQ(img.height, 16);
  // JPEG's luma: Y = 0.299 R + 0.587 G + 0.114 B (JFIF), within compression error.
  for (int x : {0, 13, 39}) {
    const double r = 255.0 * x / 39, g = 128, b = 255 - r;
    EXPECT_NEAR(img.pixels[8 * 40 + x], 0.299 * r + 0.587 * g + 0.114 * b, 6.0) << x;
  }
}

// Bounding box of the non-zero pixels of a (rows, cols) canvas: {x0, y0, x1, y1}.
std::vector<int> ink_box(const std::vector<uint8_t>& canvas, int rows, int cols) {
  int x0 = cols, y0 = rows, x1 = -1, y1 = -1;
  for (int y = 0; y < rows; ++y)
    for (int x = 0; x < cols; ++x)
      if (canvas[static_cast<size_t>(y) * cols + x] > 0) {
        x0 = std::min(x0, x), x1 = std::max(x1, x);
        y0 = std::min(y0, y), y1 = std::max(y1, y);
      }
  return {x0, y0, x1, y1};
}

TEST(Image, DarkOnLightIsInvertedAndCentred) {
  // A black 10x20 (w x h) coat on white paper, off to one side.
  Image img = blank(40, 40, 255);
  fill_rect(img, 2, 15, 10, 20, 0);
  const auto out = to_dataset_format(img, 28, 28);
  ASSERT_EQ(out.size(), 28u * 28u);
  // Inverted: the object is white, the background black. Height 20 -> 28, width 10 -> 14,
  // centred at columns 7..20.
  EXPECT_EQ(ink_box(out, 28, 28), (std::vector<int>{7, 0, 20, 27}));
  EXPECT_EQ(out[14 * 28 + 14], 255);
  EXPECT_EQ(out[0], 0);
}

TEST(Image, LightOnDarkKeptAndCentred) {
  Image img = blank(100, 60, 0);
  fill_rect(img, 3, 4, 20, 10, 200);  // w 20, h 10 in a corner
  const auto out = to_dataset_format(img, 28, 28);
  const auto box = ink_box(out, 28, 28);
  EXPECT_EQ(box, (std::vector<int>{0, 7, 27, 20}));  // 28 x 14, rows 7..20
  EXPECT_EQ(box[1], 27 - box[3]);                    // equal margins above and below
  EXPECT_EQ(out[14 * 28 + 14], 200);
}

TEST(Image, ShrinkAveragesAreasEnlargeKeepsFlatRegions) {
  // A 112x112 block whose columns repeat 255, 55, 55, 55: shrinking 4x by area averaging gives
  // (255 + 3*55)/4 = 105 everywhere; point sampling would give 55 or 255.
  Image img = blank(116, 116, 0);
  for (int y = 2; y < 114; ++y)
    for (int x = 2; x < 114; ++x) img.pixels[static_cast<size_t>(y) * 116 + x] = (x - 2) % 4 == 0 ? 255 : 55;
  for (uint8_t v : to_dataset_format(img, 28, 28)) EXPECT_NEAR(v, 105, 1);

  // A flat 7x7 block enlarged 4x stays flat and fills the canvas.
  Image small = blank(9, 9, 0);
  fill_rect(small, 1, 1, 7, 7, 180);
  for (uint8_t v : to_dataset_format(small, 28, 28)) EXPECT_EQ(v, 180);
}

TEST(Image, BlankGivesBlackCanvas) {
  for (uint8_t v : to_dataset_format(blank(30, 20, 255), 28, 28)) EXPECT_EQ(v, 0);
  for (uint8_t v : to_dataset_format(blank(30, 20, 0), 28, 28)) EXPECT_EQ(v, 0);
  EXPECT_EQ(to_dataset_format(Image{}, 28, 28), std::vector<uint8_t>(28 * 28, 0));
}

// ---- The real data set, when installed ------------------------------------------------------

TEST(FashionMnist, LoadsInstalledCopy) {
  if (!fs::is_directory(kDefaultDataDir)) GTEST_SKIP() << kDefaultDataDir << " not installed";
  TrainTestData data = load_train_test(kDefaultDataDir);
  EXPECT_EQ(data.train.size(), 60000u);
  EXPECT_EQ(data.test.size(), 10000u);
  EXPECT_EQ(data.train.rows, 28);
  EXPECT_EQ(data.train.cols, 28);
  EXPECT_EQ(data.train.num_classes, 10);
  EXPECT_EQ(data.test.num_classes, 10);
  EXPECT_EQ(data.train.images.size(), 60000u * 784u);
  std::vector<int> per_class(10, 0);
  for (uint8_t l : data.train.labels) ++per_class[l];
  for (int c : per_class) EXPECT_EQ(c, 6000);  // Fashion-MNIST is balanced
}

}  // namespace
}  // namespace tailor
