#pragma once
#include <string>
#include <vector>

#include "nn/activation.hpp"
#include "nn/sequential.hpp"
#include "util/rng.hpp"

namespace tailor {

// Weight initialisation schemes; biases start at 0, batch-norm scale at 1 and shift at 0.
//   normal:          N(0, 0.01^2)                        ("random normal" in the study)
//   xavier-uniform:  U(-a, a), a = sqrt(6 / (fan_in + fan_out))      (Glorot & Bengio 2010)
//   xavier-normal:   N(0, 2 / (fan_in + fan_out))
//   kaiming-uniform: U(-a, a), a = gain * sqrt(3 / fan_in)           (He et al. 2015)
//   kaiming-normal:  N(0, gain^2 / fan_in)
// gain is sqrt(2) for relu, 5/3 for tanh, 1 for sigmoid. "xavier" and "kaiming" mean the uniform
// variants (PyTorch's kaiming_uniform_ is what the study used).
enum class InitKind { normal, xavier_uniform, xavier_normal, kaiming_uniform, kaiming_normal };

InitKind parse_init(const std::string& name);  // throws tailor::Error
std::string init_name(InitKind k);
std::vector<std::string> init_names();  // every name parse_init takes
void init_params(Sequential& model, InitKind kind, ActivationKind activation, Rng& rng);

}  // namespace tailor
