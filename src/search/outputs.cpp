#include "search/trials.hpp"

#include <algorithm>
#include <cctype>
#include <regex>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "inspect/render.hpp"
#include "nn/model_spec.hpp"
#include "report/figures.hpp"
#include "report/html_report.hpp"
#include "search/sampler.hpp"
#include "sweep/results.hpp"
#include "util/atomic_file.hpp"

namespace tailor {

using json = nlohmann::json;

std::vector<double> trial_objectives(const SearchSpace& space, const std::vector<int64_t>& rungs, const Trial& t, int k) {
  const int64_t e = rungs[k];
  const EpochRec& r = t.epochs.at(e);
  std::vector<double> v;
  for (const Objective& o : space.objectives) {
    double x = 0;
    switch (o.metric) {
      case Metric::val_acc: x = r.val_acc; break;
      case Metric::val_loss: x = r.val_loss; break;
      case Metric::weights: x = static_cast<double>(t.weights); break;
      case Metric::mflops: x = t.mflops; break;
      case Metric::train_seconds: x = t.seconds_to(e); break;
    }
    // A value that is not finite (a diverged loss) ranks last, whichever way the objective goes.
    v.push_back(!std::isfinite(x) ? 1e300 : o.maximize ? -x : x);
  }
  return v;
}

std::vector<size_t> pareto_set(const SearchView& v) {
  int k = -1;
  for (const Trial& t : v.trials)
    if (t.state != TrialState::failed) k = std::max(k, t.rung);
  if (k < 0) return {};
  std::vector<size_t> at;
  std::vector<std::vector<double>> pts;
  for (size_t i = 0; i < v.trials.size(); ++i)
    if (v.trials[i].rung == k && v.trials[i].state != TrialState::failed) {
      at.push_back(i);
      pts.push_back(trial_objectives(v.space, v.rungs, v.trials[i], k));
    }
  const std::vector<int> fronts = pareto_fronts(pts);
  std::vector<size_t> out;
  for (size_t j = 0; j < at.size(); ++j)
    if (fronts[j] == 0) out.push_back(at[j]);
  return out;
}

void write_search_tables(const SearchView& v) {
  const std::vector<size_t> pareto = pareto_set(v);
  std::string head = "trial,status,epochs";
  // The options as the command line spells them (--weights, a budget, beside weights, the count).
  for (const SpaceParam& p : v.space.params) head += "," + csv_field("--" + p.key);
  head += ",weights,mflops,val_acc,val_loss,train_seconds,ranks\n";
  auto row = [&](const Trial& t, const std::string& status) {
    std::string line = fmt::format("{},{},{}", t.id, status, t.last_epoch());
    for (const SpaceParam& p : v.space.params) {
      auto it = t.point.find(p.key);
      line += "," + (it == t.point.end() ? std::string() : csv_field(it->second));
    }
    line += fmt::format(",{},{:.4f}", t.weights, t.mflops);
    if (t.epochs.empty()) {
      line += ",,,";
    } else {
      const EpochRec& r = t.epochs.rbegin()->second;
      line += fmt::format(",{:.2f},{:.4f},{:.1f}", r.val_acc, r.val_loss, t.seconds_to(t.last_epoch()));
    }
    std::string ranks;
    for (int r : t.ranks) ranks += (ranks.empty() ? "" : " ") + std::to_string(r);
    return line + "," + ranks + "\n";
  };
  std::string csv = head;
  for (const Trial& t : v.trials) {
    const char* status = t.active                       ? "running"
                         : t.state == TrialState::finished   ? "finished"
                         : t.state == TrialState::failed     ? "failed"
                         : t.pruned                     ? "pruned"
                                                        : "paused";
    csv += row(t, status);
  }
  write_file_atomic(v.space.out + "/trials.csv", csv);
  std::string p = head.substr(0, head.size() - 1) + ",test_acc\n";
  for (size_t i : pareto) {
    const Trial& t = v.trials[i];
    std::string line = row(t, t.state == TrialState::finished ? "finished" : "paused");
    line.pop_back();
    p += line + "," + (std::isnan(t.test_acc) ? std::string() : fmt::format("{:.2f}", t.test_acc)) + "\n";
  }
  write_file_atomic(v.space.out + "/pareto.csv", p);

  // best.toml: a sweep that trains the Pareto set again, three seeds each, to the maximum epochs.
  // Flags and numbers bare, the rest (widths, names, --arch texts) as strings: as a sweep file has them.
  auto value = [](const std::string& v) {
    const std::regex number(R"(-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)");
    return v == "true" || v == "false" || std::regex_match(v, number) ? v : json(v).dump();
  };
  std::string toml = fmt::format(
      "# The Pareto set of search {} ({}), trained again with three seeds to {} epochs:\n"
      "#   tailor sweep {}/best.toml\n# Its table then gives test accuracy as a mean of the seeds.\n"
      "name = {}\nout = {}\nseeds = [1, 2, 3]\n\n[base]\n",
      v.space.name, v.space.path, v.rungs.back(), v.space.out, json(v.space.name + "-pareto").dump(), json(v.space.out + "/best").dump());
  for (const auto& [k, text] : v.space.base)
    if (k != "data" || v.data_dir.empty()) toml += k + " = " + value(text) + "\n";
  if (!v.data_dir.empty()) toml += "data = " + json(v.data_dir).dump() + "\n";
  toml += fmt::format("epochs = {}\n", v.rungs.back());
  for (size_t i : pareto) {
    const Trial& t = v.trials[i];
    toml += fmt::format("\n[[row]]\nname = \"trial {:04d}\"\n", t.id);
    for (const auto& [k, text] : t.point) toml += k + " = " + value(text) + "\n";
  }
  write_file_atomic(v.space.out + "/best.toml", toml);
}

void write_search_figures(const SearchView& v) {
  namespace fs = std::filesystem;
  fs::create_directories(v.space.out + "/figures");
  const std::vector<size_t> pareto = pareto_set(v);
  // Each trial at its last rung: the figures' points.
  auto at_rung = [&](const Trial& t) { return t.epochs.at(v.rungs[t.rung]).val_acc; };
  Series all{"trials (at their last rung)", {}, {}}, front{"Pareto set", {}, {}};
  for (const Trial& t : v.trials)
    if (t.rung >= 0) {
      all.x.push_back(static_cast<double>(t.weights));
      all.y.push_back(at_rung(t));
    }
  for (size_t i : pareto) {
    front.x.push_back(static_cast<double>(v.trials[i].weights));
    front.y.push_back(at_rung(v.trials[i]));
  }
  if (all.x.empty()) return;
  std::vector<Series> series{all, front};
  // The study's Table 1: its validation accuracy by weight budget, per family.
  std::map<std::string, Series> study;
  std::istringstream in(study_table1_csv());
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream r(line);
    for (std::string c; std::getline(r, c, ',');) f.push_back(c);
    if (f.size() < 6) continue;
    Series& s = study[f[0]];
    s.name = "the study's Table 1, " + f[0] + " (PyTorch)";
    s.x.push_back(static_cast<double>(parse_weight_count(f[1])));
    s.y.push_back(std::stod(f[5]));
  }
  for (auto& [k, s] : study) series.push_back(s);
  scatter_png(v.space.out + "/figures/val_acc_vs_weights.png", "Validation accuracy against weights: " + v.space.name, "weights",
              "validation accuracy (%)", series, true);

