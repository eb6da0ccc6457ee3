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

// A checkpoint made into a ready model.
struct LoadedModel {
  ModelSpec spec;
  Normalization norm;
  std::vector<std::string> classes;
  // The run's own settings, read here once for every command (older checkpoints get these
  // defaults): its data directory, evaluation batch and thread count.
  std::string data_dir = kDefaultDataDir;
  int64_t eval_batch = 256;
  int threads = 1;
  // How predict and serve turn a picture into input: as the training pictures were made.
  PictureFit pictures = PictureFit::object;
  std::unique_ptr<Sequential> model;
  nlohmann::json meta;
};
LoadedModel load_model(const std::string& path);

// A run directory or a checkpoint file -> the checkpoint path (commands take either).
std::string checkpoint_path(const std::string& run);

}  // namespace tailor
