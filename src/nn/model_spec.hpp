#pragma once
// What a model is, independent of its weights: the family, its widths and options. Built into a
// Sequential by build_model; sized to a weight budget by fit_to_budget.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/activation.hpp"
#include "nn/arch.hpp"
#include "nn/pool.hpp"
#include "nn/sequential.hpp"

namespace tailor {

enum class Family { fcn, cnn };
Family parse_family(const std::string& name);  // throws tailor::Error
std::string family_name(Family f);
std::vector<std::string> family_names();  // every name parse_family takes

struct ModelSpec {
  Family family = Family::cnn;
  // CNN: one block per entry: conv 3x3 pad 1 -> [batch norm] -> activation -> 2x2 pool.
  std::vector<int64_t> channels;
  kernels::PoolKind pool = kernels::PoolKind::max;  // the blocks' pooling: max, avg or l2
  // Or, built from stages (--arch, nn/arch.hpp; then `channels` and `pool` are unused): the
  // stages, and the head: global average pooling (gap) or flatten.
  std::vector<Stage> stages;
  bool gap = true;
  bool staged() const { return !stages.empty(); }
  // Then flatten (or the staged head) [-> dropout, CNN only] and one block per entry:
  // linear -> [batch norm] -> activation -> [dropout].
  std::vector<int64_t> hidden;
  bool batchnorm = true;
  float dropout = 0.2f;
  ActivationKind activation = ActivationKind::relu;
  // Input and output, taken from the data set.
  int64_t in_channels = 1, height = 28, width = 28, classes = 10;

  // "conv 16,32 | fc 60", "conv 16,32 l2-pool | fc 60"; a staged CNN: its --arch text.
  std::string widths_str() const;
};

// The widths each family is scaled from when sized to a budget.
ModelSpec default_spec(Family family);

// Trainable parameters (weights, biases, batch-norm scale and shift), as PyTorch's
// sum(p.numel() for p in model.parameters()) counts them.
// Saturates at INT64_MAX instead of overflowing (a damaged checkpoint can claim any size).
int64_t count_weights(const ModelSpec& spec);

// Multiply-adds x 2 of one image's forward pass through the convolutions and linear layers (what
// a training step's cost grows with), without building the model.
double forward_flops(const ModelSpec& spec);

// About how many bytes training `spec` takes at `batch` images per step: weights, gradients and
// two optimizer moments, plus every layer's output and its gradient for the batch. Saturating.
uint64_t training_bytes(const ModelSpec& spec, int64_t batch);
// Refuses, with one line naming the flags that set the size, a model whose training_bytes pass
// `limit` (the caller passes most of the machine's memory), before anything is allocated.
void check_training_memory(const ModelSpec& spec, int64_t batch, uint64_t limit);

// Scales every width of `tmpl` by one factor, then (not for a staged CNN, whose widths must keep
// their equalities for the residual sums) tunes single widths, so that the weight count lands as
// close to `target` as possible; throws tailor::Error when the result is not within +-5% (the
// budget is too small for the shape, or too coarse).
ModelSpec fit_to_budget(const ModelSpec& tmpl, int64_t target);

// "100k", "12500", "1.5M" -> count; throws tailor::Error naming the value.
int64_t parse_weight_count(const std::string& text);

std::unique_ptr<Sequential> build_model(const ModelSpec& spec, uint64_t dropout_seed);

nlohmann::json spec_to_json(const ModelSpec& spec);
// A description without "pool" (a checkpoint from before pooling was a choice) is max-pooled.
ModelSpec spec_from_json(const nlohmann::json& j);  // throws tailor::Error on a bad description

}  // namespace tailor