  std::vector<std::pair<double, double>> events;
  for (const Trial& t : v.trials)
    for (const auto& [e, r] : t.epochs) events.emplace_back(r.t, r.val_acc);
  std::sort(events.begin(), events.end());
  Series best{"best validation accuracy so far", {}, {}};
  double top = -1;
  for (const auto& [t, v] : events)
    if (v > top) {
      top = v;
      best.x.push_back(t / 60.0);
      best.y.push_back(v);
    }
  best.x.push_back(events.back().first / 60.0);
  best.y.push_back(top);
  line_chart_png(v.space.out + "/figures/best_so_far.png", "Best validation accuracy against time: " + v.space.name,
                 "wall time (minutes)", "validation accuracy (%)", {best});

  for (const SpaceParam& p : v.space.params) {
    std::vector<Series> slice;
    if (p.dist.kind == DistKind::choice) {
      for (size_t c = 0; c < p.dist.choices.size(); ++c) {
        Series s{p.key + " = " + p.dist.choices[c], {}, {}};
        for (const Trial& t : v.trials) {
          auto it = t.point.find(p.key);
          if (t.rung >= 0 && it != t.point.end() && it->second == p.dist.choices[c]) {
            s.x.push_back(static_cast<double>(c + 1));
            s.y.push_back(at_rung(t));
          }
        }
        if (!s.x.empty()) slice.push_back(s);
      }
    } else {
      Series s{p.key, {}, {}};
      for (const Trial& t : v.trials) {
        auto it = t.point.find(p.key);
        if (t.rung >= 0 && it != t.point.end()) {
          s.x.push_back(float_of_text(it->second));
          s.y.push_back(at_rung(t));
        }
      }
      if (!s.x.empty()) slice.push_back(s);
    }
    if (slice.empty()) continue;
    std::string file = p.key;
    for (char& c : file)
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    scatter_png(v.space.out + "/figures/slice_" + file + ".png", "Validation accuracy against " + p.key + ": " + v.space.name,
                p.dist.kind == DistKind::choice ? p.key + " (choice number)" : p.key, "validation accuracy (%)", slice,
                p.dist.kind == DistKind::log_uniform);
  }

