#include "nn/model_spec.hpp"

#include <cmath>
#include <optional>
#include <cstdlib>

#include <fmt/format.h>

#include "nn/batchnorm.hpp"
#include "nn/block_tail.hpp"
#include "nn/conv2d.hpp"
#include "nn/linear.hpp"
#include "nn/pool.hpp"
#include "nn/residual.hpp"
#include "util/error.hpp"
#include "util/names.hpp"
#include "util/rng.hpp"

namespace tailor {

namespace {
constexpr NameTable<Family> kFamilyNames[] = {{"fcn", Family::fcn}, {"cnn", Family::cnn}};
}  // namespace

Family parse_family(const std::string& name) { return parse_name(kFamilyNames, name, "--model"); }
std::string family_name(Family f) { return name_of(kFamilyNames, f); }
std::vector<std::string> family_names() { return names_of(kFamilyNames); }

static std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(v[i]);
  }
  return s;
}

std::string ModelSpec::widths_str() const {
  if (staged()) return arch_text(*this);
  std::string s;
  if (family == Family::cnn) {
    s = "conv " + join(channels);
    if (pool != kernels::PoolKind::max) s += std::string(" ") + kernels::pool_name(pool) + "-pool";
    s += " | ";
  }
  return s + "fc " + (hidden.empty() ? std::string("-") : join(hidden));
}

ModelSpec default_spec(Family family) {
  ModelSpec s;
  s.family = family;
  if (family == Family::fcn) {
    s.hidden = {120, 60};  // 784-120-60-10 with batch norm: 102k weights, the study's FCN-100k
  } else {
    s.channels = {16, 32};
    s.hidden = {60};
  }
  return s;
}

namespace {

// a*b+c in int64 without overflow: INT64_MAX when the true value does not fit (inputs >= 0).
int64_t mul_add_sat(int64_t a, int64_t b, int64_t c) {
  int64_t p = 0, r = 0;
  if (__builtin_mul_overflow(a, b, &p) || __builtin_add_overflow(p, c, &r)) return INT64_MAX;
  return r;
}

}  // namespace

namespace {

// A staged CNN's layers, unfinalized: its weights, FLOPs and activations come from them (one
// description of the model, the one that is built).
std::vector<LayerPtr> staged_layers(const ModelSpec& s) {
  Rng seeds(0);
  return build_arch_layers(s, seeds);
}

int64_t staged_weights(const ModelSpec& s) {
  int64_t total = 0;
  for (const auto& l : staged_layers(s))
    for (Param* p : l->params()) total = mul_add_sat(p->numel(), 1, total);
  return total;
}

}  // namespace

int64_t count_weights(const ModelSpec& s) {
  if (s.staged()) return staged_weights(s);
  int64_t total = 0, c = s.in_channels, h = s.height, w = s.width;
  const int64_t bn = s.batchnorm ? 2 : 0;
  if (s.family == Family::cnn) {
    for (int64_t co : s.channels) {
      total = mul_add_sat(co, mul_add_sat(c, 9, 1 + bn), total);
      c = co;
      h /= 2;
      w /= 2;
    }
  }
  int64_t f = mul_add_sat(mul_add_sat(c, h, 0), w, 0);
  for (int64_t hid : s.hidden) {
    total = mul_add_sat(hid, mul_add_sat(f, 1, 1 + bn), total);
    f = hid;
  }
  return mul_add_sat(s.classes, mul_add_sat(f, 1, 1), total);
}

double forward_flops(const ModelSpec& s) {
  if (s.staged()) {
    double flops = 0;
    Shape in{1, s.in_channels, s.height, s.width};
    for (const auto& l : staged_layers(s)) {
      flops += static_cast<double>(l->forward_flops(in));
      in = l->output_shape(in);
    }
    return flops;
  }
  double flops = 0, c = static_cast<double>(s.in_channels), h = static_cast<double>(s.height),
         w = static_cast<double>(s.width);
  if (s.family == Family::cnn) {
    for (int64_t co : s.channels) {
      flops += 2.0 * 9 * c * static_cast<double>(co) * h * w;  // 3x3, padding 1: the output is h x w
      c = static_cast<double>(co);
      h = std::floor(h / 2);
      w = std::floor(w / 2);
    }
  }
  double f = c * h * w;
  for (int64_t hid : s.hidden) {
    flops += 2.0 * f * static_cast<double>(hid);
    f = static_cast<double>(hid);
  }
  return flops + 2.0 * f * static_cast<double>(s.classes);
}

