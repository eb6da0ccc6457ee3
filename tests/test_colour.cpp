// Colour through tailor: pictures decoded in colour or grey, image folders converted with
// --color and --image-size, per-channel normalisation, RGB models trained, and one picture giving
// bit-identical logits on all five paths (training's gather, eval, predict, serve, inspect).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "data/dataset.hpp"
#include "data/image.hpp"
#include "data/image_folder.hpp"
#include "inspect/analysis.hpp"
#include "inspect/render.hpp"
#include "jpeg_encode.hpp"
#include "kernels/kernels.hpp"
#include "nn/init.hpp"
#include "nn/model_spec.hpp"
#include "serve/server.hpp"
#include "tiny_data.hpp"
#include "train/checkpoint.hpp"
#include "train/evaluate.hpp"
#include "train/trainer.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/rng.hpp"

#include <httplib.h>

namespace tailor {
namespace {

namespace fs = std::filesystem;

// A picture of `channels` planes filled by f(channel, y, x).
template <typename F>
Image picture(int width, int height, int channels, F f) {
  Image img;
  img.width = width, img.height = height, img.channels = channels;
  img.pixels.resize(img.plane() * static_cast<size_t>(channels));
  for (int c = 0; c < channels; ++c)
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) img.pixels[c * img.plane() + static_cast<size_t>(y) * width + x] = f(c, y, x);
  return img;
}

class Colour : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::temp_directory_path() / ("tailor_colour_" + std::to_string(::getpid()))).string();
    fs::remove_all(root_);
    fs::create_directories(root_);
    ::setenv("XDG_CACHE_HOME", (root_ + "/cache").c_str(), 1);  // this test's own cache
  }
  void TearDown() override { fs::remove_all(root_); }

  void put(const std::string& file, const Image& img) {
    fs::create_directories(fs::path(file).parent_path());
    write_png(file, img);
  }

  std::string root_;
};

TEST_F(Colour, PicturesDecodeInColourOrGrey) {
  // Every pixel different in every plane.
  const Image rgb = picture(5, 3, 3, [](int c, int y, int x) { return static_cast<uint8_t>(17 * c + 50 * y + 9 * x); });
  const std::string file = root_ + "/rgb.png";
  put(file, rgb);
  const Image kept = load_image(file, ColorMode::keep);
  EXPECT_EQ(kept.channels, 3);
  EXPECT_EQ(kept.pixels, rgb.pixels);  // lossless, planes in order
  EXPECT_EQ(load_image(file, ColorMode::rgb).pixels, rgb.pixels);
  EXPECT_TRUE(shows_colour(kept));
  const Image grey = load_image(file);  // the default: luminance, as before colour
  EXPECT_EQ(grey.channels, 1);
  EXPECT_EQ(grey.pixels.size(), 15u);
  // A grey file: one plane kept, three equal planes for rgb.
  const Image g = picture(4, 2, 1, [](int, int y, int x) { return static_cast<uint8_t>(30 * y + 7 * x); });
  put(root_ + "/grey.png", g);
  EXPECT_EQ(load_image(root_ + "/grey.png", ColorMode::keep).channels, 1);
  const Image g3 = load_image(root_ + "/grey.png", ColorMode::rgb);
  ASSERT_EQ(g3.channels, 3);
  for (int c = 0; c < 3; ++c)
    EXPECT_TRUE(std::equal(g.pixels.begin(), g.pixels.end(), g3.pixels.begin() + c * 8)) << "plane " << c;
  EXPECT_FALSE(shows_colour(g3));
  // A colour file whose pixels are grey shows no colour.
  put(root_ + "/greyish.png", with_planes(g, 3));
  EXPECT_FALSE(shows_colour(load_image(root_ + "/greyish.png", ColorMode::keep)));
  // Resizing works plane by plane: each plane of the resized picture is its grey plane resized.
  const std::vector<uint8_t> small = resize_area(rgb, 2, 3);
  ASSERT_EQ(small.size(), 18u);
  for (int c = 0; c < 3; ++c) {
    Image plane = picture(5, 3, 1, [&](int, int y, int x) { return rgb.pixels[c * 15 + y * 5 + x]; });
    const auto want = resize_area(plane, 2, 3);
    EXPECT_TRUE(std::equal(want.begin(), want.end(), small.begin() + c * 6)) << "plane " << c;
  }
  // Fitting to the object (Fashion-MNIST's way) takes grey pictures only.
  EXPECT_THROW(to_dataset_format(rgb, 28, 28), Error);
}

