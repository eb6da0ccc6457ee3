// Image-folder data sets (DIR/train/<class>/*.png ..., DIR/test/<class>/...): a folder made from
// the real Fashion-MNIST files gives exactly the IDX set's pixels and labels; class names are the
// folder names; sizes are unified; every bad input is one error naming the file or folder.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "cli_runner.hpp"
#include "data/dataset.hpp"
#include "data/image.hpp"
#include "data/image_folder.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace tailor {
namespace {

namespace fs = std::filesystem;

class ImageFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::temp_directory_path() / ("tailor_folder_" + std::to_string(::getpid()))).string();
    fs::remove_all(root_);
    ::setenv("XDG_CACHE_HOME", (root_ + "/cache").c_str(), 1);  // this test's own cache
  }
  void TearDown() override { fs::remove_all(root_); }

  // The first `n` images of an IDX split as PNG files, DIR/<split>/c<label>/<index>.png: folder
  // names that sort in label order, file names that sort in index order.
  static void write_split(const Dataset& d, size_t n, const std::string& dir) {
    for (size_t i = 0; i < n; ++i) {
      const std::string cls = dir + "/c" + std::to_string(d.labels[i]);
      fs::create_directories(cls);
      Image img;
      img.width = d.cols, img.height = d.rows;
      img.pixels.assign(d.images.begin() + static_cast<std::ptrdiff_t>(i * d.pixels()),
                        d.images.begin() + static_cast<std::ptrdiff_t>((i + 1) * d.pixels()));
      write_png(cls + "/" + fmt::format("{:05d}", i) + ".png", img);
    }
  }
  // Expects `folder` to hold the first n images of `idx`, grouped by label in index order.
  static void expect_same_images(const Dataset& folder, const Dataset& idx, size_t n) {
    ASSERT_EQ(folder.rows, idx.rows);
    ASSERT_EQ(folder.cols, idx.cols);
    ASSERT_EQ(folder.size(), n);
    size_t at = 0;
    int mismatched = 0;
    for (int label = 0; label < idx.num_classes; ++label)
      for (size_t i = 0; i < n; ++i) {
        if (idx.labels[i] != label) continue;
        ASSERT_LT(at, folder.size());
        EXPECT_EQ(folder.labels[at], label);
        mismatched += !std::equal(idx.images.begin() + static_cast<std::ptrdiff_t>(i * idx.pixels()),
                                  idx.images.begin() + static_cast<std::ptrdiff_t>((i + 1) * idx.pixels()),
                                  folder.images.begin() + static_cast<std::ptrdiff_t>(at * folder.pixels()));
        ++at;
      }
    EXPECT_EQ(mismatched, 0) << "images whose pixels differ from the IDX file's";
  }
  static void expect_error(const std::string& dir, const std::string& needle) {
    try {
      load_train_test(dir);
      FAIL() << "expected an error naming " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one line: " << e.what();
    }
  }
  // A small valid folder set: two classes of 4x4 pictures, two per split and class.
  void write_small(const std::string& dir) {
    for (const char* split : {"train", "test"})
      for (const char* cls : {"boots", "shirts"}) {
        fs::create_directories(dir + "/" + split + "/" + cls);
        for (int i = 0; i < 2; ++i) {
          Image img;
          img.width = img.height = 4;
          img.pixels.assign(16, static_cast<uint8_t>(40 * i + (cls[0] == 'b' ? 10 : 200)));
          write_png(dir + "/" + split + "/" + cls + "/" + std::to_string(i) + ".png", img);
        }
      }
  }

  std::string root_;
};

// Acceptance 1's data half: the real Fashion-MNIST images as PNG files, converted back losslessly,
// image by image, with their labels; the classes are the folder names.
TEST_F(ImageFolder, FashionMnistAsPngFilesGivesTheIdxPixelsAndLabels) {
  if (!fs::exists(std::string(kDefaultDataDir) + "/t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const Dataset train = load_dataset(kDefaultDataDir, "train"), test = load_dataset(kDefaultDataDir, "t10k");
  const size_t n_train = 3000, n_test = 1000;
  write_split(train, n_train, root_ + "/fm/train");
  write_split(test, n_test, root_ + "/fm/test");
  const TrainTestData d = load_train_test(root_ + "/fm");
  EXPECT_EQ(d.classes, (std::vector<std::string>{"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"}));
  EXPECT_EQ(d.train.num_classes, 10);
  expect_same_images(d.train, train, n_train);
  expect_same_images(d.test, test, n_test);
  // The test split alone, for eval, inspect and serve, converted to the model's size.
  const Dataset alone = load_test_set(root_ + "/fm", d.classes, 1, 28, 28);
  EXPECT_EQ(alone.images, d.test.images);
  EXPECT_EQ(alone.labels, d.test.labels);
}

// Pictures of other sizes are resized to the most common one by area averaging: a 2x enlargement
// by pixel duplication comes back exactly; the class names are the folder names, sorted.
TEST_F(ImageFolder, OtherSizesAreResizedToTheMostCommon) {
  const std::string dir = root_ + "/sizes";
  write_small(dir);
  Image big;
  big.width = big.height = 8;
  big.pixels.resize(64);
  std::vector<uint8_t> small(16);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) small[y * 4 + x] = static_cast<uint8_t>(16 * y + 3 * x);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) big.pixels[y * 8 + x] = small[(y / 2) * 4 + x / 2];
  write_png(dir + "/train/shirts/9-big.png", big);
  const TrainTestData d = load_train_test(dir);
  EXPECT_EQ(d.classes, (std::vector<std::string>{"boots", "shirts"}));
  ASSERT_EQ(d.train.rows, 4);
  ASSERT_EQ(d.train.size(), 5u);
  EXPECT_EQ(std::vector<uint8_t>(d.train.images.end() - 16, d.train.images.end()), small);
  EXPECT_EQ(d.train.labels, (std::vector<uint8_t>{0, 0, 1, 1, 1}));
}

