#pragma once
// `train` options written in TOML: what sweep files and search spaces share. A value becomes the
// text the command line would carry ("0.001", "120,60", "true"), checked by the option's kind and
// by `train`'s own parser; a distribution ({ log_uniform = [1e-4, 1e-2] }, ...) is checked once,
// before anything is drawn from it. Errors are tailor::Error with the reason only: the callers
// add the file, line and key.
#include <set>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "sweep/sweep_file.hpp"
#include "util/rng.hpp"

namespace tailor {

// One value in command-line form.
std::string option_text(const OptionTable& options, const OptionCheck& check, const std::string& key,
                        const toml::node& value);

enum class DistKind { uniform, log_uniform, int_uniform, choice };

struct Distribution {
  DistKind kind = DistKind::choice;
  double lo = 0, hi = 0;             // the ranges' bounds, lo <= hi (log_uniform: lo > 0)
  std::vector<std::string> choices;  // choice: each value in command-line form
  // One draw: one number from `rng` (an index for choice), in command-line form; floats kept to
  // four significant digits (readable in tables, and distinct draws stay distinct).
  std::string draw(Rng& rng) const;
  // Where x (a number of the range) lies on the distribution's own scale, in [0, 1]: linear, or
  // logarithmic for log_uniform; and back.
  double to_unit(double x) const;
  double from_unit(double u) const;
};

// The text a float value gets in a trial's settings (four significant digits).
std::string float_text(double x);
// A number as float_text writes it (strtod: std::stod throws on a subnormal such as 5e-321).
double float_of_text(const std::string& text);

// { uniform = [lo, hi] } | { log_uniform = [lo, hi] } | { int_uniform = [lo, hi] } |
// { choice = [v, ...] }, the table possibly holding the keys in `extra` too (left to the caller).
// Checks the form, that lo <= hi (and lo > 0 for log_uniform), that the kind fits the option's
// type (uniform and log_uniform: a FLOAT option; int_uniform: an INT one), and that both bounds and
// every choice are values the option takes.
Distribution read_distribution(const OptionTable& options, const OptionCheck& check, const std::string& key,
                               const toml::table& table, const std::set<std::string>& extra = {});

}  // namespace tailor
