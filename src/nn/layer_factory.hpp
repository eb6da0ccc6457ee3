#pragma once
// Layers from their JSON description (the vocabulary of Layer::describe and of the PyTorch
// scripts in scripts/ and bench/), so a reference model can be rebuilt exactly.
#include <nlohmann/json.hpp>

#include "nn/layer.hpp"

namespace tailor {

LayerPtr layer_from_json(const nlohmann::json& j, uint64_t seed = 0);  // throws tailor::Error

}  // namespace tailor