// Large pictures are scaled so the longer side is 64, keeping the aspect ratio.
TEST_F(ImageFolder, LargePicturesAreCappedAt64) {
  const std::string dir = root_ + "/large";
  for (const char* split : {"train", "test"})
    for (const char* cls : {"a", "b"}) {
      fs::create_directories(dir + "/" + split + "/" + cls);
      Image img;
      img.width = 200, img.height = 100;
      img.pixels.assign(20000, cls[0] == 'a' ? 30 : 220);
      write_png(dir + "/" + split + "/" + cls + "/x.png", img);
    }
  const TrainTestData d = load_train_test(dir);
  EXPECT_EQ(d.train.cols, 64);
  EXPECT_EQ(d.train.rows, 32);
  EXPECT_EQ(d.train.images[0], 30);
  EXPECT_EQ(d.test.images.back(), 220);
}

TEST_F(ImageFolder, BadFoldersAreOneLineNamingTheCulprit) {
  // An empty class folder.
  write_small(root_ + "/empty");
  fs::create_directories(root_ + "/empty/train/coats");
  fs::create_directories(root_ + "/empty/test/coats");
  expect_error(root_ + "/empty", root_ + "/empty/train/coats");
  // A class in test only, and one in train only.
  write_small(root_ + "/testonly");
  fs::create_directories(root_ + "/testonly/test/hats");
  expect_error(root_ + "/testonly", "'hats'");
  write_small(root_ + "/trainonly");
  fs::copy(root_ + "/trainonly/train/boots", root_ + "/trainonly/train/socks");
  expect_error(root_ + "/trainonly", "'socks'");
  // A file that is not a picture; a picture name whose bytes are not one; a truncated PNG.
  write_small(root_ + "/notes");
  write_file_atomic(root_ + "/notes/train/boots/notes.txt", "hello");
  expect_error(root_ + "/notes", root_ + "/notes/train/boots/notes.txt");
  write_small(root_ + "/fake");
  write_file_atomic(root_ + "/fake/test/shirts/0.png", "not a picture at all");
  expect_error(root_ + "/fake", root_ + "/fake/test/shirts/0.png");
  write_small(root_ + "/cut");
  const std::string png = read_file(root_ + "/cut/train/shirts/1.png");
  write_file_atomic(root_ + "/cut/train/shirts/1.png", png.substr(0, png.size() / 2));
  expect_error(root_ + "/cut", root_ + "/cut/train/shirts/1.png");
  // One class only; a stray file where class folders belong.
  write_small(root_ + "/one");
  fs::remove_all(root_ + "/one/train/shirts");
  fs::remove_all(root_ + "/one/test/shirts");
  expect_error(root_ + "/one", "two or more");
  write_small(root_ + "/stray");
  write_file_atomic(root_ + "/stray/train/readme.md", "x");
  expect_error(root_ + "/stray", root_ + "/stray/train/readme.md");
  // Hidden files are skipped.
  write_small(root_ + "/hidden");
  write_file_atomic(root_ + "/hidden/train/boots/.DS_Store", "x");
  EXPECT_EQ(load_train_test(root_ + "/hidden").train.size(), 4u);
}

