// Checkpoints: save -> load gives bit-identical logits; every kind of damage is a clear error.
#include <cstring>
#include <filesystem>

#include <gtest/gtest.h>
#include <zlib.h>

#include "nn/init.hpp"
#include "nn/model_spec.hpp"
#include "train/checkpoint.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace tailor {
namespace {

namespace fs = std::filesystem;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tailor_ckpt_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    spec_ = default_spec(Family::cnn);
    spec_.channels = {4, 8};
    spec_.hidden = {12};
    model_ = build_model(spec_, 7);
    Rng rng(3);
    init_params(*model_, InitKind::kaiming_uniform, ActivationKind::relu, rng);
    // Move the batch-norm statistics off their defaults with one training forward.
    for (size_t i = 0; i < input_.size(); ++i) input_[i] = rng.normal();
    model_->forward(ConstView(input_.data(), Shape{4, 784}), Mode::train);
    ck_.meta = {{"model", spec_to_json(spec_)},
                {"normalization", {{"mean", 0.25}, {"std", 0.5}}},
                {"classes", fashion_mnist_class_names()}};
    ck_.weights.assign(model_->values(), model_->values() + model_->num_values());
    ck_.stats.assign(model_->buffer_values(), model_->buffer_values() + model_->num_buffer_values());
    ck_.optim_state.assign(2 * model_->num_values(), 0.125f);
    path_ = (dir_ / "model.ckpt").string();
    save_checkpoint(path_, ck_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<float> logits(Sequential& m) {
    ConstView z = m.forward(ConstView(input_.data(), Shape{4, 784}), Mode::eval);
    return {z.data, z.data + z.numel()};
  }
  void expect_error(const std::string& bytes, const std::string& needle) {
    write_file_atomic(path_, bytes);
    try {
      load_model(path_);
      FAIL() << "expected an error containing '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path_), std::string::npos) << e.what();
    }
  }

  fs::path dir_;
  std::string path_;
  ModelSpec spec_;
  std::unique_ptr<Sequential> model_;
  std::vector<float> input_ = std::vector<float>(4 * 784);
  Checkpoint ck_;
};

TEST_F(CheckpointTest, SaveLoadGivesBitIdenticalLogits) {
  LoadedModel m = load_model(path_);
  const std::vector<float> a = logits(*model_), b = logits(*m.model);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
  EXPECT_EQ(m.norm.channels, 1);
  EXPECT_FLOAT_EQ(m.norm.mean[0], 0.25f);
  EXPECT_FLOAT_EQ(m.norm.std[0], 0.5f);
  EXPECT_EQ(m.classes[9], "Ankle boot");
  Checkpoint back = read_checkpoint(path_);
  EXPECT_EQ(back.optim_state, ck_.optim_state);
  EXPECT_EQ(back.stats, ck_.stats);
}

TEST_F(CheckpointTest, TruncatedIsAnError) {
  const std::string bytes = read_file(path_);
  for (size_t keep : {size_t{0}, size_t{5}, size_t{20}, bytes.size() / 2, bytes.size() - 1})
    expect_error(bytes.substr(0, keep), "checkpoint");
}

TEST_F(CheckpointTest, FlippedByteFailsTheChecksum) {
  std::string bytes = read_file(path_);
  bytes[bytes.size() / 2] ^= 0x40;
  expect_error(bytes, "checksum");
}

TEST_F(CheckpointTest, WrongMagicAndVersion) {
  std::string bytes = read_file(path_);
  std::string other = bytes;
  other[0] = 'X';
  expect_error(other, "not a tailor checkpoint");
  bytes[8] = 9;  // version field
  expect_error(bytes, "version 9");
}

TEST_F(CheckpointTest, HugeCountsAreRejectedBeforeAllocating) {
  // A file with a valid checksum whose weight array claims 2^60 floats: the count is checked
  // against the bytes present before anything is allocated.
  const std::string meta = ck_.meta.dump();
  std::string bytes("TAILORCK");
  auto put = [&bytes](auto v) { bytes.append(reinterpret_cast<const char*>(&v), sizeof v); };
  put(uint32_t{kCheckpointVersion});
  put(uint64_t{meta.size()});
  bytes += meta;
  put(uint64_t{1} << 60);
  put(uint32_t(crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size())));
  expect_error(bytes, "does not fit");
}

