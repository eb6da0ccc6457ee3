#include "nn/arch.hpp"

#include <cstdlib>

#include "nn/activation.hpp"
#include "nn/batchnorm.hpp"
#include "nn/block_tail.hpp"
#include "nn/chain.hpp"
#include "nn/conv2d.hpp"
#include "nn/linear.hpp"
#include "nn/model_spec.hpp"
#include "nn/pool.hpp"
#include "nn/residual.hpp"
#include "util/error.hpp"
#include "util/rng.hpp"

namespace tailor {

namespace {

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t at = 0;
  for (size_t next; (next = s.find(sep, at)) != std::string::npos; at = next + 1) out.push_back(trim(s.substr(at, next - at)));
  out.push_back(trim(s.substr(at)));
  return out;
}

// A whole number in [lo, hi], or -1.
int64_t whole(const std::string& t, int64_t lo, int64_t hi) {
  if (t.empty() || t.size() > 9 || t.find_first_not_of("0123456789") != std::string::npos) return -1;
  const int64_t v = std::atoll(t.c_str());
  return v >= lo && v <= hi ? v : -1;
}

const char* down_name(Downsample d) {
  switch (d) {
    case Downsample::max: return "max";
    case Downsample::avg: return "avg";
    case Downsample::l2: return "l2";
    case Downsample::stride2: return "s2";
    case Downsample::none: break;
  }
  return "";
}

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';  // (one append at a time: GCC 12 warns falsely on a + b appended)
    s += std::to_string(v[i]);
  }
  return s;
}

}  // namespace

void parse_arch(const std::string& text, ModelSpec& spec) {
  auto fail = [&](const std::string& why) { throw Error("--arch '" + text + "': " + why); };
  std::vector<Stage> stages;
  std::vector<int64_t> fc;
  bool gap = true, head = false, have_fc = false;
  const std::vector<std::string> sections = split(text, '|');
  for (size_t i = 0; i < sections.size(); ++i) {
    const std::string& sec = sections[i];
    const std::string where = "section " + std::to_string(i + 1);
    if (sec.empty()) fail(where + " is empty (sections are separated by '|'; e.g. '16,max | 32,max | gap')");
    if (sec == "gap" || sec == "flat") {
      if (head) fail("a second head '" + sec + "': give gap or flat once");
      if (stages.empty()) fail("the head '" + sec + "' comes after the stages");
      if (have_fc) fail("the head '" + sec + "' comes before 'fc'");
      head = true;
      gap = sec == "gap";
      continue;
    }
    if (sec.rfind("fc", 0) == 0) {
      if (have_fc) fail("a second 'fc' section: list every width in one, e.g. 'fc 120,60'");
      if (stages.empty()) fail("'" + sec + "' comes after the stages");
      for (const std::string& w : split(trim(sec.substr(2)), ',')) {
        const int64_t v = whole(w, 1, 100000);
        if (v < 0) fail("'" + sec + "': the fully connected widths are whole numbers in [1, 100000], e.g. 'fc 60'");
        fc.push_back(v);
      }
      have_fc = true;
      continue;
    }
    if (head || have_fc) fail("stage '" + sec + "' after the head: the stages come first");
    const std::vector<std::string> tokens = split(sec, ',');
    Stage st;
    const std::string& size = tokens[0];
    const size_t x = size.find('x');
    st.width = whole(size.substr(0, x), 1, 100000);
    st.convs = x == std::string::npos ? 1 : whole(size.substr(x + 1), 1, 64);
    if (st.width < 0 || st.convs < 0)
      fail("stage '" + sec + "' starts with '" + size + "': give its width and, optionally, how many convolutions, "
           "as WIDTH or WIDTHxCOUNT (width 1 to 100000, count 1 to 64), e.g. '32x2'");
    for (size_t t = 1; t < tokens.size(); ++t) {
      const std::string& f = tokens[t];
      Downsample d = Downsample::none;
      if (f == "k3" || f == "k5") st.kernel = f == "k5" ? 5 : 3;
      else if (f == "res") st.residual = true;
      else if (f == "sep") st.separable = true;
      else if (f == "max") d = Downsample::max;
      else if (f == "avg") d = Downsample::avg;
      else if (f == "l2") d = Downsample::l2;
      else if (f == "s2") d = Downsample::stride2;
      else
        fail("stage '" + sec + "': unknown '" + f + "' (expected k3, k5, res, sep, max, avg, l2 or s2)");
      if (d != Downsample::none) {
        if (st.down != Downsample::none)
          fail("stage '" + sec + "': '" + down_name(st.down) + "' and '" + f + "': one downsample per stage");
        st.down = d;
      }
    }
    if (st.residual && st.convs % 2 != 0)
      fail("stage '" + sec + "': a residual stage's blocks hold two convolutions each, so its count must be even "
           "(e.g. '" + std::to_string(st.width) + "x2,res')");
    stages.push_back(st);
  }
  if (stages.empty()) fail("no stage: give at least one, e.g. '16,max | 32,max | gap'");
  spec.family = Family::cnn;
  spec.stages = std::move(stages);
  spec.gap = gap;
  spec.hidden = std::move(fc);
  spec.channels.clear();
}