uint64_t training_bytes(const ModelSpec& s, int64_t batch) {
  // Per image: each conv block keeps its conv output, normalised/activated output (both at full
  // size) and pooled output; each hidden layer three vectors; each doubled for the gradients.
  // A staged CNN: three floats per output value of every layer (its output, the output's
  // gradient, a residual block's or a tail's own buffers).
  int64_t per_image = 0, c = s.in_channels, h = s.height, w = s.width;
  if (s.staged()) {
    Shape in{1, s.in_channels, s.height, s.width};
    for (const auto& l : staged_layers(s)) {
      in = l->output_shape(in);
      per_image = mul_add_sat(in.numel(), 3, per_image);
    }
    const int64_t floats = mul_add_sat(count_weights(s), 4, mul_add_sat(per_image, mul_add_sat(batch, 2, 0), 0));
    return floats == INT64_MAX ? UINT64_MAX : static_cast<uint64_t>(floats) * sizeof(float);
  }
  if (s.family == Family::cnn) {
    for (int64_t co : s.channels) {
      const int64_t full = mul_add_sat(mul_add_sat(co, h, 0), w, 0);
      per_image = mul_add_sat(full, 3, per_image);
      c = co;
      h /= 2;
      w /= 2;
    }
  }
  per_image = mul_add_sat(mul_add_sat(c, h, 0), w, per_image);
  for (int64_t hid : s.hidden) per_image = mul_add_sat(hid, 3, per_image);
  per_image = mul_add_sat(s.classes, 2, per_image);
  const int64_t floats = mul_add_sat(count_weights(s), 4, mul_add_sat(per_image, mul_add_sat(batch, 2, 0), 0));
  return floats == INT64_MAX ? UINT64_MAX : static_cast<uint64_t>(floats) * sizeof(float);
}

void check_training_memory(const ModelSpec& s, int64_t batch, uint64_t limit) {
  const uint64_t need = training_bytes(s, batch);
  if (need <= limit) return;
  const auto gib = [](uint64_t b) { return fmt::format("{:.1f} GiB", static_cast<double>(b) / (1u << 30)); };
  const int64_t weights = count_weights(s);
  throw Error(fmt::format("the model ({}: {} weights) would need about {} to train at {} images per batch, more than "
                          "the {} this machine can give it: use smaller --channels/--hidden or --weights, or a "
                          "smaller --batch-size",
                          s.widths_str(), weights == INT64_MAX ? std::string("over 9e18") : std::to_string(weights),
                          need == UINT64_MAX ? std::string("more than 16 EiB") : gib(need), batch, gib(limit)));
}

namespace {

std::vector<int64_t*> widths_of(ModelSpec& s) {
  std::vector<int64_t*> w;
  for (auto& st : s.stages) w.push_back(&st.width);
  for (auto& c : s.channels) w.push_back(&c);
  for (auto& h : s.hidden) w.push_back(&h);
  return w;
}

ModelSpec scaled(const ModelSpec& tmpl, double factor) {
  ModelSpec s = tmpl;
  for (int64_t* w : widths_of(s)) *w = std::max<int64_t>(1, std::llround(static_cast<double>(*w) * factor));
  return s;
}

// A staged CNN sized to `target`, its widths moved to multiples of 8, and of 16 where the budget
// allows: oneDNN's convolutions fill whole vectors only then (measured on an AVX-512 Xeon, 2
// threads: the frontier's 20k CNN at widths 8-17-33 ran 5.95 s an epoch, at 16-16-32 2.82 s; its
// 100k CNN at 19-37-75 17.1 s, at 16-40-72 (multiples of 8, not of 16) 18.5-19.8 s, at 16-32-80
// 12.5 s). Each width may take the two multiples of 8 on either side of it (at least 8); of the
// combinations within 5% of the target that keep the widths' order, the one nearest the scaled
// shape is taken (sum of |log| ratios, each width off a multiple of 16 adding 0.15, as much as a
// width 16% away; then the count nearest the target). None: `sized`.
ModelSpec vector_widths(const ModelSpec& sized, int64_t target) {
  ModelSpec s = sized;
  const std::vector<int64_t*> w = widths_of(s);
  if (w.empty() || w.size() > 6) return sized;  // at most 4^6 combinations
  // A model with a width below 8 is too small for vectors to pay: its shape is kept.
  for (const int64_t* p : w)
    if (*p < 8) return sized;
  std::vector<int64_t> want;
  std::vector<std::vector<int64_t>> choices;
  size_t combos = 1;
  for (const int64_t* p : w) {
    const int64_t v = *p, below = v / 8 * 8;
    std::vector<int64_t> c;
    for (int64_t m : {below - 8, below, below + 8, below + 16})
      if (m >= 8 && m >= v / 2 && m <= 2 * v + 8 && (m >= v - 15 && m <= v + 15)) c.push_back(m);
    want.push_back(v);
    choices.push_back(c);
    combos *= c.size();
  }
  std::optional<ModelSpec> best;
  double best_dist = 0;
  int64_t best_miss = 0;
  for (size_t k = 0; k < combos; ++k) {
    size_t rest = k;
    for (size_t i = 0; i < w.size(); ++i) {
      *w[i] = choices[i][rest % choices[i].size()];
      rest /= choices[i].size();
    }
    bool keeps_order = true;  // a narrower width of the shape stays no wider than a wider one
    for (size_t i = 0; i < w.size(); ++i)
      for (size_t j = 0; j < w.size(); ++j) keeps_order = keeps_order && !(want[i] < want[j] && *w[i] > *w[j]);
    if (!keeps_order) continue;
    const int64_t miss = std::llabs(count_weights(s) - target);
    if (miss * 20 > target) continue;
    double dist = 0;
    int odd = 0;  // widths that fill their last AVX-512 vector of floats half
    for (size_t i = 0; i < w.size(); ++i) {
      dist += std::abs(std::log(static_cast<double>(*w[i]) / static_cast<double>(want[i])));
      odd += *w[i] % 16 != 0;
    }
    dist += 0.15 * odd;
    if (!best || dist < best_dist - 1e-12 || (std::abs(dist - best_dist) <= 1e-12 && miss < best_miss)) {
      best = s;
      best_dist = dist;
      best_miss = miss;
    }
  }
  return best ? *best : sized;
}

}  // namespace