// JPEG in colour: an RGB JPEG keeps three planes (each within JPEG's rounding of the picture's),
// decodes to one plane in grey, and a grey JPEG stays one plane unless RGB is asked for.
TEST_F(Colour, JpegDecodesInColourOrGrey) {
  const Image rgb = picture(16, 8, 3, [](int c, int y, int x) {
    return static_cast<uint8_t>(c == 0 ? 200 : c == 1 ? 40 + 8 * y : 20 + 10 * x);
  });
  const std::string bytes = testing::encode_jpeg(rgb, 100, true);
  const Image kept = decode_image(bytes, "rgb.jpg", kMaxImagePixels, ColorMode::keep);
  ASSERT_EQ(kept.channels, 3);
  ASSERT_EQ(kept.pixels.size(), rgb.pixels.size());
  int worst = 0;
  for (size_t i = 0; i < rgb.pixels.size(); ++i) worst = std::max(worst, std::abs(kept.pixels[i] - rgb.pixels[i]));
  EXPECT_LE(worst, 6) << "planes out of order, or colour lost";
  EXPECT_TRUE(shows_colour(kept));
  const Image grey = decode_image(bytes, "rgb.jpg");
  EXPECT_EQ(grey.channels, 1);
  EXPECT_EQ(grey.pixels.size(), 128u);
  const Image g = picture(16, 8, 1, [](int, int y, int x) { return static_cast<uint8_t>(10 * y + 5 * x); });
  const std::string gbytes = testing::encode_jpeg(g, 100, true);
  EXPECT_EQ(decode_image(gbytes, "grey.jpg", kMaxImagePixels, ColorMode::keep).channels, 1);
  const Image g3 = decode_image(gbytes, "grey.jpg", kMaxImagePixels, ColorMode::rgb);
  ASSERT_EQ(g3.channels, 3);
  EXPECT_FALSE(shows_colour(g3));
}

// inspect draws a colour tile in its own colours: a 2x2 picture of red, green, blue and white
// comes back from the gallery PNG as four solid squares of exactly those colours.
TEST_F(Colour, InspectDrawsColourTilesInColour) {
  GalleryItem item;
  item.image = {2, 2, {255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255}, 3};
  item.caption = {"true: a", "pred: b"};
  const std::string file = root_ + "/gallery.png";
  gallery_png(file, "colours", {item}, 1, "none");
  const Image img = load_image(file, ColorMode::keep);
  ASSERT_EQ(img.channels, 3);
  auto count = [&](int r, int g, int b) {
    size_t n = 0;
    for (size_t i = 0; i < img.plane(); ++i)
      n += img.pixels[i] == r && img.pixels[img.plane() + i] == g && img.pixels[2 * img.plane() + i] == b;
    return n;
  };
  // The tile is enlarged to about 136 pixels a side: each quarter about 68x68.
  for (auto [r, g, b] : {std::tuple{255, 0, 0}, std::tuple{0, 255, 0}, std::tuple{0, 0, 255}})
    EXPECT_GT(count(r, g, b), 3000u) << r << "," << g << "," << b;
}

