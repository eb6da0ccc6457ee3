#include "sweep/sweep_file.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>
#include <string_view>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "sweep/option_value.hpp"
#include "sweep/references.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/rng.hpp"

namespace tailor {

namespace {

// Keys a sweep sets itself for every trial.
const std::set<std::string> kReserved{"out", "seed", "threads", "progress", "help"};

class Reader {
 public:
  Reader(std::string path, const OptionTable& options, const OptionCheck& check)
      : path_(std::move(path)), options_(options), check_(check) {}

  [[noreturn]] void fail(const toml::node& at, const std::string& key, const std::string& what) const {
    throw Error(fmt::format("{}:{}: key '{}': {}", path_, at.source().begin.line, key, what));
  }

  // One value in command-line form, checked for the option's kind and by `train` itself.
  std::string value(const std::string& key, const toml::node& v) const {
    if (kReserved.count(key)) fail(v, key, "is set by the sweep itself (seeds, --out, --threads-per-job)");
    try {
      return option_text(options_, check_, key, v);
    } catch (const Error& e) {
      fail(v, key, e.what());
    }
  }

  // A table of settings (base or a row), `skip` naming keys that are not options.
  std::map<std::string, std::string> settings(const toml::table& t, const std::set<std::string>& skip) const {
    std::map<std::string, std::string> out;
    for (const auto& [k, v] : t) {
      const std::string key(k.str());
      if (skip.count(key)) continue;
      out[key] = value(key, v);
    }
    return out;
  }

  using Axis = std::pair<std::string, std::vector<std::string>>;

  std::vector<Axis> grid(const toml::table& t) const {
    std::vector<Axis> axes;
    for (const auto& [k, v] : t) {
      const std::string key(k.str());
      const toml::array* a = v.as_array();
      if (!a) fail(v, key, "a grid axis must be a list of values");
      if (a->empty()) fail(v, key, "is an empty axis");
      Axis axis{key, {}};
      for (const auto& e : *a) axis.second.push_back(value(key, e));
      axes.push_back(std::move(axis));
    }
    return axes;
  }

  // [random]: `trials` draws of every axis, from a seeded stream (sample_seed, default 1).
  std::vector<std::map<std::string, std::string>> random(const toml::table& t) const {
    const toml::node* n = t.get("trials");
    if (!n || !n->is_integer() || *n->value<int64_t>() < 1 || *n->value<int64_t>() > 100000)
      fail(n ? *n : static_cast<const toml::node&>(t), "trials", "[random] needs trials = a count in [1, 100000]");
    const int64_t count = *n->value<int64_t>();
    const toml::node* s = t.get("sample_seed");
    Rng rng(s && s->is_integer() ? static_cast<uint64_t>(*s->value<int64_t>()) : 1);
    std::vector<std::map<std::string, std::string>> draws(count);
    for (const auto& [k, v] : t) {
      const std::string key(k.str());
      if (key == "trials" || key == "sample_seed") continue;
      if (kReserved.count(key)) fail(v, key, "is set by the sweep itself (seeds, --out, --threads-per-job)");
      const toml::table* d = v.as_table();
      if (!d) fail(v, key, "wants one of { uniform | log_uniform | int_uniform | choice = [...] }");
      Distribution dist;
      try {
        dist = read_distribution(options_, check_, key, *d);
      } catch (const Error& e) {
        fail(v, key, e.what());
      }
      for (auto& draw : draws) {
        draw[key] = dist.draw(rng);
        try {
          check_(key, draw[key]);
        } catch (const Error& e) {
          fail(v, key, e.what());
        }
      }
    }
    return draws;
  }

 private:
  std::string path_;
  const OptionTable& options_;
  const OptionCheck& check_;
};

std::string label(const std::map<std::string, std::string>& extra) {
  std::string s;
  for (const auto& [k, v] : extra) s += (s.empty() ? "" : " ") + k + "=" + v;
  return s;
}

}  // namespace

std::vector<std::string> TrialSpec::args() const {
  std::vector<std::string> a;
  for (const auto& s : settings) {
    if (s.value == "true" || s.value == "false") {
      if (s.value == "true") a.push_back("--" + s.key);
      else a.push_back("--no-" + s.key);  // only negatable flags get "false" through read_sweep
      continue;
    }
    a.push_back("--" + s.key);
    a.push_back(s.value);
  }
  return a;
}

std::string TrialSpec::group_key() const {
  std::string k;
  for (const auto& s : settings) k += s.key + "=" + s.value + ";";
  return k;
}

std::string TrialSpec::id() const {
  // FNV-1a, 64 bits: stable across runs and builds, so finished trials are found again.
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : group_key() + "seed=" + std::to_string(seed)) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return fmt::format("{:016x}", h);
}

