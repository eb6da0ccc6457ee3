#pragma once
// model.ckpt: everything needed to evaluate, predict or resume.
//   "TAILORCK" | u32 version | u64 n | meta JSON (n bytes: model spec, normalisation, classes,
//   optimizer, step count) | u64 n | weights (n f32) | u64 n | batch-norm statistics (n f32) |
//   u64 n | optimizer state (n f32) | u32 CRC-32 of every byte before it.
// Little-endian. Counts are checked against the file size before anything is allocated.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset.hpp"
#include "data/image.hpp"
#include "nn/model_spec.hpp"
#include "nn/sequential.hpp"

namespace tailor {

inline constexpr uint32_t kCheckpointVersion = 1;

struct Checkpoint {
  nlohmann::json meta;
  std::vector<float> weights, stats, optim_state;
};

void save_checkpoint(const std::string& path, const Checkpoint& ck);  // atomic
Checkpoint read_checkpoint(const std::string& path);                  // throws tailor::Error

// The "normalization" entry of a checkpoint's metadata: {"mean": m, "std": s} for one channel
// (as every checkpoint before colour), lists of one value per channel otherwise.
nlohmann::json normalization_json(const Normalization& norm);
// Reads it back for a model of `channels` inputs; a wrong count or a non-positive std throws.
Normalization normalization_from_json(const nlohmann::json& j, int channels);

// What model.ckpt says besides its arrays, each key spelled here only: the trainer writes it with
// model_meta_json, load_model reads it with model_meta_from_json (older checkpoints get the
// defaults below for what they lack).
struct ModelMeta {
  ModelSpec spec;
  Normalization norm;
  std::vector<std::string> classes;
  std::string optimizer = "adam";
  int64_t steps = 0, epochs_run = 0;
  uint64_t seed = 1;
  float ema = 0;
  // The run's own settings, what every command repeats: its data directory (absolute; "" for
  // pictures given in memory), evaluation batch and thread count.
  std::string data_dir = kDefaultDataDir;
  int64_t eval_batch = 256;
  int threads = 1;
  // How predict and serve turn a picture into input: as the training pictures were made.
  PictureFit pictures = PictureFit::object;
  // The run's test-time augmentation (train --tta flip): its evaluations averaged each picture's
  // logits with its mirror's, and so do eval, predict, serve, inspect and export (their --tta
  // changes it).
  bool tta_flip = false;
};
nlohmann::json model_meta_json(const ModelMeta& m);
// Throws tailor::Error naming what is missing, of the wrong type or out of range.
ModelMeta model_meta_from_json(const nlohmann::json& j);

// A checkpoint made into a ready model.
struct LoadedModel : ModelMeta {
  std::unique_ptr<Sequential> model;
};
LoadedModel load_model(const std::string& path);

// The one way a picture becomes a loaded model's input (predict and serve; training, eval and
// inspect read a data set's converted bytes through gather_batch, which is to_model_input too):
//   decode_for_model: the file's bytes decoded in the model's colour (grey for a one-channel
//     model, RGB for three), at most max_pixels;
//   fit_for_model: fitted to the model's size as its training pictures were (fit_picture), giving
//     (channels, height, width) bytes;
//   input_for_model: to_model_input with the run's normalisation.
Image decode_for_model(const LoadedModel& m, const std::string& bytes, const std::string& name,
                       uint64_t max_pixels = kMaxImagePixels);
std::vector<uint8_t> fit_for_model(const LoadedModel& m, const Image& img);
std::vector<float> input_for_model(const LoadedModel& m, const std::vector<uint8_t>& pixels);
// The logits (classes) of one picture's input x (input_for_model), as the run evaluates: with its
// test-time flip, the mean of the picture's and its mirror's.
std::vector<float> logits_for_model(LoadedModel& m, const std::vector<float>& x);
// A command's --tta: "run" (the run's own), "none" or "flip"; sets m.tta_flip.
void apply_tta_option(LoadedModel& m, const std::string& option);

// A run directory or a checkpoint file -> the checkpoint path (commands take either).
std::string checkpoint_path(const std::string& run);

}  // namespace tailor