// Weight budgets count the colour input: an RGB FCN or CNN sized to 10k-200k lands within 5%, and
// its first layer takes three planes. An FCN of 32x32x3 inputs cannot be 10k (its 3,072 inputs
// alone take most of it): one line says so.
TEST_F(Colour, WeightBudgetsCountThreeInputChannels) {
  ModelSpec fcn = default_spec(Family::fcn);
  fcn.in_channels = 3, fcn.height = fcn.width = 32;
  EXPECT_THROW(fit_to_budget(fcn, 10'000), Error);
  for (Family family : {Family::fcn, Family::cnn})
    for (int64_t target : {10'000, 50'000, 200'000}) {
      if (family == Family::fcn && target == 10'000) continue;
      ModelSpec spec = default_spec(family);
      spec.in_channels = 3, spec.height = spec.width = 32;
      const ModelSpec sized = fit_to_budget(spec, target);
      const int64_t weights = count_weights(sized);
      EXPECT_NEAR(static_cast<double>(weights), static_cast<double>(target), 0.05 * target)
          << family_name(family) << " " << target;
      auto model = build_model(sized, 1);
      EXPECT_EQ(static_cast<int64_t>(model->num_values()), weights);
      EXPECT_EQ(model->item_shape().numel(), 3 * 32 * 32);
    }
}

// Saliency of a colour FCN on pictures that are not square (--image-size 4x6): the flat input is
// three 4x6 planes, and both maps have one value per pixel.
TEST_F(Colour, SaliencyOfAColourFcnOnOblongPictures) {
  ModelSpec spec = default_spec(Family::fcn);
  spec.in_channels = 3, spec.height = 4, spec.width = 6, spec.classes = 3;
  spec.hidden = {8};
  auto model = build_model(spec, 1);
  Rng rng(1);
  init_params(*model, InitKind::kaiming_uniform, spec.activation, rng);
  std::vector<float> x(72);
  for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
  EXPECT_EQ(gradient_saliency(*model, x.data(), 1, 3).size(), 24u);
  const std::vector<float> occ = occlusion_saliency(*model, x.data(), 1, 2, 1, {0.0f, 0.0f, 0.0f}, 4, 6);
  EXPECT_EQ(occ.size(), 24u);
  EXPECT_NE(std::count(occ.begin(), occ.end(), 0.0f), 24);
  EXPECT_THROW(occlusion_saliency(*model, x.data(), 1, 2, 1, {0.0f, 0.0f, 0.0f}), Error);  // not square
}

// --color auto: RGB as soon as one training picture shows colour (grey ones get three equal
// planes); grey when none does, even if their files are RGB. --color grey and rgb force it;
// --image-size sets the size; each conversion is cached apart.
TEST_F(Colour, FolderColourAndSizeOptions) {
  const std::string dir = root_ + "/set";
  for (const char* split : {"train", "test"})
    for (int k = 0; k < 2; ++k)
      for (int i = 0; i < 3; ++i)
        put(fmt::format("{}/{}/{}/{}.png", dir, split, k ? "blue" : "red", i),
            picture(6, 4, 3, [&](int c, int y, int x) {
              return static_cast<uint8_t>(c == (k ? 2 : 0) ? 200 - 10 * i : 20 + y + x);
            }));
  // One grey picture among them.
  put(dir + "/train/red/9.png", picture(6, 4, 1, [](int, int y, int x) { return static_cast<uint8_t>(40 * y + x); }));
  const TrainTestData a = load_train_test(dir);
  EXPECT_EQ(a.train.channels, 3);
  EXPECT_EQ(a.test.channels, 3);
  EXPECT_EQ(a.train.pixels(), 3 * 4 * 6);
  // The grey picture (classes sorted: blue 0..2, then red 0..2 and 9): three equal planes.
  const uint8_t* g = a.train.images.data() + 6 * a.train.pixels();
  EXPECT_TRUE(std::equal(g, g + 24, g + 24) && std::equal(g, g + 24, g + 48));
  EXPECT_EQ(g[4 * 6 - 1], 40 * 3 + 5);
  // The same folder in grey: each picture as load_image's luminance.
  DataOptions grey;
  grey.color = DataColor::grey;
  const TrainTestData b = load_train_test(dir, grey);
  EXPECT_EQ(b.train.channels, 1);
  const Image lum = load_image(dir + "/train/blue/1.png");
  EXPECT_TRUE(std::equal(lum.pixels.begin(), lum.pixels.end(), b.train.images.begin() + 1 * 24));
  // Resized: --image-size 8x3 (8 rows, 3 columns), each plane area-averaged.
  DataOptions sized;
  parse_image_size("8x3", &sized.rows, &sized.cols);
  const TrainTestData c = load_train_test(dir, sized);
  EXPECT_EQ(c.train.rows, 8);
  EXPECT_EQ(c.train.cols, 3);
  EXPECT_EQ(c.train.channels, 3);
  EXPECT_EQ(c.train.images.size(), 7u * 3 * 8 * 3);
  const std::vector<uint8_t> want = resize_area(load_image(dir + "/train/blue/1.png", ColorMode::rgb), 8, 3);
  EXPECT_TRUE(std::equal(want.begin(), want.end(), c.train.images.begin() + 1 * 72));
  // Again from the cache, each option set its own.
  FolderLoad how;
  EXPECT_EQ(load_image_folder(dir, grey, &how).train.images, b.train.images);
  EXPECT_TRUE(how.from_cache);
  EXPECT_EQ(load_image_folder(dir, {}, &how).train.images, a.train.images);
  EXPECT_TRUE(how.from_cache);
  // The test split alone, as eval, inspect and serve load it for a model.
  EXPECT_EQ(load_test_set(dir, a.classes, 3, 4, 6).images, a.test.images);
  EXPECT_EQ(load_test_set(dir, a.classes, 1, 4, 6).images, b.test.images);
  EXPECT_EQ(load_test_set(dir, a.classes, 3, 8, 3).images, c.test.images);

  // Grey pixels in RGB files: auto is grey, the luminance libpng gives them.
  const std::string plain = root_ + "/plain";
  for (const char* split : {"train", "test"})
    for (const char* cls : {"a", "b"})
      put(fmt::format("{}/{}/{}/0.png", plain, split, cls),
          with_planes(picture(3, 3, 1, [&](int, int y, int x) { return static_cast<uint8_t>(cls[0] + 10 * y + x); }), 3));
  const TrainTestData p = load_train_test(plain);
  EXPECT_EQ(p.train.channels, 1);
  EXPECT_EQ(p.train.images[4], load_image(plain + "/train/a/0.png").pixels[4]);
  DataOptions rgb;
  rgb.color = DataColor::rgb;
  EXPECT_EQ(load_train_test(plain, rgb).train.channels, 3);
}

// Two loads of a new folder at once (two trainings, or MPI ranks, on one machine) each write the
// cache through a temporary file of their own: both get the set, and the cache left is whole.
TEST_F(Colour, ConcurrentFirstLoadsLeaveAWholeCache) {
  const std::string dir = root_ + "/race";
  for (const char* split : {"train", "test"})
    for (int k = 0; k < 2; ++k)
      for (int i = 0; i < 150; ++i)
        put(fmt::format("{}/{}/k{}/{:03d}.png", dir, split, k, i),
            picture(16, 16, 3, [&](int c, int y, int x) { return static_cast<uint8_t>(k * 90 + c * 40 + y + x + i); }));
  TrainTestData a, b;
  ::testing::internal::CaptureStderr();
  std::thread t([&] { a = load_image_folder(dir); });
  b = load_image_folder(dir);
  t.join();
  const std::string said = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(said.find("cannot cache"), std::string::npos) << said;  // neither writer lost its file
  EXPECT_EQ(a.train.images, b.train.images);
  FolderLoad how;
  const TrainTestData c = load_image_folder(dir, {}, &how);
  EXPECT_TRUE(how.from_cache);
  EXPECT_EQ(c.train.images, a.train.images);
  EXPECT_EQ(c.test.images, a.test.images);
  for (const auto& e : fs::directory_iterator(fs::path(how.cache_file).parent_path()))
    EXPECT_EQ(e.path().extension(), ".bin") << "left behind: " << e.path();
}

TEST_F(Colour, OptionsAreCheckedAndIdxIsGrey) {
  int rows = 0, cols = 0;
  parse_image_size("32", &rows, &cols);
  EXPECT_EQ(rows, 32);
  EXPECT_EQ(cols, 32);
  parse_image_size("auto", &rows, &cols);
  EXPECT_EQ(rows, 0);
  for (const char* bad : {"0", "x", "32x", "12x-3", "2000", "3.5", "32x32x3"}) {
    try {
      parse_image_size(bad, &rows, &cols);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--image-size"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(parse_data_color("blue"), Error);
  EXPECT_EQ(parse_data_color("gray"), DataColor::grey);

  testing::write_tiny_dataset(root_ + "/idx", 40, 20, 10, 3);
  DataOptions rgb;
  rgb.color = DataColor::rgb;
  try {
    load_train_test(root_ + "/idx", rgb);
    ADD_FAILURE() << "an IDX set was loaded in RGB";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("IDX files, which are grey"), std::string::npos) << e.what();
  }
  DataOptions sized;
  sized.rows = 5, sized.cols = 5;
  const TrainTestData d = load_train_test(root_ + "/idx", sized);
  EXPECT_EQ(d.train.rows, 5);
  EXPECT_EQ(d.test.cols, 5);
  EXPECT_EQ(d.train.images.size(), 40u * 25);
  EXPECT_EQ(load_test_set(root_ + "/idx", d.classes, 1, 5, 5).images, d.test.images);
  EXPECT_THROW(load_test_set(root_ + "/idx", d.classes, 3, 5, 5), Error);
  // predict fits an object keeping its aspect, as the IDX images were made: no stretching.
  sized.cols = 4;
  try {
    load_train_test(root_ + "/idx", sized);
    ADD_FAILURE() << "10x10 IDX images were stretched to 5x4";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("keeping that shape"), std::string::npos) << e.what();
  }
}

// Acceptance 3: one picture, converted once by training's gather, once by eval, predict, serve and
// inspect, gives the same input floats and bit-identical logits (each path at batch 1, one thread).
// The picture is larger than the set's size, so every path resizes it, and in colour.
TEST_F(Colour, OnePictureGivesBitIdenticalLogitsOnEveryPath) {
  const std::string dir = root_ + "/shapes";
  Rng rng(5);
  const char* names[3] = {"amber", "cyan", "violet"};
  const int tint[3][3] = {{230, 160, 20}, {30, 200, 210}, {150, 60, 220}};
  for (const char* split : {"train", "test"})
    for (int k = 0; k < 3; ++k)
      for (int i = 0; i < (split[1] == 'r' ? 40 : 8); ++i)
        put(fmt::format("{}/{}/{}/{:02d}.png", dir, split, names[k], i), picture(12, 12, 3, [&](int c, int y, int x) {
              const bool on = (x - 6) * (x - 6) + (y - 6) * (y - 6) < 16 + static_cast<int>(rng.below(12));
              return static_cast<uint8_t>(on ? tint[k][c] : rng.below(40));
            }));
  // The picture under test: 20x15, so it is resized (area averaging) on every path.
  const std::string odd = dir + "/test/cyan/99.png";
  put(odd, picture(20, 15, 3, [&](int c, int y, int x) {
        return static_cast<uint8_t>((x - 10) * (x - 10) + (y - 7) * (y - 7) < 30 ? tint[1][c] : (x * 7 + y * 3 + c * 50) % 60);
      }));
  TrainConfig cfg;
  cfg.data_dir = dir;
  cfg.out_dir = root_ + "/run";
  cfg.model.channels = {4, 8};
  cfg.model.hidden = {16};
  cfg.epochs = 1;
  cfg.batch_size = 16;
  cfg.val_count = 12;
  cfg.threads = 1;
  cfg.progress = "none";
  train(cfg);

  kernels::set_threads(1);
  LoadedModel m = load_model(cfg.out_dir + "/model.ckpt");
  ASSERT_EQ(m.spec.in_channels, 3);
  ASSERT_EQ(m.spec.height, 12);
  const int64_t k = m.spec.classes, px = 3 * 12 * 12;
  auto logits_of = [&](const std::vector<float>& x) {
    ConstView z = m.model->infer(ConstView(x.data(), Shape{1, px}));
    return std::vector<float>(z.data, z.data + k);
  };

  // 1. Training: the run's data as train() loads it, the picture gathered as a batch of one.
  const TrainTestData data = load_train_test(dir, cfg.data);
  const uint32_t index = 8 + 8;  // amber's 8, then cyan's 00..07, 99
  ASSERT_EQ(data.test.labels[index], 1);
  std::vector<float> x_train(static_cast<size_t>(px));
  int32_t label = -1;
  gather_batch(data.test, &index, 1, m.norm, x_train.data(), &label);
  const std::vector<float> reference = logits_of(x_train);

  // 2. Eval: `tailor eval --eval-batch 1 --logits` (9 significant digits: a float exactly).
  auto ran = testing::run_tailor("eval " + cfg.out_dir + " --eval-batch 1 --threads 1 --logits " + root_ + "/logits.csv",
                                 root_);
  ASSERT_EQ(ran.code, 0) << ran.err;
  const std::string csv = read_file(root_ + "/logits.csv");
  const size_t row = csv.find("\n" + std::to_string(index) + ",");
  ASSERT_NE(row, std::string::npos);
  std::vector<float> from_eval;
  const char* at = csv.c_str() + row + 1 + std::to_string(index).size();
  for (int64_t j = 0; j < k; ++j) {
    char* end = nullptr;
    from_eval.push_back(std::strtof(at + 1, &end));
    at = end;
  }

  // 3. Predict: the file, through the one conversion predict calls.
  const std::vector<float> x_predict = input_for_model(m, fit_for_model(m, decode_for_model(m, read_file(odd), odd)));
  EXPECT_EQ(x_predict, x_train) << "predict's input differs from training's";
  const std::vector<float> from_predict = logits_of(x_predict);

  // 4. Serve: the file's bytes uploaded. Beside it a grey run of the same folder: each run gets
  // its own conversion of the test set.
  TrainConfig grey_cfg = cfg;
  grey_cfg.data.color = DataColor::grey;
  grey_cfg.out_dir = root_ + "/run-grey";
  train(grey_cfg);
  kernels::set_threads(1);
  std::vector<float> from_serve;
  {
    serve::Options opt;
    opt.port = 0;
    opt.threads = 1;
    serve::Server server({cfg.out_dir, grey_cfg.out_dir}, opt);
    const int port = server.bind();
    std::thread t([&] { server.run(); });
    httplib::Client c("127.0.0.1", port);
    auto res = c.Post("/api/predict", read_file(odd), "image/png");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    const auto j = nlohmann::json::parse(res->body);
    EXPECT_EQ(j["image"]["channels"], 3);
    from_serve = j["results"][0]["logits"].get<std::vector<float>>();
    for (const char* run : {"0", "1"}) {
      auto conf = c.Get(std::string("/api/confusion?run=") + run);
      ASSERT_TRUE(conf);
      EXPECT_EQ(conf->status, 200) << "run " << run << ": " << conf->body;
      auto tile = c.Get(std::string("/api/testimage/16.png?run=") + run);
      ASSERT_TRUE(tile);
      ASSERT_EQ(tile->status, 200);
      EXPECT_EQ(decode_image(tile->body, "tile", kMaxImagePixels, ColorMode::keep).channels, run[0] == '0' ? 3 : 1);
    }
    server.stop();
    t.join();
  }

  // 5. Inspect: its predictions over the test set (batch 1) and its saliency input.
  const Dataset test = load_test_set(dir, m.classes, 3, 12, 12);
  const Predictions p = predict_dataset(*m.model, test, m.norm, 1);
  std::vector<float> x_inspect(static_cast<size_t>(px));
  to_model_input(test.images.data() + index * px, static_cast<size_t>(px), m.norm, x_inspect.data());
  EXPECT_EQ(x_inspect, x_train) << "inspect's input differs from training's";
  const std::vector<float> want_probs = softmax(reference.data(), k);

  ASSERT_EQ(reference.size(), static_cast<size_t>(k));
  EXPECT_EQ(std::memcmp(from_eval.data(), reference.data(), k * sizeof(float)), 0) << "eval";
  EXPECT_EQ(std::memcmp(from_predict.data(), reference.data(), k * sizeof(float)), 0) << "predict";
  ASSERT_EQ(from_serve.size(), static_cast<size_t>(k));
  EXPECT_EQ(std::memcmp(from_serve.data(), reference.data(), k * sizeof(float)), 0) << "serve";
  EXPECT_EQ(std::memcmp(p.probs.data() + index * k, want_probs.data(), k * sizeof(float)), 0) << "inspect";
  // And the CLI's predict agrees with serve's top class.
  ran = testing::run_tailor("predict " + cfg.out_dir + " " + odd + " --top 1", root_);
  ASSERT_EQ(ran.code, 0) << ran.err;
  const int64_t best = std::max_element(reference.begin(), reference.end()) - reference.begin();
  EXPECT_NE(ran.out.find(": " + m.classes[static_cast<size_t>(best)] + " "), std::string::npos) << ran.out;
}

// Acceptance 2: Fashion-MNIST items tinted per class, in ten hues of similar luminance, each
// picture at a random brightness, so that grey keeps little of the tint. The same CNN trained on
// the RGB set beats it trained on the set's grey conversion.
TEST_F(Colour, RgbCnnBeatsTheSameCnnOnGrey) {
  if (!fs::exists(std::string(kDefaultDataDir) + "/t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const Dataset train_idx = load_dataset(kDefaultDataDir, "train"), test_idx = load_dataset(kDefaultDataDir, "t10k");
  const std::string dir = root_ + "/tinted";
  // Ten hues of similar luminance.
  const float hue[10][3] = {{1.0f, 0.3f, 0.3f}, {0.3f, 0.62f, 0.3f}, {0.35f, 0.45f, 1.0f}, {0.9f, 0.5f, 0.1f},
                            {0.75f, 0.35f, 0.9f}, {0.15f, 0.62f, 0.62f}, {0.85f, 0.5f, 0.5f}, {0.55f, 0.58f, 0.2f},
                            {0.95f, 0.35f, 0.75f}, {0.35f, 0.58f, 0.85f}};
  Rng rng(9);
  auto write = [&](const Dataset& d, size_t n, const std::string& split) {
    for (size_t i = 0; i < n; ++i) {
      const int label = d.labels[i];
      const float* h = hue[label];
      const float bright = 0.55f + 0.45f * static_cast<float>(rng.below(1000)) / 1000.0f;
      put(fmt::format("{}/{}/c{}/{:05d}.png", dir, split, label, i), picture(28, 28, 3, [&](int c, int y, int x) {
            return static_cast<uint8_t>(std::lround(d.images[i * 784 + static_cast<size_t>(y) * 28 + x] * h[c] * bright));
          }));
    }
  };
  write(train_idx, 4000, "train");
  write(test_idx, 1000, "test");
  double acc[2] = {0, 0};
  for (int colour = 0; colour < 2; ++colour) {
    TrainConfig cfg;
    cfg.data_dir = dir;
    cfg.data.color = colour ? DataColor::rgb : DataColor::grey;
    cfg.out_dir = root_ + (colour ? "/rgb" : "/grey");
    cfg.model.channels = {8, 16};
    cfg.model.hidden = {32};
    cfg.epochs = 3;
    cfg.val_count = 0;
    cfg.threads = 2;
    cfg.progress = "none";
    acc[colour] = train(cfg).test_acc;
    const LoadedModel m = load_model(cfg.out_dir + "/model.ckpt");
    EXPECT_EQ(m.spec.in_channels, colour ? 3 : 1);
  }
  std::printf("tinted Fashion-MNIST, 4000 training pictures, 3 epochs: grey %.2f%%, rgb %.2f%%\n", acc[0], acc[1]);
  EXPECT_GT(acc[1], acc[0] + 5.0) << "the tint tells the class; the RGB model should use it";
}

}  // namespace
}  // namespace tailor