const std::string* TrialSpec::get(const std::string& key) const {
  for (const auto& s : settings)
    if (s.key == key) return &s.value;
  return nullptr;
}

// `teacher = "row:NAME"`: each trial's teacher_id, that row's trial of the same seed; one line
// naming the file for a row that does not exist, has several trials a seed, or learns itself.
void resolve_teachers(SweepSpec& spec) {
  constexpr std::string_view kRow = "row:";
  const auto row_teacher = [&](const TrialSpec& t) -> std::string {
    const std::string* v = t.get("teacher");
    return v && v->rfind(kRow, 0) == 0 ? v->substr(kRow.size()) : std::string();
  };
  // Each (row, seed): how many trials it has, and the first.
  std::map<std::pair<std::string, uint64_t>, std::pair<int, const TrialSpec*>> rows;
  for (const TrialSpec& u : spec.trials) {
    auto& [count, first] = rows[{u.row_name, u.seed}];
    if (count++ == 0) first = &u;
  }
  for (TrialSpec& t : spec.trials) {
    const std::string name = row_teacher(t);
    if (name.empty()) continue;
    const auto it = rows.find({name, t.seed});
    if (it == rows.end())
      throw Error(fmt::format("{}: key 'teacher': row:{} names no row of the file with seed {} (rows are matched by "
                              "their name = \"...\")", spec.path, name, t.seed));
    const auto [count, found] = it->second;
    if (count > 1)
      throw Error(fmt::format("{}: key 'teacher': row '{}' has {} trials of seed {}; a teacher row needs one "
                              "(no grid or random axes)", spec.path, name, count, t.seed));
    if (!row_teacher(*found).empty())
      throw Error(fmt::format("{}: key 'teacher': row '{}' learns from a row itself; a teacher row must not",
                              spec.path, name));
    t.teacher_id = found->id();
  }
}

