#pragma once
// Every setting of a training run, typed; printed and saved with the run as config.toml.
#include <cstdint>
#include <string>

#include "data/augment.hpp"
#include "data/dataset.hpp"
#include "nn/init.hpp"
#include "nn/model_spec.hpp"
#include "optim/optimizer.hpp"
#include "optim/schedule.hpp"

namespace tailor {

enum class StopOn { val, test };

struct TrainConfig {
  ModelSpec model = default_spec(Family::cnn);  // the template; sized to weights_target if set
  int64_t weights_target = 0;                   // 0: use the widths as given
  std::string data_dir = kDefaultDataDir;
  DataOptions data;  // --image-size, --color
  std::string out_dir = "runs/latest";
  OptimConfig optim;
  ScheduleConfig schedule;
  InitKind init = InitKind::kaiming_uniform;
  int64_t epochs = 10;
  int64_t batch_size = 64;
  int64_t val_count = 5000;
  uint64_t seed = 1;
  int threads = 0;               // 0: all cores
  bool data_parallel = true;     // --data-parallel auto|off: see step_replicas (trainer.hpp)
  int replicas = 0;              // the run's data-parallel replicas; 0: decided when it starts
  bool bf16 = false;             // --precision bf16: training products in bfloat16, float master weights
  float stop_at = 0;             // stop once accuracy (percent) on stop_on reaches it; 0: off
  StopOn stop_on = StopOn::val;
  int64_t patience = 0;          // epochs without a better val loss before stopping; 0: off
  float label_smoothing = 0;
  AugmentConfig augment;
  // An exponential moving average of the weights (and batch-norm statistics), decay per step, with
  // the warm-up min(decay, (1 + t) / (10 + t)); evaluated and saved instead of the weights; 0: off.
  float ema = 0;
  // Test-time augmentation: every evaluation averages the logits of each picture and of its
  // left-right mirror (and eval, predict, serve, inspect and export follow the run's choice).
  bool tta_flip = false;
  // Knowledge distillation (--teacher): a saved run whose logits on the training images soften
  // the targets (nn/loss.hpp, distillation_loss); "{seed}" in it stands for this run's seed. The
  // run's config.toml keeps the path made absolute, with the seed put in. "": off.
  std::string teacher;
  float distill_weight = 0.5f;       // the teacher's share of the loss, in [0, 1]
  float distill_temperature = 4.0f;  // both softmaxes' temperature, in [1, 100]
  // 128: a CNN block's conv output stays in cache between the conv and the fused batch-norm,
  // relu and pool pass (CNN-100k evaluation: 80k images/s at 256, 95k at 128; docs/performance.md).
  int64_t eval_batch = 128;
  std::string progress = "auto";  // auto (bar on a terminal), bar, lines, none
};

// TOML text of the whole configuration plus what the run found out (`extra`: version, threads,
// weights, data statistics), so a run can be read and repeated.
std::string config_to_toml(const TrainConfig& cfg, const std::string& extra_toml_table);
// The configuration back from config_to_toml's text (what `train --resume` continues with);
// throws tailor::Error naming `path` and the key that is missing or of the wrong type.
TrainConfig config_from_toml(const std::string& text, const std::string& path);

}  // namespace tailor
