#include "search/space.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "nn/model_spec.hpp"
#include "util/error.hpp"

namespace tailor {

namespace {

[[noreturn]] void fail(const std::string& path, const toml::node& at, const std::string& key, const std::string& what) {
  throw Error(fmt::format("{}:{}: key '{}': {}", path, at.source().begin.line, key, what));
}

// Keys the search sets itself (its schedule, seed and workers).
const std::set<std::string> kReserved{"out", "seed", "threads", "progress", "help", "resume", "epochs",
                                      "patience", "stop-at", "stop-on"};

uint64_t fnv1a(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

const SpaceParam* SearchSpace::param(const std::string& key) const {
  for (const SpaceParam& p : params)
    if (p.key == key) return &p;
  return nullptr;
}

bool SpaceParam::applies(const Point& p, const std::map<std::string, std::string>& base) const {
  if (when_key.empty()) return true;
  auto it = p.find(when_key);
  const std::string* v = it != p.end() ? &it->second : nullptr;
  if (!v) {
    auto b = base.find(when_key);
    if (b == base.end()) return false;
    v = &b->second;
  }
  return std::find(when_values.begin(), when_values.end(), *v) != when_values.end();
}

Metric parse_metric(const std::string& name) {
  if (name == "val_acc") return Metric::val_acc;
  if (name == "val_loss") return Metric::val_loss;
  if (name == "weights") return Metric::weights;
  if (name == "mflops") return Metric::mflops;
  if (name == "train_seconds") return Metric::train_seconds;
  throw Error("'" + name + "' is not a metric (val_acc, val_loss, weights, mflops, train_seconds)");
}

std::string metric_name(Metric m) {
  switch (m) {
    case Metric::val_acc: return "val_acc";
    case Metric::val_loss: return "val_loss";
    case Metric::weights: return "weights";
    case Metric::mflops: return "mflops";
    case Metric::train_seconds: return "train_seconds";
  }
  return "?";
}

std::vector<int64_t> SearchSpace::rungs() const {
  std::vector<int64_t> r;
  if (asha)
    for (int64_t e = min_epochs; e < max_epochs; e *= eta) r.push_back(e);
  r.push_back(max_epochs);
  return r;
}

std::string SearchSpace::fingerprint() const {
  std::string text = fmt::format("seed={};", seed);
  for (const auto& [k, v] : base) text += "base:" + k + "=" + v + ";";
  for (const SpaceParam& p : params) {
    text += fmt::format("param:{}:{}:{}:{}:", p.key, static_cast<int>(p.dist.kind), p.dist.lo, p.dist.hi);
    for (const auto& c : p.dist.choices) text += c + "|";
    text += "when:" + p.when_key + "=";
    for (const auto& w : p.when_values) text += w + "|";
    text += ";";
  }
  for (const Constraint& c : constraints) text += fmt::format("constraint:{}<={};", metric_name(c.metric), c.limit);
  for (const Objective& o : objectives) text += fmt::format("objective:{}:{};", metric_name(o.metric), o.maximize);
  text += fmt::format("schedule:{}:{}:{}:{};sampler:{}:{}", asha, min_epochs, max_epochs, eta, tpe, startup);
  for (const auto& k : stratify) text += ";stratify:" + k;  // none: the digest of earlier versions
  return fmt::format("{:016x}", fnv1a(text));
}

SearchSpace read_space(const std::string& path, const OptionTable& options, const OptionCheck& check) {
  if (!std::filesystem::is_regular_file(path)) throw Error("search space file " + path + " not found");
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw Error(fmt::format("{}:{}: {}", path, e.source().begin.line, e.description()));
  }
  SearchSpace s;
  s.path = path;
  const std::set<std::string> top{"name", "out", "seed", "trials", "objectives", "constraints", "base", "space", "schedule", "sampler"};
  for (const auto& [k, v] : root)
    if (!top.count(std::string(k.str())))
      fail(path, v, std::string(k.str()),
           "unknown top-level key (name, out, seed, trials, objectives, constraints, base, space, schedule, sampler)");
  const std::set<std::string>& reserved = kReserved;
  auto integer = [&](const toml::table& t, const char* key, int64_t lo, int64_t hi, int64_t fallback) {
    const toml::node* n = t.get(key);
    if (!n) return fallback;
    if (!n->is_integer() || *n->value<int64_t>() < lo || *n->value<int64_t>() > hi)
      fail(path, *n, key, fmt::format("wants a whole number in [{}, {}]", lo, hi));
    return *n->value<int64_t>();
  };
  if (const toml::node* n = root.get("name"); n && !n->is_string()) fail(path, *n, "name", "wants a string");
  if (const toml::node* n = root.get("out"); n && !n->is_string()) fail(path, *n, "out", "wants a directory name");
  s.name = root["name"].value_or(std::filesystem::path(path).stem().string());
  s.out = root["out"].value_or("runs/search-" + s.name);
  s.seed = static_cast<uint64_t>(integer(root, "seed", 0, INT64_MAX, 1));
  s.trials = integer(root, "trials", 0, 1000000, 0);

  // [base]
  if (const toml::node* b = root.get("base")) {
    if (!b->is_table()) fail(path, *b, "base", "must be a table of train options");
    for (const auto& [k, v] : *b->as_table()) {
      const std::string key(k.str());
      if (reserved.count(key)) fail(path, v, key, "is set by the search itself (its schedule, seed and workers)");
      try {
        s.base[key] = option_text(options, check, key, v);
      } catch (const Error& e) {
        fail(path, v, key, e.what());
      }
    }
  }
  if (auto it = s.base.find("val"); it != s.base.end() && it->second == "0")
    fail(path, *root["base"].as_table()->get("val"), "val", "a search chooses on validation accuracy: val must be above 0");
  for (const char* data_key : {"image-size", "color", "val", "data"})
    if (root["space"].as_table() && root["space"].as_table()->contains(data_key))
      fail(path, *root["space"].as_table()->get(data_key), data_key, "the data (its form and the validation split every trial is judged on) is fixed for a search: set it in [base]");

  // [space]
  const toml::table* space = root["space"].as_table();
  if (root.contains("space") && !space) fail(path, *root.get("space"), "space", "must be a table of distributions");
  if (space) {
    // In the file's order (a TOML table is a map): a `when` names an option above it.
    std::vector<std::pair<std::string, const toml::node*>> entries;
    for (const auto& [k, v] : *space) entries.emplace_back(std::string(k.str()), &v);
    std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
      const auto &x = a.second->source().begin, &y = b.second->source().begin;
      return x.line != y.line ? x.line < y.line : x.column < y.column;
    });
    for (const auto& [key, node] : entries) {
      const toml::node& v = *node;
      if (reserved.count(key)) fail(path, v, key, "is set by the search itself (its schedule, seed and workers)");
      if (s.base.count(key)) fail(path, v, key, "is fixed in [base] and varied in [space]: choose one");
      const toml::table* d = v.as_table();
      if (!d) fail(path, v, key, "wants a distribution: { uniform | log_uniform | int_uniform | choice = [...] }");
      SpaceParam p;
      p.key = key;
      try {
        p.dist = read_distribution(options, check, key, *d, {"when"});
      } catch (const Error& e) {
        fail(path, v, key, e.what());
      }
      if (const toml::node* w = d->get("when")) {
        const toml::table* wt = w->as_table();
        if (!wt || wt->size() != 1) fail(path, *w, key, "when wants one condition: when = { optimizer = [\"sgd\"] }");
        const auto entry = wt->begin();
        p.when_key = std::string(entry->first.str());
        if (!s.param(p.when_key) && !s.base.count(p.when_key))
          fail(path, *w, key, "when names '" + p.when_key + "', which is neither varied above it nor set in [base]");
        auto add = [&](const toml::node& n) {
          try {
            p.when_values.push_back(option_text(options, check, p.when_key, n));
          } catch (const Error& e) {
            fail(path, n, p.when_key, e.what());
          }
        };
        if (const toml::array* a = entry->second.as_array()) {
          if (a->empty()) fail(path, *w, key, "when's list of values is empty");
          for (const auto& n : *a) add(n);
        } else {
          add(entry->second);
        }
      }
      s.params.push_back(std::move(p));
    }
  }