TEST_F(CheckpointTest, ArraysThatDoNotMatchTheModelAreRejected) {
  Checkpoint bad = ck_;
  bad.weights.resize(3);
  save_checkpoint(path_, bad);
  expect_error(read_file(path_), "do not match");
}

// Found by fuzz_checkpoint: a model without batch norm has an empty statistics array, and
// reading it passed a null pointer to memcpy (undefined behaviour, flagged by UBSan).
TEST_F(CheckpointTest, ModelWithoutBatchNormRoundTrips) {
  ModelSpec spec = spec_;
  spec.batchnorm = false;
  auto model = build_model(spec, 1);
  ASSERT_EQ(model->num_buffer_values(), 0u);
  Checkpoint ck = ck_;
  ck.meta["model"] = spec_to_json(spec);
  ck.weights.assign(model->num_values(), 0.5f);
  ck.stats.clear();
  ck.optim_state.clear();
  save_checkpoint(path_, ck);
  LoadedModel m = load_model(path_);
  EXPECT_EQ(m.model->num_values(), model->num_values());
  EXPECT_EQ(m.model->values()[0], 0.5f);
}

// Every pool round-trips with bit-identical logits; a checkpoint from before pooling was a choice
// (no "pool" in its model description) loads as max-pooled, giving the logits it always gave; an
// unknown pool is one error naming the checkpoint and the value.
TEST_F(CheckpointTest, PoolIsRecordedAndOlderCheckpointsLoadAsMax) {
  for (kernels::PoolKind kind : {kernels::PoolKind::avg, kernels::PoolKind::l2}) {
    ModelSpec spec = spec_;
    spec.pool = kind;
    auto model = build_model(spec, 7);
    std::copy_n(model_->values(), model_->num_values(), model->values());
    std::copy_n(model_->buffer_values(), model_->num_buffer_values(), model->buffer_values());
    Checkpoint ck = ck_;
    ck.meta["model"] = spec_to_json(spec);
    EXPECT_EQ(ck.meta["model"]["pool"], kernels::pool_name(kind));
    save_checkpoint(path_, ck);
    LoadedModel m = load_model(path_);
    EXPECT_EQ(m.spec.pool, kind);
    EXPECT_EQ(logits(*m.model), logits(*model)) << kernels::pool_name(kind);
    EXPECT_NE(logits(*m.model), logits(*model_)) << "the pool changes the logits";
  }
  Checkpoint old = ck_;
  old.meta["model"].erase("pool");
  save_checkpoint(path_, old);
  LoadedModel m = load_model(path_);
  EXPECT_EQ(m.spec.pool, kernels::PoolKind::max);
  EXPECT_EQ(logits(*m.model), logits(*model_));
  old.meta["model"]["pool"] = "median";
  save_checkpoint(path_, old);
  expect_error(read_file(path_), "median");
}

