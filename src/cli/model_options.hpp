#pragma once
// The model options shared by `train` and `summary`.
#include <string>

#include <CLI/CLI.hpp>

#include "nn/model_spec.hpp"

namespace tailor::cli {

struct ModelOptions {
  std::string family = "cnn";
  std::string weights;   // "" -> 100k unless widths are given
  std::string hidden;    // "120,60"
  std::string channels;  // "16,32"
  bool batchnorm = true;
  float dropout = 0.2f;
  std::string activation = "relu";
};

void add_model_options(CLI::App& app, ModelOptions& o);

// The template spec and the weight target (0: widths used as given).
struct ResolvedModel {
  ModelSpec spec;
  int64_t target = 0;
};
ResolvedModel resolve_model(const ModelOptions& o);

}  // namespace tailor::cli