  // objectives = ["max val_acc", "min weights"]
  if (const toml::node* o = root.get("objectives")) {
    const toml::array* a = o->as_array();
    if (!a || a->empty()) fail(path, *o, "objectives", "wants a list such as [\"max val_acc\", \"min weights\"]");
    for (const auto& n : *a) {
      if (!n.is_string()) fail(path, n, "objectives", "wants strings such as \"max val_acc\"");
      const std::string text = *n.value<std::string>();
      Objective obj;
      std::string metric = text;
      if (text.rfind("max ", 0) == 0 || text.rfind("min ", 0) == 0) {
        obj.maximize = text[1] == 'a';
        metric = text.substr(4);
        metric.erase(0, metric.find_first_not_of(' '));
      }
      try {
        obj.metric = parse_metric(metric);
      } catch (const Error& e) {
        fail(path, n, "objectives", e.what());
      }
      if (metric == text) obj.maximize = obj.metric == Metric::val_acc;
      for (const Objective& other : s.objectives)
        if (other.metric == obj.metric) fail(path, n, "objectives", "names " + metric + " twice");
      s.objectives.push_back(obj);
    }
  } else {
    s.objectives = {Objective{Metric::val_acc, true}};
  }
  if (std::none_of(s.objectives.begin(), s.objectives.end(),
                   [](const Objective& o) { return o.metric == Metric::val_acc || o.metric == Metric::val_loss; }))
    fail(path, *root.get("objectives"), "objectives", "needs val_acc or val_loss: a search chooses on validation");

