#include "sweep/option_value.hpp"

#include <cmath>
#include <cstdlib>
#include <sstream>

#include <fmt/format.h>

#include "util/error.hpp"

namespace tailor {

std::string option_text(const OptionTable& options, const OptionCheck& check, const std::string& key,
                        const toml::node& v) {
  auto it = options.find(key);
  if (it == options.end()) throw Error("is not a `tailor train` option");
  std::string text;
  if (it->second.is_flag) {
    if (!v.is_boolean()) throw Error("wants true or false");
    return *v.value<bool>() ? "true" : "false";
  }
  if (v.is_integer()) {
    text = std::to_string(*v.value<int64_t>());
  } else if (v.is_floating_point()) {
    text = fmt::format("{}", *v.value<double>());
  } else if (v.is_string()) {
    text = *v.value<std::string>();
  } else if (v.is_array()) {  // widths: [120, 60] -> "120,60"
    for (const auto& e : *v.as_array()) {
      if (!e.is_integer()) throw Error("a list here must hold integers (widths)");
      text += (text.empty() ? "" : ",") + std::to_string(*e.value<int64_t>());
    }
    if (text.empty()) throw Error("is an empty list");
  } else {
    std::ostringstream type;
    type << v.type();
    throw Error("has a value of the wrong type (" + type.str() + ")");
  }
  check(key, text);
  return text;
}

double float_of_text(const std::string& text) { return std::strtod(text.c_str(), nullptr); }

// Four significant digits, written shortest (read back by float_of_text: a draw from uniform
// [0, 1e-320] is below the smallest normal double).
std::string float_text(double x) { return fmt::format("{}", float_of_text(fmt::format("{:.4g}", x))); }

std::string Distribution::draw(Rng& rng) const {
  switch (kind) {
    case DistKind::choice:
      return choices[rng.below(choices.size())];
    case DistKind::int_uniform:
      return std::to_string(static_cast<int64_t>(lo) + static_cast<int64_t>(rng.below(static_cast<uint64_t>(hi - lo) + 1)));
    case DistKind::uniform:
      return float_text(lo + (hi - lo) * rng.uniform());
    case DistKind::log_uniform:
      return float_text(std::exp(std::log(lo) + (std::log(hi) - std::log(lo)) * rng.uniform()));
  }
  return {};
}

double Distribution::to_unit(double x) const {
  if (hi <= lo) return 0.5;
  if (kind == DistKind::log_uniform) return (std::log(x) - std::log(lo)) / (std::log(hi) - std::log(lo));
  return (x - lo) / (hi - lo);
}

double Distribution::from_unit(double u) const {
  if (kind == DistKind::log_uniform) return std::exp(std::log(lo) + u * (std::log(hi) - std::log(lo)));
  return lo + u * (hi - lo);
}

Distribution read_distribution(const OptionTable& options, const OptionCheck& check, const std::string& key,
                               const toml::table& d, const std::set<std::string>& extra) {
  const char* forms = "wants one of { uniform | log_uniform | int_uniform | choice = [...] }";
  const toml::node* found = nullptr;
  std::string kind;
  for (const auto& [k, v] : d) {
    const std::string name(k.str());
    if (extra.count(name)) continue;
    if (found) throw Error(forms);
    found = &v;
    kind = name;
  }
  if (!found) throw Error(forms);
  Distribution out;
  const toml::array* r = found->as_array();
  if (!r || r->empty()) throw Error("its " + kind + " needs a non-empty list");
  auto type = options.count(key) ? options.at(key).type : std::string();
  if (kind == "choice") {
    for (const auto& e : *r) {
      try {
        out.choices.push_back(option_text(options, check, key, e));
      } catch (const Error& err) {
        throw Error("choice " + std::to_string(out.choices.size() + 1) + ": " + err.what());
      }
    }
    return out;
  }
  if (kind == "uniform") out.kind = DistKind::uniform;
  else if (kind == "log_uniform") out.kind = DistKind::log_uniform;
  else if (kind == "int_uniform") out.kind = DistKind::int_uniform;
  else throw Error("unknown distribution '" + kind + "' (uniform, log_uniform, int_uniform, choice)");
  if (!options.count(key)) throw Error("is not a `tailor train` option");
  if (r->size() != 2 || !(*r)[0].is_number() || !(*r)[1].is_number()) throw Error(kind + " wants [low, high]");
  out.lo = (*r)[0].value<double>().value();
  out.hi = (*r)[1].value<double>().value();
  if (!std::isfinite(out.lo) || !std::isfinite(out.hi)) throw Error(kind + " wants finite bounds");
  if (out.lo > out.hi) throw Error(fmt::format("{} wants low <= high, not [{}, {}]", kind, out.lo, out.hi));
  if (out.kind == DistKind::log_uniform && out.lo <= 0)
    throw Error(fmt::format("log_uniform needs bounds above 0, not [{}, {}]", out.lo, out.hi));
  if (out.kind == DistKind::int_uniform) {
    if (out.lo != std::floor(out.lo) || out.hi != std::floor(out.hi)) throw Error("int_uniform wants integer bounds");
    if (type != "INT") throw Error("int_uniform is for a whole-number option; this one is " + (type.empty() ? "a flag" : type));
  } else if (type != "FLOAT") {
    throw Error(kind + " is for a real-valued option; this one is " + (type.empty() ? "a flag" : type) +
                (type == "INT" ? " (use int_uniform)" : " (use choice)"));
  }
  for (double bound : {out.lo, out.hi}) {
    const std::string text = out.kind == DistKind::int_uniform ? std::to_string(static_cast<int64_t>(bound)) : fmt::format("{}", bound);
    try {
      check(key, text);
    } catch (const Error& err) {
      throw Error("bound " + text + ": " + err.what());
    }
  }
  return out;
}

}  // namespace tailor
