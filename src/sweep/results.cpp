#include "sweep/results.hpp"

#include <cmath>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "nn/model_spec.hpp"
#include "sweep/run_data.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace tailor {

namespace {

struct StudyRow {
  std::string model;
  int64_t weights = 0;
  double lr = 0, dropout = 0, val = 0, test = 0, seconds = 0;
  int64_t epochs = 0;
};

std::vector<StudyRow> read_study(const std::string& text) {
  std::vector<StudyRow> rows;
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);  // model,weights,learning_rate,epochs,dropout,val_acc,test_acc,training_seconds
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
    if (f.size() < 8) continue;
    StudyRow r;
    r.model = f[0] == "FCN" ? "fcn" : "cnn";
    r.weights = parse_weight_count(f[1]);
    r.lr = std::stod(f[2]);
    r.epochs = std::stoll(f[3]);
    r.dropout = std::stod(f[4]);
    r.val = std::stod(f[5]);
    r.test = std::stod(f[6]);
    r.seconds = std::stod(f[7]);
    rows.push_back(r);
  }
  return rows;
}

struct Stats {
  std::vector<double> v;
  double mean() const {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? NAN : s / v.size();
  }
  double sd() const {  // sample standard deviation; 0 for one value
    if (v.size() < 2) return 0;
    double m = mean(), s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / (v.size() - 1));
  }
  std::string pm(int digits) const {
    if (v.empty()) return "";
    if (v.size() == 1) return fmt::format("{:.{}f}", mean(), digits);
    return fmt::format("{:.{}f} ± {:.{}f}", mean(), digits, sd(), digits);
  }
};

// "conv 16,32; fc 60", "conv 16,32 l2-pool; fc 60", "fc 117,59", "conv 8,16; fc 32 on 3x20x20" (an
// input other than 1x28x28) or "24,max / 48x2,res,max / gap" (--arch), from a run's config.toml: rows of one budget can differ in
// architecture (experiments/best.toml), and the table says which. No '|', so it fits a Markdown cell.
std::string widths_of(const toml::table& cfg) {
  auto list = [&](const char* key) {
    std::string out;
    if (const toml::array* a = cfg["model"][key].as_array())
      for (const toml::node& v : *a) {
        if (!out.empty()) out += ',';
        out += std::to_string(v.value_or(int64_t{0}));
      }
    return out;
  };
  const std::string conv = list("channels"), fc = list("hidden");
  std::string out = conv.empty() ? "" : "conv " + conv;
  // A staged CNN: its --arch text, '|' written as '/' (the text holds its hidden widths too).
  if (const auto arch = cfg["model"]["arch"].value<std::string>()) {
    out = *arch;
    for (char& ch : out)
      if (ch == '|') ch = '/';
    const std::string input = cfg["run"]["image"].value_or(std::string("1x28x28"));
    return input != "1x28x28" ? out + " on " + input : out;
  }
  const std::string pool = cfg["model"]["pool"].value_or(std::string("max"));
  if (!conv.empty() && pool != "max") out += " " + pool + "-pool";
  if (!fc.empty()) out += (out.empty() ? "fc " : "; fc ") + fc;
  if (out.empty()) out = "linear";
  // The input, when it is not Fashion-MNIST's (an image folder at another size or in colour).
  const std::string input = cfg["run"]["image"].value_or(std::string("1x28x28"));
  if (input != "1x28x28") out += " on " + input;
  return out;
}

struct Group {
  std::string row;
  std::string model, widths, optimizer, init, schedule, stop, pool = "max", input = "1x28x28";
  int64_t weights = 0, target = 0, epochs = 0;
  double lr = 0, dropout = 0;
  Stats val, test, seconds;
  int seeds = 0, finished = 0;
};

}  // namespace

const std::string& study_table1_csv() {
  static const std::string text =
#include "study_table1.inc"
      ;
  return text;
}