SweepSpec read_sweep(const std::string& path, const OptionTable& options, const OptionCheck& check) {
  toml::table root;
  if (!std::filesystem::is_regular_file(path)) throw Error("sweep file " + path + " not found");
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw Error(fmt::format("{}:{}: {}", path, e.source().begin.line, e.description()));
  }
  Reader r(path, options, check);
  SweepSpec spec;
  spec.path = path;
  const std::set<std::string> top{"name", "out", "seeds", "references", "base", "row", "grid", "random"};
  for (const auto& [k, v] : root)
    if (!top.count(std::string(k.str())))
      r.fail(v, std::string(k.str()), "unknown top-level key (name, out, seeds, references, base, row, grid, random)");
  if (const toml::node* ref = root.get("references")) {
    if (!ref->is_string()) r.fail(*ref, "references", "wants the path of a CSV file (label,weights,test_acc,source)");
    std::filesystem::path file(*ref->value<std::string>());
    if (file.is_relative()) file = std::filesystem::path(path).parent_path() / file;
    if (!std::filesystem::is_regular_file(file)) r.fail(*ref, "references", file.string() + " not found");
    spec.references = read_file(file.string());
    size_t points = 0;
    try {
      points = parse_references(spec.references, file.string()).size();
    } catch (const Error& e) {
      r.fail(*ref, "references", e.what());
    }
    if (points == 0) r.fail(*ref, "references", file.string() + " holds no points");
  }
  const std::string stem = std::filesystem::path(path).stem().string();
  spec.name = root["name"].value_or(stem);
  spec.out = root["out"].value_or("runs/" + spec.name);
  if (const toml::array* seeds = root["seeds"].as_array()) {
    if (seeds->empty()) r.fail(*seeds, "seeds", "is an empty list");
    for (const auto& s : *seeds) {
      if (!s.is_integer() || *s.value<int64_t>() < 0) r.fail(s, "seeds", "wants non-negative integers");
      spec.seeds.push_back(static_cast<uint64_t>(*s.value<int64_t>()));
    }
  } else if (root.contains("seeds")) {
    r.fail(*root.get("seeds"), "seeds", "wants a list such as [1, 2, 3]");
  } else {
    spec.seeds = {1};
  }
  std::map<std::string, std::string> base;
  if (root.contains("base")) {
    const toml::table* b = root["base"].as_table();
    if (!b) r.fail(*root.get("base"), "base", "must be a table");
    base = r.settings(*b, {});
  }
  std::vector<std::pair<std::string, std::map<std::string, std::string>>> rows;
  if (root.contains("row")) {
    const toml::array* a = root["row"].as_array();
    if (!a || a->empty()) r.fail(*root.get("row"), "row", "must be [[row]] tables");
    for (const auto& n : *a) {
      const toml::table* t = n.as_table();
      if (!t) r.fail(n, "row", "must be a table");
      const toml::node* name = t->get("name");
      if (!name || !name->is_string()) r.fail(n, "name", "every [[row]] needs name = \"...\"");
      auto settings = base;
      for (auto& [k, v] : r.settings(*t, {"name"})) settings[k] = v;
      rows.emplace_back(*name->value<std::string>(), settings);
    }
  } else {
    rows.emplace_back("base", base);
  }
  std::vector<Reader::Axis> axes;
  if (root.contains("grid")) {
    const toml::table* g = root["grid"].as_table();
    if (!g) r.fail(*root.get("grid"), "grid", "must be a table of axes");
    axes = r.grid(*g);
  }
  // The size is known before anything is expanded: a grid that multiplies out to millions of
  // trials is refused at once, not after filling the memory (9,000,000 trials once took 6.2 GB).
  const toml::table* random_table = root.contains("random") ? root["random"].as_table() : nullptr;
  if (root.contains("random") && !random_table) r.fail(*root.get("random"), "random", "must be a table");
  {
    uint64_t total = rows.size() * spec.seeds.size();
    std::string how = std::to_string(rows.size()) + " rows";
    for (const auto& [key, values] : axes) {
      total = values.size() > kMaxSweepTrials ? kMaxSweepTrials + 1 : std::min(total * values.size(), kMaxSweepTrials + 1);
      how += " x " + std::to_string(values.size()) + " " + key;
    }
    if (random_table) {
      const toml::node* n = random_table->get("trials");
      const int64_t draws = n && n->is_integer() ? std::max<int64_t>(1, *n->value<int64_t>()) : 1;
      total = std::min<uint64_t>(total * static_cast<uint64_t>(std::min<int64_t>(draws, kMaxSweepTrials + 1)),
                                 kMaxSweepTrials + 1);
      how += " x " + std::to_string(draws) + " random draws";
    }
    how += " x " + std::to_string(spec.seeds.size()) + " seeds";
    if (total > kMaxSweepTrials)
      throw Error(fmt::format("{}: the sweep expands to more than {} trials ({}); split it into several files",
                              path, kMaxSweepTrials, how));
  }
  std::vector<std::map<std::string, std::string>> draws{{}};
  if (random_table) draws = r.random(*random_table);
  // rows x grid points x random draws x seeds, in that order.
  std::vector<std::map<std::string, std::string>> points{{}};
  for (const auto& [key, values] : axes) {
    std::vector<std::map<std::string, std::string>> next;
    for (const auto& p : points)
      for (const auto& v : values) {
        auto q = p;
        q[key] = v;
        next.push_back(q);
      }
    points = std::move(next);
  }
  for (const auto& [row_name, row] : rows)
    for (const auto& point : points)
      for (const auto& draw : draws) {
        auto settings = row;
        auto extra = point;
        for (const auto& [k, v] : draw) extra[k] = v;
        for (const auto& [k, v] : extra) settings[k] = v;
        TrialSpec t;
        t.row = extra.empty() ? row_name : row_name + " " + label(extra);
        t.row_name = row_name;
        for (const auto& [k, v] : settings) {
          if (v == "false" && !options.at(k).negatable) continue;  // an off flag without a --no- form
          t.settings.push_back({k, v});
        }
        for (uint64_t seed : spec.seeds) {
          t.seed = seed;
          spec.trials.push_back(t);
        }
      }
  resolve_teachers(spec);
  return spec;
}

}  // namespace tailor
