#include "train/trainer.hpp"

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "kernels/kernels.hpp"
#include "nn/loss.hpp"
#include "train/checkpoint.hpp"
#include "train/evaluate.hpp"
#include "train/progress.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"

#ifndef TAILOR_VERSION
#define TAILOR_VERSION "0.0.0"
#endif

namespace tailor {

std::string tailor_version() { return TAILOR_VERSION; }

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

constexpr const char* kMetricsHeader =
    "epoch,train_loss,train_acc,val_loss,val_acc,test_acc,lr,epoch_seconds,elapsed_seconds,images_per_second\n";

void write_summary(const std::string& dir, const nlohmann::json& s) {
  write_file_atomic(dir + "/summary.json", s.dump(2) + "\n");
}

}  // namespace

TrainOutcome train(TrainConfig cfg) {
  const auto wall_start = Clock::now();
  if (cfg.threads <= 0) cfg.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  kernels::set_threads(cfg.threads);
  if (cfg.bf16 && !kernels::has_bf16())
    throw Error("--precision bf16 needs a CPU with AVX-512 BF16 or AMX instructions; this one has neither (use fp32)");
  ensure_writable_dir(cfg.out_dir);
  const std::string dir = cfg.out_dir;

  TrainTestData data = load_train_test(cfg.data_dir);
  if (static_cast<size_t>(cfg.val_count) >= data.train.size())
    throw Error("--val " + std::to_string(cfg.val_count) + " leaves no training images (the training set has " +
                std::to_string(data.train.size()) + ")");
  cfg.model.in_channels = 1;
  cfg.model.height = data.train.rows;
  cfg.model.width = data.train.cols;
  cfg.model.classes = data.train.num_classes;
  if (cfg.val_count == 0 && (cfg.patience > 0 || (cfg.stop_at > 0 && cfg.stop_on == StopOn::val)))
    throw Error("--val 0 leaves no validation set for --patience or --stop-on val");
  if (cfg.weights_target > 0) cfg.model = fit_to_budget(cfg.model, cfg.weights_target);

  Rng master(cfg.seed);
  Rng init_rng = master.split(1), shuffle_rng = master.split(2);
  const uint64_t dropout_seed = master.split(3).next_u64();
  Rng augment_rng = master.split(4);  // drawn last: runs without augmentation are as before it
  Split split = stratified_split(data.train.labels, data.train.num_classes, cfg.val_count, cfg.seed);
  const Normalization norm = compute_normalization(data.train, split.train);
  auto model = build_model(cfg.model, dropout_seed);
  init_params(*model, cfg.init, cfg.model.activation, init_rng);
  model->set_bf16_training(cfg.bf16);
  Optimizer opt(cfg.optim, model->num_values());
  const int64_t weights = static_cast<int64_t>(model->num_values());
  const auto classes = class_names(data.train.num_classes);

  const std::string extra = fmt::format(
      "[run]\nversion = \"{}\"\nthreads = {}\nweights = {}\nwidths = \"{}\"\ntrain_images = {}\nval_images = {}\n"
      "test_images = {}\nnorm_mean = {}\nnorm_std = {}\n",
      tailor_version(), cfg.threads, weights, cfg.model.widths_str(), split.train.size(), split.val.size(),
      data.test.size(), norm.mean, norm.std);
  write_file_atomic(dir + "/config.toml", config_to_toml(cfg, extra));
  if (cfg.progress != "none")
    std::printf("tailor %s: %s %s, %lld weights, %zu train / %zu val / %zu test images, %d threads\n",
              tailor_version().c_str(), family_name(cfg.model.family).c_str(), cfg.model.widths_str().c_str(),
              static_cast<long long>(weights), split.train.size(), split.val.size(), data.test.size(), cfg.threads);

  // Everything a step touches is allocated here, before the first batch.
  const int64_t n_train = static_cast<int64_t>(split.train.size()), pixels = data.train.pixels();
  const int64_t bs = std::min(cfg.batch_size, n_train);
  const int64_t per_epoch = (n_train + bs - 1) / bs;
  const int64_t total_steps = per_epoch * cfg.epochs;
  std::vector<uint32_t> order = split.train;
  std::vector<float> x(bs * pixels), dlogits(bs * cfg.model.classes);
  std::vector<int32_t> y(bs);
  std::vector<float> scratch(pixels);
  const float background = -norm.mean / norm.std;  // a black pixel, normalised
  std::vector<float> best_values, best_state;
  double best_val_loss = INFINITY;
  int64_t best_epoch = 0, since_best = 0;

  nlohmann::json summary{{"version", tailor_version()}, {"model", spec_to_json(cfg.model)}, {"weights", weights},
                         {"seed", cfg.seed}, {"threads", cfg.threads}};
  std::string metrics = kMetricsHeader;
  write_file_atomic(dir + "/metrics.csv", metrics);  // the header at once, rows as epochs finish
  Progress progress(cfg.progress, cfg.epochs, per_epoch);
  TrainOutcome out;
  out.weights = weights;
  out.train_images = n_train;
  out.stop_reason = "epochs";
  double train_seconds = 0, lr = cfg.optim.lr;
  EvalResult val, test;
  auto evaluate_both = [&] {
    val = evaluate(*model, data.train, &split.val, norm, cfg.eval_batch);
    test = evaluate(*model, data.test, nullptr, norm, cfg.eval_batch);
  };

  for (int64_t epoch = 1; epoch <= cfg.epochs; ++epoch) {
    // Fisher-Yates shuffle from the run's own stream.
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[shuffle_rng.below(i)]);
    const auto t0 = Clock::now();
    double loss_sum = 0;
    int64_t correct = 0, seen = 0;
    for (int64_t b = 0; b < per_epoch; ++b) {
      const int64_t start = b * bs, m = std::min(bs, n_train - start);
      gather_batch(data.train, order.data() + start, m, norm, x.data(), y.data());
      augment_batch(x.data(), m, data.train.rows, data.train.cols, cfg.augment, background, augment_rng, scratch.data());
      ConstView logits = model->forward(ConstView(x.data(), Shape{m, pixels}), Mode::train);
      View dl{dlogits.data(), Shape{m, cfg.model.classes}};
      LossStats st = softmax_cross_entropy(logits, y.data(), dl, cfg.label_smoothing);
      if (!std::isfinite(st.loss_sum)) {
        summary["stop_reason"] = "diverged";
        summary["epochs_run"] = epoch - 1;
        summary["train_seconds"] = train_seconds;
        write_summary(dir, summary);
        throw Error(fmt::format("training diverged: the loss became {} in epoch {}, batch {} (try a lower --lr); "
                                "{} keeps the {} finished epochs",
                                st.loss_sum, epoch, b + 1, dir + "/metrics.csv", epoch - 1));
      }
      model->backward(dl);
      lr = lr_at(cfg.schedule, cfg.optim.lr, opt.steps(), total_steps, per_epoch);
      opt.step(model->values(), model->grads(), static_cast<float>(lr));
      loss_sum += st.loss_sum;
      correct += st.correct;
      seen += m;
      progress.batch(epoch, b + 1, loss_sum / seen, 100.0 * correct / seen);
    }
    const double epoch_seconds = seconds_since(t0);
    train_seconds += epoch_seconds;
    out.epoch_seconds.push_back(epoch_seconds);
    evaluate_both();
    const double train_loss = loss_sum / seen, train_acc = 100.0 * correct / seen;
    const double ips = seen / epoch_seconds;
    // Without a validation set (--val 0) its two columns stay empty rather than read as zero.
    const std::string val_cols = val.count ? fmt::format("{:.6f},{:.4f}", val.loss, val.acc) : ",";
    metrics += fmt::format("{},{:.6f},{:.4f},{},{:.4f},{:.6g},{:.3f},{:.3f},{:.0f}\n", epoch, train_loss, train_acc,
                           val_cols, test.acc, lr, epoch_seconds, seconds_since(wall_start), ips);
    write_file_atomic(dir + "/metrics.csv", metrics);
    progress.epoch(fmt::format("epoch {:>3}/{}  loss {:.4f}  train {:.2f}%  val {:.2f}% (loss {:.4f})  test {:.2f}%  "
                               "{:.2f} s  {:.0f} img/s",
                               epoch, cfg.epochs, train_loss, train_acc, val.acc, val.loss, test.acc, epoch_seconds, ips));
    out.epochs_run = epoch;

    if (cfg.patience > 0) {
      if (val.loss < best_val_loss) {
        best_val_loss = val.loss;
        best_epoch = epoch;
        since_best = 0;
        best_values.assign(model->values(), model->values() + model->num_values());
        best_state.assign(model->state(), model->state() + model->num_state());
      } else if (++since_best >= cfg.patience) {
        out.stop_reason = "patience";
        break;
      }
    }
    if (cfg.stop_at > 0 && (cfg.stop_on == StopOn::val ? val.acc : test.acc) >= cfg.stop_at) {
      out.stop_reason = "target_accuracy";
      break;
    }
  }

  // With patience the best epoch's weights are the result; evaluate them afresh.
  if (cfg.patience > 0 && !best_values.empty() && best_epoch != out.epochs_run) {
    std::copy(best_values.begin(), best_values.end(), model->values());
    std::copy(best_state.begin(), best_state.end(), model->state());
    evaluate_both();
  }

  Checkpoint ck;
  ck.meta = {{"format", "tailor checkpoint"},
             {"version", tailor_version()},
             {"model", spec_to_json(cfg.model)},
             {"normalization", {{"mean", norm.mean}, {"std", norm.std}}},
             {"classes", classes},
             {"optimizer", optimizer_name(cfg.optim.kind)},
             {"steps", opt.steps()},
             {"epochs_run", out.epochs_run},
             // Absolute, so eval, inspect and serve find the data from any working directory.
             {"data_dir", std::filesystem::absolute(cfg.data_dir).lexically_normal().string()},
             {"eval_batch", cfg.eval_batch},
             {"threads", cfg.threads},
             {"seed", cfg.seed}};
  ck.weights.assign(model->values(), model->values() + model->num_values());
  ck.stats.assign(model->state(), model->state() + model->num_state());
  ck.optim_state = opt.state();
  save_checkpoint(dir + "/model.ckpt", ck);

  out.val_acc = val.acc;
  out.test_acc = test.acc;
  out.test_loss = test.loss;
  out.train_seconds = train_seconds;
  summary["val_acc"] = val.acc;
  summary["val_loss"] = val.loss;
  summary["test_acc"] = test.acc;
  summary["test_loss"] = test.loss;
  summary["train_seconds"] = train_seconds;
  summary["wall_seconds"] = seconds_since(wall_start);
  summary["peak_rss_mb"] = peak_rss_mb();
  summary["epochs_run"] = out.epochs_run;
  summary["best_epoch"] = cfg.patience > 0 ? best_epoch : out.epochs_run;
  summary["stop_reason"] = out.stop_reason;
  write_summary(dir, summary);
  return out;
}

}  // namespace tailor