  // constraints = ["weights <= 100k"]
  if (const toml::node* c = root.get("constraints")) {
    const toml::array* a = c->as_array();
    if (!a) fail(path, *c, "constraints", "wants a list such as [\"weights <= 100k\"]");
    for (const auto& n : *a) {
      if (!n.is_string()) fail(path, n, "constraints", "wants strings such as \"weights <= 100k\"");
      const std::string text = *n.value<std::string>();
      const size_t op = text.find("<=");
      if (op == std::string::npos) fail(path, n, "constraints", "'" + text + "' wants the form \"weights <= 100k\" or \"mflops <= 5\"");
      auto trim = [](std::string t) {
        t.erase(0, t.find_first_not_of(' '));
        t.erase(t.find_last_not_of(' ') + 1);
        return t;
      };
      Constraint k;
      k.text = text;
      try {
        k.metric = parse_metric(trim(text.substr(0, op)));
        if (k.metric != Metric::weights && k.metric != Metric::mflops)
          throw Error("a constraint is checked before a trial trains: it may bound weights or mflops only");
        const std::string value = trim(text.substr(op + 2));
        if (k.metric == Metric::weights) {
          k.limit = static_cast<double>(parse_weight_count(value));
        } else {
          size_t used = 0;
          k.limit = std::stod(value, &used);
          if (used != value.size() || !std::isfinite(k.limit) || k.limit <= 0) throw std::invalid_argument(value);
        }
      } catch (const std::logic_error&) {
        fail(path, n, "constraints", "'" + text + "': the bound must be a positive number");
      } catch (const Error& e) {
        fail(path, n, "constraints", "'" + text + "': " + e.what());
      }
      s.constraints.push_back(k);
    }
  }

  // [schedule]
  if (const toml::node* n = root.get("schedule")) {
    const toml::table* t = n->as_table();
    if (!t) fail(path, *n, "schedule", "must be a table: kind, min-epochs, max-epochs, eta");
    for (const auto& [k, v] : *t) {
      const std::string key(k.str());
      if (key != "kind" && key != "min-epochs" && key != "max-epochs" && key != "eta")
        fail(path, v, key, "unknown schedule key (kind, min-epochs, max-epochs, eta)");
    }
    const std::string kind = (*t)["kind"].value_or(std::string("asha"));
    if (kind != "asha" && kind != "none") fail(path, *n, "kind", "the schedule is asha or none, not '" + kind + "'");
    s.asha = kind == "asha";
    s.max_epochs = integer(*t, "max-epochs", 1, 100000, 20);
    s.min_epochs = integer(*t, "min-epochs", 1, 100000, 1);
    s.eta = integer(*t, "eta", 2, 100, 3);
    if (s.asha && s.min_epochs >= s.max_epochs)
      fail(path, *n, "min-epochs", fmt::format("min-epochs {} must be below max-epochs {} for asha", s.min_epochs, s.max_epochs));
  }
  if (const toml::node* n = root.get("sampler")) {
    const toml::table* t = n->as_table();
    if (!t) fail(path, *n, "sampler", "must be a table: kind, startup, stratify");
    for (const auto& [k, v] : *t) {
      const std::string key(k.str());
      if (key != "kind" && key != "startup" && key != "stratify")
        fail(path, v, key, "unknown sampler key (kind, startup, stratify)");
    }
    const std::string kind = (*t)["kind"].value_or(std::string("tpe"));
    if (kind != "tpe" && kind != "random") fail(path, *n, "kind", "the sampler is tpe or random, not '" + kind + "'");
    s.tpe = kind == "tpe";
    s.startup = integer(*t, "startup", 1, 100000, 10);
    if (const toml::node* st = t->get("stratify")) {
      const toml::array* a = st->as_array();
      if (!a) fail(path, *st, "stratify", "must be a list of [space] options, e.g. [\"weights\"]");
      for (const toml::node& e : *a) {
        const std::optional<std::string> key = e.value<std::string>();
        if (!key) fail(path, e, "stratify", "must be a list of [space] options, e.g. [\"weights\"]");
        const SpaceParam* q = s.param(*key);
        if (!q) fail(path, e, "stratify", "'" + *key + "' is not an option of [space]");
        if (q->dist.kind != DistKind::choice) fail(path, e, "stratify", "'" + *key + "' must be a choice to take turns");
        if (!q->when_key.empty()) fail(path, e, "stratify", "'" + *key + "' must apply to every point (no when)");
        if (std::find(s.stratify.begin(), s.stratify.end(), *key) != s.stratify.end())
          fail(path, e, "stratify", "'" + *key + "' is named twice");
        s.stratify.push_back(*key);
      }
    }
  }
  return s;
}

}  // namespace tailor