// A colour model's normalisation is one mean and std per channel, written as lists (a grey one
// stays two numbers, as before colour); a count that does not match the model's input channels,
// or a std that is not positive, is one line naming the file.
TEST_F(CheckpointTest, ColourNormalisationPerChannel) {
  Normalization n;
  n.channels = 3;
  n.mean = {0.1f, 0.2f, 0.3f};
  n.std = {0.4f, 0.5f, 0.6f};
  const nlohmann::json j = normalization_json(n);
  EXPECT_TRUE(j["mean"].is_array());
  EXPECT_TRUE(normalization_json(Normalization{}).at("mean").is_number());
  ModelSpec colour = spec_;
  colour.in_channels = 3;
  auto rgb = build_model(colour, 7);
  Checkpoint ck = ck_;
  ck.meta["model"] = spec_to_json(colour);
  ck.meta["normalization"] = j;
  ck.weights.assign(rgb->values(), rgb->values() + rgb->num_values());
  ck.stats.assign(rgb->buffer_values(), rgb->buffer_values() + rgb->num_buffer_values());
  save_checkpoint(path_, ck);
  const LoadedModel m = load_model(path_);
  EXPECT_EQ(m.norm.channels, 3);
  EXPECT_EQ(m.norm.mean, n.mean);
  EXPECT_EQ(m.norm.std, n.std);
  EXPECT_EQ(m.model->item_shape().numel(), 3 * 28 * 28);
  ck.meta["normalization"]["mean"] = {0.1, 0.2};
  save_checkpoint(path_, ck);
  expect_error(read_file(path_), "2 value(s) for 3 channel(s)");
  ck.meta["normalization"] = j;
  ck.meta["normalization"]["std"] = {0.4, 0.0, 0.6};
  save_checkpoint(path_, ck);
  expect_error(read_file(path_), "not usable");
  ck.meta["normalization"] = {{"mean", 0.25}, {"std", 0.5}};  // a grey pair for a colour model
  save_checkpoint(path_, ck);
  expect_error(read_file(path_), "1 value(s) for 3 channel(s)");
}

// A description that claims a vast model is refused from the description, before a model is
// built: what is allocated never outgrows the file.
TEST_F(CheckpointTest, VastModelDescriptionsAreRefusedBeforeBuilding) {
  auto with_model = [&](const nlohmann::json& model) {
    Checkpoint bad = ck_;
    bad.meta["model"] = model;
    save_checkpoint(path_, bad);
    return read_file(path_);
  };
  nlohmann::json big = spec_to_json(spec_);
  big["hidden"] = {1000000, 1000000};
  expect_error(with_model(big), "implausibly large");
  // Widths whose weight count overflows 64 bits: the count saturates instead of wrapping.
  nlohmann::json overflow = spec_to_json(spec_);
  overflow["in_channels"] = 64;
  overflow["height"] = overflow["width"] = 4096;
  overflow["hidden"] = {1000000, 1000000, 1000000, 1000000};
  expect_error(with_model(overflow), "implausibly large");
  nlohmann::json huge_image = spec_to_json(spec_);
  huge_image["height"] = 100000;
  expect_error(with_model(huge_image), "out of range");
  // Plausible, but the file holds fewer weights than the description needs.
  nlohmann::json wider = spec_to_json(spec_);
  wider["hidden"] = {1000, 500};
  expect_error(with_model(wider), "do not match");
}

// The run's settings are read from the checkpoint in one place, load_model: a wrong type or
// value there is one line naming the file (eval once stopped with a bare JSON exception).
TEST_F(CheckpointTest, RunSettingsAreCheckedWhereTheyAreRead) {
  {
    LoadedModel m = load_model(path_);
    EXPECT_EQ(m.data_dir, kDefaultDataDir);  // an older checkpoint without them: the defaults
    EXPECT_EQ(m.eval_batch, 256);
    EXPECT_EQ(m.threads, 1);
  }
  Checkpoint ck = ck_;
  ck.meta["data_dir"] = "/data/x";
  ck.meta["eval_batch"] = 64;
  ck.meta["threads"] = 2;
  save_checkpoint(path_, ck);
  LoadedModel m = load_model(path_);
  EXPECT_EQ(m.data_dir, "/data/x");
  EXPECT_EQ(m.eval_batch, 64);
  EXPECT_EQ(m.threads, 2);
  ck.meta["threads"] = "two";
  save_checkpoint(path_, ck);
  expect_error(read_file(path_), "wrong type");
  ck.meta["threads"] = 2;
  ck.meta["eval_batch"] = 0;
  save_checkpoint(path_, ck);
  expect_error(read_file(path_), "eval_batch 0");
}

TEST_F(CheckpointTest, MissingFileNamesIt) {
  fs::remove(path_);
  try {
    load_model(path_);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path_), std::string::npos);
  }
}

}  // namespace
}  // namespace tailor