  // report.html: the same, interactive, with the parameters in parallel coordinates.
  json points = json::array(), curve = json::array(), axes = json::array();
  std::set<int64_t> on_front;
  for (size_t i : pareto) on_front.insert(v.trials[i].id);
  for (const Trial& t : v.trials) {
    if (t.rung < 0) continue;
    json p{{"trial", t.id}, {"weights", t.weights}, {"mflops", t.mflops}, {"val_acc", at_rung(t)},
           {"epochs", v.rungs[t.rung]}, {"set", on_front.count(t.id) ? "Pareto set" : "other trials"}};
    for (const auto& [k, text] : t.point) p[k] = text;
    points.push_back(p);
    for (const SpaceParam& q : v.space.params) {
      auto it = t.point.find(q.key);
      if (it == t.point.end()) continue;
      double u = 0;
      if (q.dist.kind == DistKind::choice) {
        const auto c = std::find(q.dist.choices.begin(), q.dist.choices.end(), it->second) - q.dist.choices.begin();
        u = q.dist.choices.size() > 1 ? static_cast<double>(c) / static_cast<double>(q.dist.choices.size() - 1) : 0.5;
      } else {
        u = std::clamp(q.dist.to_unit(float_of_text(it->second)), 0.0, 1.0);
      }
      axes.push_back({{"trial", t.id}, {"axis", q.key}, {"position", u}, {"value", it->second}, {"val_acc", at_rung(t)}});
    }
  }
  for (size_t i = 0; i < best.x.size(); ++i) curve.push_back({{"minutes", best.x[i]}, {"best_val_acc", best.y[i]}});
  const std::string schema = "https://vega.github.io/schema/vega-lite/v5.json";
  json specs = json::array();
  specs.push_back({{"$schema", schema},
                   {"title", "Validation accuracy against weights (each trial at its last rung)"},
                   {"width", 420},
                   {"height", 260},
                   {"data", {{"name", "points"}}},
                   {"mark", {{"type", "point"}, {"filled", true}, {"size", 70}}},
                   {"encoding",
                    {{"x", {{"field", "weights"}, {"type", "quantitative"}, {"scale", {{"type", "log"}}}}},
                     {"y", {{"field", "val_acc"}, {"type", "quantitative"}, {"title", "validation accuracy (%)"}, {"scale", {{"zero", false}}}}},
                     {"color", {{"field", "set"}, {"type", "nominal"}, {"title", ""}}},
                     {"tooltip", json::array({{{"field", "trial"}}, {{"field", "weights"}}, {{"field", "val_acc"}, {"format", ".2f"}}, {{"field", "epochs"}}})}}}});
  specs.push_back({{"$schema", schema},
                   {"title", "Best validation accuracy against time"},
                   {"width", 420},
                   {"height", 260},
                   {"data", {{"name", "curve"}}},
                   {"mark", {{"type", "line"}, {"point", true}, {"interpolate", "step-after"}}},
                   {"encoding",
                    {{"x", {{"field", "minutes"}, {"type", "quantitative"}, {"title", "wall time (minutes)"}}},
                     {"y", {{"field", "best_val_acc"}, {"type", "quantitative"}, {"title", "validation accuracy (%)"}, {"scale", {{"zero", false}}}}}}}});
  json axis_order = json::array();
  for (const SpaceParam& q : v.space.params) axis_order.push_back(q.key);
  specs.push_back({{"$schema", schema},
                   {"title", "The parameters of every trial (parallel coordinates; colour: validation accuracy)"},
                   {"width", std::max<int>(420, 110 * static_cast<int>(v.space.params.size()))},
                   {"height", 260},
                   {"data", {{"name", "axes"}}},
                   {"mark", {{"type", "line"}, {"opacity", 0.6}}},
                   {"encoding",
                    {{"x", {{"field", "axis"}, {"type", "nominal"}, {"sort", axis_order}, {"title", ""}}},
                     {"y", {{"field", "position"}, {"type", "quantitative"}, {"title", "position in its range"}}},
                     {"detail", {{"field", "trial"}, {"type", "nominal"}}},
                     {"color", {{"field", "val_acc"}, {"type", "quantitative"}, {"scale", {{"scheme", "viridis"}}}}},
                     {"tooltip", json::array({{{"field", "trial"}}, {{"field", "axis"}}, {{"field", "value"}}, {{"field", "val_acc"}, {"format", ".2f"}}})}}}});
  std::string table = "<h2>Pareto set</h2>\n<table>\n<tr><th>trial</th>";
  for (const SpaceParam& q : v.space.params) table += "<th>" + html_escape(q.key) + "</th>";
  table += "<th>weights</th><th>MFLOPs</th><th>epochs</th><th>val_acc</th><th>test_acc (reported, never used to choose)</th></tr>\n";
  for (size_t i : pareto) {
    const Trial& t = v.trials[i];
    table += fmt::format("<tr><td>{}</td>", t.id);
    for (const SpaceParam& q : v.space.params) {
      auto it = t.point.find(q.key);
      table += "<td>" + html_escape(it == t.point.end() ? "" : it->second) + "</td>";
    }
    table += fmt::format("<td>{}</td><td>{:.3f}</td><td>{}</td><td>{:.2f}</td><td>{}</td></tr>\n", t.weights, t.mflops,
                         v.rungs[t.rung], at_rung(t), std::isnan(t.test_acc) ? "" : fmt::format("{:.2f}", t.test_acc));
  }
  table += "</table>\n<p>Every trial: trials.csv; the journal of every decision: search.jsonl.</p>\n";
  write_vega_page(v.space.out + "/report.html", "tailor search: " + v.space.name,
                  fmt::format("<p>{} trials; rungs at epochs {}; objectives {}.</p>\n", v.trials.size(),
                              fmt::join(v.rungs, ", "),
                              html_escape([&] {
                                std::string o;
                                for (const Objective& x : v.space.objectives)
                                  o += (o.empty() ? "" : ", ") + std::string(x.maximize ? "max " : "min ") + metric_name(x.metric);
                                return o;
                              }())),
                  specs, json{{"points", points}, {"curve", curve}, {"axes", axes}}, table);
}

std::string search_summary(const SearchView& v) {
  std::string out;
  const std::vector<size_t> pareto = pareto_set(v);
  out += fmt::format("Pareto set ({} trial{}", pareto.size(), pareto.size() == 1 ? "" : "s");
  out += pareto.empty() || v.trials[pareto[0]].state == TrialState::finished ? "" : ", at the highest rung reached so far";
  out += "):\n";
  for (size_t i : pareto) {
    const Trial& t = v.trials[i];
    std::string params;
    for (const auto& [k, text] : t.point) params += " " + k + "=" + text;
    out += fmt::format("  trial {:04d}: val_acc {:.2f}% at epoch {}, {} weights, {:.3f} MFLOPs{};{}\n", t.id,
                       t.epochs.at(v.rungs[t.rung]).val_acc, v.rungs[t.rung], t.weights, t.mflops,
                       std::isnan(t.test_acc) ? "" : fmt::format(", test {:.2f}%", t.test_acc), params);
  }
  out += fmt::format("results: {0}/trials.csv, pareto.csv, best.toml (tailor sweep {0}/best.toml retrains the set with "
                     "3 seeds), report.html, figures/*.png; journal {0}/search.jsonl\n",
                     v.space.out);
  return out;
}

}  // namespace tailor