ModelSpec fit_to_budget(const ModelSpec& tmpl, int64_t target) {
  ModelSpec probe = tmpl;
  if (widths_of(probe).empty())
    throw Error("--weights needs a model with at least one hidden layer or conv block to size");
  // count(scaled(f)) grows with f: bisect (on a log scale) for the factor nearest the target.
  double lo = 1e-4, hi = 1e4;
  for (int it = 0; it < 200 && hi / lo > 1.0 + 1e-9; ++it) {
    double mid = std::sqrt(lo * hi);
    (count_weights(scaled(tmpl, mid)) < target ? lo : hi) = mid;
  }
  ModelSpec best = scaled(tmpl, hi);
  if (std::llabs(count_weights(scaled(tmpl, lo)) - target) < std::llabs(count_weights(best) - target))
    best = scaled(tmpl, lo);
  // The count is affine in any single width: move each width (last first) to its best value. Not
  // a staged CNN's: equal widths around a residual sum must stay equal.
  auto widths = widths_of(best);
  for (size_t i = tmpl.staged() ? 0 : widths.size(); i-- > 0;) {
    if (std::llabs(count_weights(best) - target) * 200 <= target) break;  // within 0.5%: keep the shape
    int64_t* w = widths[i];
    const int64_t keep = *w;
    *w = 1;
    const int64_t a = count_weights(best);
    *w = 2;
    const int64_t slope = count_weights(best) - a;
    int64_t ideal = std::max<int64_t>(1, 1 + std::llround(static_cast<double>(target - a) / slope));
    // Stay near the scaled shape: a width may move by at most a quarter.
    ideal = std::clamp<int64_t>(ideal, std::max<int64_t>(1, keep - keep / 4), keep + keep / 4 + 1);
    *w = ideal;
    if (std::llabs(count_weights(best) - target) >= std::llabs(a + slope * (keep - 1) - target)) *w = keep;
  }
  if (tmpl.staged()) best = vector_widths(best, target);
  const int64_t got = count_weights(best);
  const double rel = static_cast<double>(got - target) / static_cast<double>(target);
  if (std::abs(rel) > 0.05) {
    ModelSpec one = scaled(tmpl, 1e-9);
    throw Error("--weights " + std::to_string(target) + " cannot be met by a " + family_name(tmpl.family) +
                (tmpl.staged() ? " of --arch '" + arch_text(tmpl) + "'" : std::string(" of this shape")) +
                ": the smallest has " + std::to_string(count_weights(one)) + " weights and the nearest " +
                std::to_string(got));
  }
  return best;
}

int64_t parse_weight_count(const std::string& text) {
  if (text.empty()) throw Error("--weights: empty value");
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  std::string suffix(end);
  double mult = 1;
  if (suffix == "k" || suffix == "K") mult = 1e3;
  else if (suffix == "m" || suffix == "M") mult = 1e6;
  else if (!suffix.empty() || end == text.c_str())
    throw Error("--weights: '" + text + "' is not a count (examples: 100k, 12500, 1.5M)");
  v *= mult;
  if (!(v >= 1 && v <= 1e9)) throw Error("--weights: '" + text + "' is out of range [1, 1e9]");
  return std::llround(v);
}

