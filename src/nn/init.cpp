#include "nn/init.hpp"

#include <cmath>

#include "util/error.hpp"
#include "util/names.hpp"

namespace tailor {

namespace {
// "xavier" and "kaiming" are the uniform kinds, as PyTorch's xavier_uniform_ and kaiming_uniform_.
constexpr NameTable<InitKind> kInitNames[] = {{"normal", InitKind::normal},
                                              {"xavier", InitKind::xavier_uniform},
                                              {"xavier-uniform", InitKind::xavier_uniform},
                                              {"xavier-normal", InitKind::xavier_normal},
                                              {"kaiming", InitKind::kaiming_uniform},
                                              {"kaiming-uniform", InitKind::kaiming_uniform},
                                              {"kaiming-normal", InitKind::kaiming_normal}};
}  // namespace

InitKind parse_init(const std::string& name) { return parse_name(kInitNames, name, "--init"); }
std::vector<std::string> init_names() { return names_of(kInitNames); }
std::string init_name(InitKind k) {
  // Printed by their full names (config.toml has always said xavier-uniform, kaiming-uniform).
  if (k == InitKind::xavier_uniform) return "xavier-uniform";
  if (k == InitKind::kaiming_uniform) return "kaiming-uniform";
  return name_of(kInitNames, k);
}

void init_params(Sequential& model, InitKind kind, ActivationKind activation, Rng& rng) {
  const double gain = activation == ActivationKind::relu   ? std::sqrt(2.0)
                      : activation == ActivationKind::tanh ? 5.0 / 3.0
                                                           : 1.0;
  for (Param* p : model.params()) {
    float* v = p->value;
    const int64_t n = p->numel();
    switch (p->role) {
      case ParamRole::bias:
      case ParamRole::bn_shift:
        for (int64_t i = 0; i < n; ++i) v[i] = 0.0f;
        continue;
      case ParamRole::bn_scale:
        for (int64_t i = 0; i < n; ++i) v[i] = 1.0f;
        continue;
      case ParamRole::weight: break;
    }
    const double fi = static_cast<double>(p->fan_in), fo = static_cast<double>(p->fan_out);
    double bound = 0, stddev = 0;
    switch (kind) {
      case InitKind::normal: stddev = 0.01; break;
      case InitKind::xavier_uniform: bound = std::sqrt(6.0 / (fi + fo)); break;
      case InitKind::xavier_normal: stddev = std::sqrt(2.0 / (fi + fo)); break;
      case InitKind::kaiming_uniform: bound = gain * std::sqrt(3.0 / fi); break;
      case InitKind::kaiming_normal: stddev = gain / std::sqrt(fi); break;
    }
    for (int64_t i = 0; i < n; ++i)
      v[i] = bound > 0 ? rng.uniform(static_cast<float>(-bound), static_cast<float>(bound))
                       : static_cast<float>(stddev) * rng.normal();
  }
}

}  // namespace tailor