// The converted set is cached: the second load reads it, giving the same set; a changed picture
// is a new key; a damaged or truncated cache is rebuilt, never used; an unwritable cache only
// costs time.
TEST_F(ImageFolder, TheConvertedSetIsCachedAndNeverTrustedStale) {
  const std::string dir = root_ + "/cached";
  write_small(dir);
  FolderLoad first, second;
  const TrainTestData a = load_image_folder(dir, {}, &first);
  EXPECT_FALSE(first.from_cache);
  ASSERT_FALSE(first.cache_file.empty());
  EXPECT_EQ(first.cache_file.rfind(root_ + "/cache/tailor/image-folders/", 0), 0u) << first.cache_file;
  const TrainTestData b = load_image_folder(dir, {}, &second);
  EXPECT_TRUE(second.from_cache);
  EXPECT_EQ(b.classes, a.classes);
  EXPECT_EQ(b.train.images, a.train.images);
  EXPECT_EQ(b.train.labels, a.train.labels);
  EXPECT_EQ(b.test.images, a.test.images);
  EXPECT_EQ(b.train.rows, a.train.rows);

  // A picture rewritten with other pixels (and a later modification time): converted afresh.
  Image img;
  img.width = img.height = 4;
  img.pixels.assign(16, 123);
  const std::string pic = dir + "/train/shirts/1.png";
  write_png(pic, img);
  fs::last_write_time(pic, fs::last_write_time(pic) + std::chrono::seconds(5));
  FolderLoad third;
  const TrainTestData c = load_image_folder(dir, {}, &third);
  EXPECT_FALSE(third.from_cache);
  EXPECT_EQ(c.train.images.back(), 123);

  // Damaged, then truncated: rebuilt, with the right pixels, and served from cache again after.
  std::string bytes = read_file(third.cache_file);
  bytes[bytes.size() / 2] ^= 0x40;
  write_file_atomic(third.cache_file, bytes);
  FolderLoad damaged;
  EXPECT_EQ(load_image_folder(dir, {}, &damaged).train.images, c.train.images);
  EXPECT_FALSE(damaged.from_cache);
  write_file_atomic(third.cache_file, read_file(third.cache_file).substr(0, 40));
  FolderLoad truncated, again;
  EXPECT_EQ(load_image_folder(dir, {}, &truncated).train.images, c.train.images);
  EXPECT_FALSE(truncated.from_cache);
  load_image_folder(dir, {}, &again);
  EXPECT_TRUE(again.from_cache);

  // A cache directory that cannot be made: a warning, and the set all the same.
  write_file_atomic(root_ + "/not-a-dir", "x");
  ::setenv("XDG_CACHE_HOME", (root_ + "/not-a-dir").c_str(), 1);
  FolderLoad nowhere;
  EXPECT_EQ(load_image_folder(dir, {}, &nowhere).train.images, c.train.images);
  EXPECT_FALSE(nowhere.from_cache);
  EXPECT_TRUE(nowhere.cache_file.empty());
}

// `tailor data`: the classes with their counts, the size, the statistics, and a sample sheet with a
// row per class; a missing directory is one line naming it.
TEST_F(ImageFolder, DataCommandDescribesTheSetAndDrawsASampleSheet) {
  const std::string dir = root_ + "/described";
  write_small(dir);
  const std::string sheet = root_ + "/sheet.png";
  testing::Ran r = testing::run_tailor("data " + dir + " --out " + sheet + " --samples 3", root_);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* want : {"an image folder", "4 training and 4 test images of 4x4 (width x height), grey", "boots", "shirts",
                           "pixel mean", "sheet.png"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << " in\n" << r.out;
  const Image img = load_image(sheet);
  EXPECT_EQ(img.width, 3 * (4 * 2 + 2) + 2);  // 3 pictures a row, 2x, 2-pixel gaps
  EXPECT_EQ(img.height, 2 * (4 * 2 + 2) + 2);  // a row per class
  EXPECT_EQ(img.pixels[static_cast<size_t>(2 * img.width + 2)], 10);   // boots' first picture, top left
  EXPECT_EQ(img.pixels[static_cast<size_t>(12 * img.width + 2)], 200);  // shirts' first picture
  testing::Ran bad = testing::run_tailor("data " + root_ + "/nowhere", root_);
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find(root_ + "/nowhere"), std::string::npos) << bad.err;
}

// The program end to end: train on a folder set, then eval and predict name its folder classes.
TEST_F(ImageFolder, TrainEvalAndPredictUseTheFolderNames) {
  const std::string dir = root_ + "/cli";
  for (const char* split : {"train", "test"})
    for (int k = 0; k < 3; ++k) {
      const std::string cls = dir + "/" + split + "/" + std::string(1, static_cast<char>('x' + k)) + "-class";
      fs::create_directories(cls);
      for (int i = 0; i < (split[1] == 'r' ? 40 : 10); ++i) {
        Image img;
        img.width = img.height = 8;
        img.pixels.assign(64, 0);
        for (int x = 0; x < 8; ++x) img.pixels[(2 * k + 1) * 8 + x] = static_cast<uint8_t>(200 + (i % 50));
        write_png(cls + "/" + std::to_string(i) + ".png", img);
      }
    }
  const std::string run = root_ + "/run";
  testing::Ran t = testing::run_tailor("train --model fcn --hidden 16 --epochs 3 --val 12 --batch-size 16 --threads 1 "
                                       "--progress none --data " + dir + " --out " + run, root_);
  ASSERT_EQ(t.code, 0) << t.err;
  testing::Ran e = testing::run_tailor("eval " + run, root_);
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_NE(e.out.find("(30/30)"), std::string::npos) << e.out;
  testing::Ran p = testing::run_tailor("predict " + run + " " + dir + "/test/y-class/3.png", root_);
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_NE(p.out.find("y-class"), std::string::npos) << p.out;
}

}  // namespace
}  // namespace tailor
