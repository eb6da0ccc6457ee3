#include "nn/init.hpp"

#include <cmath>

#include "util/error.hpp"

namespace tailor {

InitKind parse_init(const std::string& name) {
  if (name == "normal") return InitKind::normal;
  if (name == "xavier" || name == "xavier-uniform") return InitKind::xavier_uniform;
  if (name == "xavier-normal") return InitKind::xavier_normal;
  if (name == "kaiming" || name == "kaiming-uniform") return InitKind::kaiming_uniform;
  if (name == "kaiming-normal") return InitKind::kaiming_normal;
  throw Error("unknown --init '" + name +
              "' (expected normal, xavier, xavier-normal, kaiming, kaiming-normal)");
}

std::string init_name(InitKind k) {
  switch (k) {
    case InitKind::normal: return "normal";
    case InitKind::xavier_uniform: return "xavier-uniform";
    case InitKind::xavier_normal: return "xavier-normal";
    case InitKind::kaiming_uniform: return "kaiming-uniform";
    case InitKind::kaiming_normal: return "kaiming-normal";
  }
  return "?";
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