namespace {
std::string stage_text(const Stage& st) {
  std::string s = std::to_string(st.width) + (st.convs > 1 ? "x" + std::to_string(st.convs) : "");
  if (st.kernel == 5) s += ",k5";
  if (st.residual) s += ",res";
  if (st.separable) s += ",sep";
  if (st.down != Downsample::none) s += std::string(",") + down_name(st.down);
  return s;
}
}  // namespace

std::string arch_text(const ModelSpec& spec) {
  std::string s;
  for (const Stage& st : spec.stages) {
    if (!s.empty()) s += " | ";
    s += stage_text(st);
  }
  s += spec.gap ? " | gap" : " | flat";
  if (!spec.hidden.empty()) s += " | fc " + join(spec.hidden);
  return s;
}

namespace {

kernels::PoolKind pool_of(Downsample d) {
  return d == Downsample::avg ? kernels::PoolKind::avg : d == Downsample::l2 ? kernels::PoolKind::l2 : kernels::PoolKind::max;
}

bool is_pool(Downsample d) { return d == Downsample::max || d == Downsample::avg || d == Downsample::l2; }

// Appends the layers of staged CNNs to a chain: a convolution with its batch norm and activation
// (or, with no_tail, without them: a block tail or a residual sum follows).
struct Builder {
  const ModelSpec& s;
  bool relu() const { return s.activation == ActivationKind::relu; }

  // conv -> [batch norm] -> [activation]: the activation fused into the batch norm when relu.
  void conv(Chain& out, int64_t cin, int64_t cout, int64_t k, int64_t stride, int64_t groups, bool bn, bool act) {
    out.add(std::make_unique<Conv2d>(cin, cout, k, k / 2, stride, groups));
    if (bn && s.batchnorm) out.add(std::make_unique<BatchNorm>(cout, true, act && relu()));
    if (act && (!s.batchnorm || !relu())) out.add(std::make_unique<Activation>(s.activation));
  }

  // One convolution of a stage, KxK or depthwise-separable (depthwise KxK with its batch norm and
  // activation, then pointwise 1x1); `last_bn`, `last_act`: what follows its last convolution.
  void unit(Chain& out, const Stage& st, int64_t cin, int64_t stride, bool last_bn, bool last_act) {
    if (st.separable) {
      conv(out, cin, cin, st.kernel, stride, cin, true, true);
      conv(out, cin, st.width, 1, 1, 1, last_bn, last_act);
    } else {
      conv(out, cin, st.width, st.kernel, stride, 1, last_bn, last_act);
    }
  }
};

}  // namespace

std::vector<LayerPtr> build_arch_layers(const ModelSpec& s, Rng& seeds) {
  Builder b{s};
  Chain net;
  int64_t c = s.in_channels, h = s.height, w = s.width;
  for (size_t i = 0; i < s.stages.size(); ++i) {
    const Stage& st = s.stages[i];
    const std::string name = "--arch stage " + std::to_string(i + 1) + " '" + stage_text(st) + "'";
    const int64_t blocks = st.residual ? st.convs / 2 : st.convs;
    for (int64_t k = 0; k < blocks; ++k) {
      const int64_t stride = k == 0 && st.down == Downsample::stride2 ? 2 : 1;
      const bool last = k + 1 == blocks;
      if (st.residual) {
        Chain body, skip;
        b.unit(body, st, c, stride, true, true);
        b.unit(body, st, st.width, 1, true, false);
        if (c != st.width || stride != 1) b.conv(skip, c, st.width, 1, stride, 1, true, false);
        net.add(std::make_unique<Residual>(std::move(body), std::move(skip), s.activation));
      } else if (last && is_pool(st.down)) {
        // The last convolution's batch norm, activation and pool as one block tail (fused).
        b.unit(net, st, c, stride, false, false);
        net.add(std::make_unique<BlockTail>(st.width, s.batchnorm, s.activation, pool_of(st.down)));
      } else {
        b.unit(net, st, c, stride, true, true);
      }
      c = st.width;
      if (stride == 2) h = (h - 1) / 2 + 1, w = (w - 1) / 2 + 1;
    }
    if (is_pool(st.down)) {
      if (h < 2 || w < 2)
        throw Error(name + ": its " + std::to_string(h) + "x" + std::to_string(w) +
                    " maps are too small for a 2x2 pool: remove a downsample, or give larger pictures");
      if (st.residual) net.add(std::make_unique<Pool2d>(pool_of(st.down), 2));
      h /= 2, w /= 2;
    }
  }
  std::vector<LayerPtr> out = net.release();
  int64_t f = c;
  if (s.gap) {
    out.push_back(std::make_unique<GlobalAvgPool>());
  } else {
    out.push_back(std::make_unique<Flatten>());
    f = c * h * w;
  }
  if (s.dropout > 0) out.push_back(std::make_unique<Dropout>(s.dropout, seeds.next_u64()));
  for (int64_t hid : s.hidden) {
    out.push_back(std::make_unique<Linear>(f, hid));
    if (s.batchnorm) out.push_back(std::make_unique<BatchNorm>(hid, false));
    out.push_back(std::make_unique<Activation>(s.activation));
    if (s.dropout > 0) out.push_back(std::make_unique<Dropout>(s.dropout, seeds.next_u64()));
    f = hid;
  }
  out.push_back(std::make_unique<Linear>(f, s.classes));
  return out;
}

}  // namespace tailor