std::unique_ptr<Sequential> build_model(const ModelSpec& s, uint64_t dropout_seed) {
  auto m = std::make_unique<Sequential>();
  Rng seeds(dropout_seed);
  if (s.staged()) {
    for (auto& l : build_arch_layers(s, seeds)) m->add(std::move(l));
    m->finalize(Shape{s.in_channels, s.height, s.width});
    return m;
  }
  int64_t c = s.in_channels, h = s.height, w = s.width;
  if (s.family == Family::cnn) {
    for (int64_t co : s.channels) {
      if (h < 2 || w < 2)
        throw Error("too many conv blocks (" + std::to_string(s.channels.size()) + ") for " +
                    std::to_string(s.height) + "x" + std::to_string(s.width) + " images");
      m->add(std::make_unique<Conv2d>(c, co, 3, 1));
      // Batch norm, activation and pool as one layer: with batch norm and ReLU one pass each way
      // over the block's largest tensor.
      m->add(std::make_unique<BlockTail>(co, s.batchnorm, s.activation, s.pool));
      c = co;
      h /= 2;
      w /= 2;
    }
    m->add(std::make_unique<Flatten>());
    // The first fully connected layer holds most of a CNN's weights; dropping its inputs
    // regularises it (measured on CNN-100k, Adam 1e-3, 20 epochs: see docs/models.md).
    if (s.dropout > 0) m->add(std::make_unique<Dropout>(s.dropout, seeds.next_u64()));
  }
  int64_t f = c * h * w;
  for (int64_t hid : s.hidden) {
    m->add(std::make_unique<Linear>(f, hid));
    if (s.batchnorm) m->add(std::make_unique<BatchNorm>(hid, false));
    m->add(std::make_unique<Activation>(s.activation));
    if (s.dropout > 0) m->add(std::make_unique<Dropout>(s.dropout, seeds.next_u64()));
    f = hid;
  }
  m->add(std::make_unique<Linear>(f, s.classes));
  if (s.family == Family::cnn) m->finalize(Shape{s.in_channels, s.height, s.width});
  else m->finalize(Shape{s.in_channels * s.height * s.width});
  return m;
}

nlohmann::json spec_to_json(const ModelSpec& s) {
  nlohmann::json j{{"family", family_name(s.family)}, {"channels", s.channels},   {"hidden", s.hidden},
                   {"batchnorm", s.batchnorm},        {"dropout", s.dropout},     {"activation", activation_name(s.activation)},
                   {"in_channels", s.in_channels},    {"height", s.height},       {"width", s.width},
                   {"classes", s.classes},            {"pool", kernels::pool_name(s.pool)}};
  if (s.staged()) j["arch"] = arch_text(s);  // its stages, head and hidden widths; absent before --arch
  return j;
}

ModelSpec spec_from_json(const nlohmann::json& j) {
  try {
    ModelSpec s;
    s.family = parse_family(j.at("family").get<std::string>());
    s.channels = j.at("channels").get<std::vector<int64_t>>();
    s.hidden = j.at("hidden").get<std::vector<int64_t>>();
    s.batchnorm = j.at("batchnorm").get<bool>();
    s.dropout = j.at("dropout").get<float>();
    s.activation = parse_activation(j.at("activation").get<std::string>());
    s.in_channels = j.at("in_channels").get<int64_t>();
    s.height = j.at("height").get<int64_t>();
    s.width = j.at("width").get<int64_t>();
    s.classes = j.at("classes").get<int64_t>();
    const std::string pool = j.value("pool", std::string("max"));
    if (pool != "max" && pool != "avg" && pool != "l2")
      throw Error("model description has an unknown pool '" + pool + "' (expected max, avg or l2)");
    s.pool = parse_pool(pool);
    if (j.contains("arch")) parse_arch(j.at("arch").get<std::string>(), s);
    auto positive = [](int64_t v) { return v >= 1 && v <= 1000000; };
    // Images up to 4096 pixels a side and 64 channels: a damaged file cannot ask for more.
    bool ok = s.in_channels >= 1 && s.in_channels <= 64 && s.height >= 1 && s.height <= 4096 && s.width >= 1 &&
              s.width <= 4096 && positive(s.classes) && s.dropout >= 0 && s.dropout < 1;
    for (auto v : s.channels) ok = ok && positive(v);
    for (const Stage& st : s.stages) ok = ok && positive(st.width);
    for (auto v : s.hidden) ok = ok && positive(v);
    if (!ok) throw Error("model description has a value out of range");
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("model description is invalid: ") + e.what());
  }
}

}  // namespace tailor
