#include "train/run_state.hpp"

#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "train/checkpoint.hpp"
#include "train/trainer.hpp"
#include "util/error.hpp"

namespace tailor {

namespace {

// Every value of the state's metadata and its key: the one list that both the writer and the
// reader walk. (The streams of the replicas, the flags and the arrays are laid out below.)
template <class State, class F>
void fields(State& s, F&& f) {
  f("epoch", s.run.epoch);
  f("steps", s.live.now.steps);
  f("shuffle_rng", s.live.shuffle_rng);
  f("dropout_rngs", s.live.dropout_rngs);
  f("metrics", s.run.metrics);
  f("train_seconds", s.run.train_seconds);
  f("elapsed_seconds", s.run.elapsed_seconds);
  f("epoch_seconds", s.run.epoch_seconds);
  f("val", s.run.val);
  f("test", s.run.test);
  f("stop_reason", s.run.stop_reason);
  f("best_val_loss", s.run.best_val_loss);
  f("best_epoch", s.run.best_epoch);
  f("since_best", s.run.since_best);
  f("best_steps", s.run.best.steps);
}

// A value to JSON and back: an evaluation as {loss, acc, count}; a double that is not finite
// (the best loss before any) as null.
nlohmann::json to_json_value(const EvalResult& e) { return {{"loss", e.loss}, {"acc", e.acc}, {"count", e.count}}; }
nlohmann::json to_json_value(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }
template <class T>
nlohmann::json to_json_value(const T& v) {
  return nlohmann::json(v);
}
void from_json_value(const nlohmann::json& j, EvalResult& e) {
  // null: not evaluated (a run that keeps the test set unseen, TrainControl::evaluate_test).
  const auto number = [](const nlohmann::json& v) { return v.is_null() ? std::nan("") : v.get<double>(); };
  e.loss = number(j.at("loss"));
  e.acc = number(j.at("acc"));
  e.count = j.at("count").get<int64_t>();
}
void from_json_value(const nlohmann::json& j, double& v) { v = j.is_null() ? INFINITY : j.get<double>(); }
template <class T>
void from_json_value(const nlohmann::json& j, T& v) {
  v = j.get<T>();
}

// The arrays in order: now, then the best epoch's; each the weights, their average (--ema), the
// statistics, theirs, and the optimizer state.
template <class Snap, class F>
void arrays(Snap& s, F&& f) {
  f(0, s.values);
  f(0, s.ema_values);
  f(1, s.stats);
  f(1, s.ema_buffers);
  f(2, s.optim);
}

}  // namespace

void write_resume_state(const std::string& path, const RunState& run, const LiveState& live) {
  const ResumeState s{run, live};
  Checkpoint ck;
  ck.meta = {{"format", "tailor resume state"}, {"version", tailor_version()}};
  fields(s, [&](const char* key, const auto& value) { ck.meta[key] = to_json_value(value); });
  ck.meta["augment_rng"] = live.augment_rngs.at(0);
  ck.meta["replica_augment_rngs"] = std::vector<uint64_t>(live.augment_rngs.begin() + 1, live.augment_rngs.end());
  ck.meta["has_best"] = !run.best.empty();
  ck.meta["has_ema"] = !live.now.ema_values.empty();
  std::vector<float>* to[3] = {&ck.weights, &ck.stats, &ck.optim_state};
  for (const Snapshot* snap : {&live.now, &run.best})
    if (!snap->empty()) arrays(*snap, [&](int k, const std::vector<float>& a) { to[k]->insert(to[k]->end(), a.begin(), a.end()); });
  save_checkpoint(path, ck);
}

ResumeProgress read_resume_progress(const std::string& path) {
  const Checkpoint ck = read_checkpoint(path);
  try {
    if (!ck.meta.is_object() || ck.meta.value("format", "") != "tailor resume state") throw Error("not a resume state");
    return {ck.meta.at("epoch").get<int64_t>(), ck.meta.at("metrics").get<std::string>()};
  } catch (const nlohmann::json::exception& e) {
    throw Error("resume state " + path + " is damaged: " + e.what());
  }
}

ResumeState read_resume_state(const std::string& path, const ResumeShape& shape) {
  Checkpoint ck = read_checkpoint(path);
  ResumeState s;
  try {
    const nlohmann::json& m = ck.meta;
    if (!m.is_object() || m.value("format", "") != "tailor resume state") throw Error("not a resume state");
    const bool has_best = m.at("has_best").get<bool>();
    const bool has_ema = m.value("has_ema", false);  // states from before --ema have none
    if (has_ema != shape.ema) throw Error(has_ema ? "it holds --ema averages the run's config.toml does not ask for"
                                                  : "it holds no --ema averages, and the run's config.toml asks for them");
    const size_t copies = has_best ? 2 : 1, per = has_ema ? 2 : 1;
    if (ck.weights.size() != copies * per * shape.values || ck.stats.size() != copies * per * shape.stats ||
        ck.optim_state.size() != copies * shape.optim || m.at("dropout_rngs").size() != shape.dropout_streams)
      throw Error("its arrays do not match the run's model (" + std::to_string(shape.values) + " weights)");
    fields(s, [&](const char* key, auto& value) { from_json_value(m.at(key), value); });
    if (s.run.epoch < 1 || s.run.epoch > shape.epochs) throw Error("epoch " + std::to_string(s.run.epoch) + " is out of range");
    if (s.live.now.steps < 0) throw Error("step count " + std::to_string(s.live.now.steps) + " is negative");
    s.live.augment_rngs = {m.at("augment_rng").get<uint64_t>()};
    if (m.contains("replica_augment_rngs"))  // states of older tailors have one replica
      for (uint64_t g : m.at("replica_augment_rngs").get<std::vector<uint64_t>>()) s.live.augment_rngs.push_back(g);
    if (s.live.augment_rngs.size() != shape.replicas)
      throw Error(fmt::format("it holds the streams of {} data-parallel replicas, the run's config.toml says {}",
                              s.live.augment_rngs.size(), shape.replicas));
    const std::vector<float>* from[3] = {&ck.weights, &ck.stats, &ck.optim_state};
    const size_t sizes[3] = {shape.values, shape.stats, shape.optim};
    size_t at[3] = {0, 0, 0};
    for (Snapshot* snap : {&s.live.now, &s.run.best}) {
      if (snap == &s.run.best && !has_best) break;
      arrays(*snap, [&](int k, std::vector<float>& a) {
        if (!has_ema && (&a == &snap->ema_values || &a == &snap->ema_buffers)) return;
        a.assign(from[k]->begin() + static_cast<std::ptrdiff_t>(at[k]),
                 from[k]->begin() + static_cast<std::ptrdiff_t>(at[k] + sizes[k]));
        at[k] += sizes[k];
      });
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error("resume state " + path + " is damaged: " + e.what());
  } catch (const Error& e) {
    throw Error("resume state " + path + " cannot be used: " + e.what());
  }
  return s;
}

}  // namespace tailor