std::string write_results_table(const std::string& dir, const std::string& study_csv) {
  std::vector<Group> groups;
  std::map<std::string, size_t> index;
  for (const TrialRecord& t : read_trials(dir)) {
    if (!index.count(t.group)) {
      index[t.group] = groups.size();
      groups.push_back({});
      groups.back().row = t.row;
    }
    Group& g = groups[index[t.group]];
    ++g.seeds;
    if (!t.finished) continue;
    const auto& s = t.summary;
    toml::table cfg;
    try {
      cfg = toml::parse_file(t.dir + "/config.toml");
    } catch (const toml::parse_error& e) {
      throw Error(t.dir + "/config.toml: " + std::string(e.description()));
    }
    g.model = cfg["model"]["family"].value_or(std::string("?"));
    g.widths = widths_of(cfg);
    g.pool = cfg["model"]["pool"].value_or(std::string("max"));
    g.input = cfg["run"]["image"].value_or(std::string("1x28x28"));
    g.target = cfg["model"]["weights_target"].value_or(int64_t{0});
    g.dropout = cfg["model"]["dropout"].value_or(0.0);
    g.init = cfg["model"]["init"].value_or(std::string("?"));
    g.optimizer = cfg["optim"]["optimizer"].value_or(std::string("?"));
    g.schedule = cfg["optim"]["schedule"].value_or(std::string("?"));
    g.lr = cfg["optim"]["lr"].value_or(0.0);
    g.epochs = cfg["train"]["epochs"].value_or(int64_t{0});
    g.weights = s.value("weights", int64_t{0});
    const std::string stop = s.value("stop_reason", std::string("?"));
    if (g.stop.find(stop) == std::string::npos) g.stop += (g.stop.empty() ? "" : "/") + stop;
    if (stop != "diverged") {
      g.val.v.push_back(s.value("val_acc", NAN));
      g.test.v.push_back(s.value("test_acc", NAN));
    }
    g.seconds.v.push_back(s.value("train_seconds", NAN));
    ++g.finished;
  }
  const auto study = read_study(study_csv);
  std::string csv =
      "row,model,widths,weights,lr,epochs,dropout,optimizer,init,schedule,seeds,finished,val_acc,val_acc_sd,test_acc,test_acc_sd,"
      "train_seconds,stop_reason,study_val_acc,study_test_acc,study_seconds\n";
  std::string md =
      "| row | model | widths | weights | lr | epochs | dropout | optimizer | init | seeds | val acc % | test acc % | train s | stop | "
      "study val % | study test % | study s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const Group& g : groups) {
    const StudyRow* match = nullptr;
    for (const auto& r : study)
      // The study max-pooled its CNNs: another pool is not its row.
      if (r.model == g.model && r.weights == g.target && r.epochs == g.epochs && std::abs(r.lr - g.lr) < 1e-12 &&
          std::abs(r.dropout - g.dropout) < 1e-6 && g.pool == "max" && g.input == "1x28x28")
        match = &r;
    auto num = [](double v, int d) { return std::isnan(v) ? std::string() : fmt::format("{:.{}f}", v, d); };
    const std::string sv = match ? num(match->val, 2) : "", st = match ? num(match->test, 2) : "",
                      ss = match ? num(match->seconds, 0) : "";
    std::string quoted = g.row;
    for (size_t p = 0; (p = quoted.find('"', p)) != std::string::npos; p += 2) quoted.insert(p, "\"");
    csv += fmt::format("\"{}\",{},\"{}\",{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", quoted, g.model, g.widths, g.weights,
                       g.lr, g.epochs, g.dropout, g.optimizer, g.init, g.schedule, g.seeds, g.finished,
                       num(g.val.mean(), 4), num(g.val.sd(), 4), num(g.test.mean(), 4), num(g.test.sd(), 4),
                       num(g.seconds.mean(), 2), g.stop, sv, st, ss);
    md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {}{} | {} | {} | {} | {} | {} | {} | {} |\n", g.row,
                      g.model, g.widths, g.weights, g.lr, g.epochs, g.dropout, g.optimizer, g.init, g.finished,
                      g.finished < g.seeds ? fmt::format(" of {}", g.seeds) : "", g.val.pm(2), g.test.pm(2),
                      num(g.seconds.mean(), 1), g.stop, sv, st, ss);
  }
  write_file_atomic(dir + "/table.csv", csv);
  write_file_atomic(dir + "/table.md", md);
  return md;
}

}  // namespace tailor
