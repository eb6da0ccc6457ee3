#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <algorithm>
#include <memory>
#include <optional>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/model_options.hpp"
#include "dist/mpi.hpp"
#include "train/trainer.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace tailor::cli {

namespace {
struct TrainArgs {
  ModelOptions model;
  TrainConfig cfg;
  std::string optimizer = "adam", schedule = "cosine", init = "kaiming", stop_on = "val", precision = "fp32",
              data_parallel = "auto", tta = "none";
  std::string image_size = "auto", color = "auto";
  std::string resume;
};

// Ctrl-C and SIGTERM: the first asks the trainer to stop at the next step boundary (it keeps the
// last finished epoch's resume state), a second one ends the process at once. A signal handler
// can only reach a flag, so this one lives here; the trainer is handed its address.
std::atomic<int> g_interrupt{0};
static_assert(std::atomic<int>::is_always_lock_free, "the handler's exchange must be async-signal-safe");

extern "C" void on_interrupt(int signal) {
  if (g_interrupt.exchange(signal) != 0) ::_exit(128 + signal);
}

// Runs `body` (a training) with the handlers installed; an interruption prints its line and ends
// the process by the same signal (end_by_signal). Under mpirun the ranks would have to agree on
// the step, so there the signals keep their default action.
template <class Body>
int interruptible(Body body) {
  const bool handle = dist::size() <= 1;
  std::optional<InterruptHandlers> handlers;
  if (handle) {
    g_interrupt.store(0);
    handlers.emplace(on_interrupt, true);
  }
  try {
    body(handle ? &g_interrupt : nullptr);
  } catch (const Interrupted& e) {
    handlers.reset();
    end_by_signal(e.value, std::string("tailor: ") + e.what());
  }
  return 0;
}

void print_outcome(const TrainOutcome& r, const std::string& dir) {
  std::printf("stopped: %s after %lld epochs, %.1f s of training\n", r.stop_reason.c_str(),
              static_cast<long long>(r.epochs_run), r.train_seconds);
  std::printf("test accuracy: %.2f%% (loss %.4f), %lld weights; run saved in %s\n", r.test_acc, r.test_loss,
              static_cast<long long>(r.weights), dir.c_str());
}

// `train --resume DIR`: the run's own settings from DIR/config.toml; only --threads and
// --progress may be given besides (every other flag would change what is being continued).
int resume_run(CLI::App& c, const std::string& dir) {
  for (const CLI::Option* o : c.get_options()) {
    const std::string name = o->get_name();
    if (o->count() > 0 && !std::set<std::string>{"--resume", "--threads", "--progress", "--help"}.count(name))
      throw Error(name + " cannot be given with --resume: the run continues with its saved settings (" + dir +
                  "/config.toml); only --threads and --progress may be set");
  }
  const std::filesystem::path summary = std::filesystem::path(dir) / "summary.json";
  if (std::filesystem::exists(summary) && !std::filesystem::exists(std::filesystem::path(dir) / kResumeStateFile)) {
    nlohmann::json s;
    try {
      s = nlohmann::json::parse(read_file(summary.string()));
    } catch (const nlohmann::json::exception&) {
      throw Error(summary.string() + " is not valid JSON");
    }
    const std::string reason = s.value("stop_reason", "");
    if (reason == "diverged")
      throw Error("the run in " + dir + " diverged after " + std::to_string(s.value("epochs_run", 0)) +
                  " epochs: there is nothing to resume (train it again with a lower --lr)");
    std::printf("the run in %s is finished (%s after %lld epochs, test accuracy %.2f%%): nothing to resume\n",
                dir.c_str(), reason.c_str(), static_cast<long long>(s.value("epochs_run", 0)),
                s.value("test_acc", 0.0));
    return 0;
  }
  const std::string config = dir + "/config.toml";
  if (!std::filesystem::exists(config))
    throw Error("--resume " + dir + ": no config.toml there, so no run to continue");
  TrainConfig cfg = config_from_toml(read_file(config), config);
  cfg.out_dir = dir;
  const std::string progress = c.get_option("--progress")->as<std::string>();
  cfg.progress = progress;
  const int saved_threads = cfg.threads;
  if (c.get_option("--threads")->count() > 0) cfg.threads = c.get_option("--threads")->as<int>();
  cfg.threads = resolve_threads(cfg.threads, "--threads");
  // A data-parallel run's result does not depend on its threads (each replica runs on one).
  if (cfg.threads != saved_threads && cfg.replicas <= 1)
    std::fprintf(stderr, "tailor: warning: --threads %d differs from the run's %d: the result will not be bit-identical "
                         "to an uninterrupted run\n", cfg.threads, saved_threads);
  return interruptible([&](const std::atomic<int>* stop) { print_outcome(resume_training(cfg, stop), dir); });
}
}  // namespace

namespace {
// train's options, declared on `app`'s subcommand "train": the one table of them that the program,
// sweep files and the library (train_config_from_options) all read.
CLI::App* declare_train(CLI::App& app, TrainArgs* a) {
  CLI::App* c = app.add_subcommand("train", "Train one model on an IDX data set and save the run in --out (under mpirun: "
                                            "data-parallel over the ranks, docs/scale.md)");
  add_model_options(*c, a->model);
  TrainConfig& g = a->cfg;
  c->add_option("--epochs", g.epochs, "Training epochs")->check(CLI::Range(1, 100000))->capture_default_str();
  c->add_option("--batch-size", g.batch_size, "Images per step")->check(CLI::Range(1, 65536))->capture_default_str();
  c->add_option("--optimizer", a->optimizer, "sgd, adam, adamw or rmsprop")
      ->check(CLI::IsMember(optimizer_names()))
      ->capture_default_str();
  c->add_option("--lr", g.optim.lr, "Learning rate (peak rate for schedules)")
      ->check(finite_range(1e-12, 1e6))
      ->capture_default_str();
  c->add_option("--momentum", g.optim.momentum, "Momentum for sgd and rmsprop, in [0, 1)")
      ->check(finite_range(0.0, 0.9999))
      ->capture_default_str();
  c->add_flag("--nesterov", g.optim.nesterov, "Nesterov momentum (sgd; needs --momentum > 0)");
  c->add_option("--weight-decay", g.optim.weight_decay, "L2 penalty (decoupled for adamw)")
      ->check(finite_range(0.0, 10.0))
      ->capture_default_str();
  c->add_option("--schedule", a->schedule, "Learning-rate schedule: constant, step, cosine or onecycle")
      ->check(CLI::IsMember(schedule_names()))
      ->capture_default_str();
  c->add_option("--step-epochs", g.schedule.step_epochs, "step schedule: epochs between decays (0: a third of the run)")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  c->add_option("--gamma", g.schedule.gamma, "step schedule: decay factor")->check(finite_range(0.0, 1.0))->capture_default_str();
  c->add_option("--init", a->init, "Weight init: normal, xavier, xavier-normal, kaiming, kaiming-normal")
      ->check(CLI::IsMember(init_names()))
      ->capture_default_str();
  c->add_option("--label-smoothing", g.label_smoothing, "Label smoothing in [0, 0.5]")
      ->check(finite_range(0.0, 0.5))
      ->capture_default_str();
  c->add_option("--shift", g.augment.shift, "Augmentation: shift training images by up to N pixels each way (0: off)")
      ->check(CLI::Range(0, 16))
      ->capture_default_str();
  c->add_flag("--flip", g.augment.flip, "Augmentation: mirror training images left-right at random");
  c->add_option("--erase", g.augment.erase,
                "Augmentation: random erasing (Zhong et al. 2017) with this probability: a rectangle of 2-40% of "
                "the picture set to the mean (0: off)")
      ->check(finite_range(0.0, 1.0))
      ->capture_default_str();
  c->add_option("--ema", g.ema,
                "Keep an exponential moving average of the weights (and batch-norm statistics) with this decay "
                "per step, e.g. 0.999; it is what is evaluated and saved (0: off)")
      ->check(finite_range(0.0, 0.99999))
      ->capture_default_str();
  c->add_option("--tta", a->tta,
                "Test-time augmentation: flip averages the logits of each picture and of its left-right mirror "
                "in every evaluation of the run (and eval, predict, serve, inspect and export follow the run); "
                "none: off")
      ->check(CLI::IsMember({"none", "flip"}))
      ->capture_default_str();
  c->add_option("--teacher", g.teacher,
                "Knowledge distillation: a finished run (directory or model.ckpt) of the same data whose logits "
                "on the training images, with its --tta, soften the targets; '{seed}' in the path stands for "
                "--seed, so that each seed's student learns from a teacher of the same split. Its logits are "
                "computed once, so --shift and --erase are refused with it; in a sweep, teacher = \"row:NAME\" (docs/sweeps.md)");
  c->add_option("--distill-weight", g.distill_weight,
                "With --teacher: the teacher's share w of the loss, (1 - w) cross-entropy + w T^2 KL(teacher || "
                "student) at temperature T")
      ->check(finite_range(0.0, 1.0))
      ->capture_default_str();
  c->add_option("--distill-temperature", g.distill_temperature,
                "With --teacher: the temperature T of both softmaxes in the distillation term, in [1, 100]")
      ->check(finite_range(1.0, 100.0))
      ->capture_default_str();
  c->add_option("--seed", g.seed, "Seed of every random choice (split, init, shuffle, dropout)")->capture_default_str();
  c->add_option("--threads", g.threads, "Threads (0: all cores; more than the cores is capped, with a warning); results are bit-identical per "
                                 "seed and thread count")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  c->add_option("--data-parallel", a->data_parallel,
                "auto: with 2 or more threads and at least 32 images of each batch per thread, each thread "
                "trains its own copy of the model on its slice of the batch and the gradients are summed (as "
                "mpirun's ranks; batch norm normalises each slice by its own statistics), which keeps speed when "
                "other programs share the cores; off: the whole batch goes through the layers on all threads")
      ->check(CLI::IsMember({"auto", "off"}))
      ->capture_default_str();
  c->add_option("--precision", a->precision,
                "fp32, or bf16: training products (matmuls, convolutions) in bfloat16 with float accumulation "
                "and float master weights; faster on CPUs with AVX-512 BF16 or AMX. Evaluation stays fp32")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  c->add_option("--stop-at", g.stop_at, "Stop once accuracy (percent) on --stop-on reaches this; 0: off")
      ->check(finite_range(0.0, 100.0))
      ->capture_default_str();
  c->add_option("--stop-on", a->stop_on, "Set --stop-at watches: val or test")
      ->check(CLI::IsMember({"val", "test"}))
      ->capture_default_str();
  c->add_option("--patience", g.patience, "Stop after this many epochs without a lower validation loss and "
                                          "restore the best weights; 0: off")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  c->add_option("--val", g.val_count, "Validation images held out of the training set (stratified, seeded)")
      ->check(CLI::Range(0, 100000000))
      ->capture_default_str();
  c->add_option("--eval-batch", g.eval_batch, "Images per evaluation batch")->check(CLI::Range(1, 65536))->capture_default_str();
  c->add_option("--data", g.data_dir,
                "Data set: a directory with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (class names from a "
                "classes.txt beside them), or an image folder DIR/{train,test}/<class>/*.png|jpg|jpeg|pgm")
      ->capture_default_str();
  c->add_option("--image-size", a->image_size,
                "Size the pictures are converted to, H or HxW, each side 1 to 1024 (area averaging, nothing "
                "cropped; IDX images keep their shape); auto: the IDX files' size, or a folder's most common "
                "picture size with its longer side capped at 64")
      ->capture_default_str();
  c->add_option("--color", a->color, "grey, rgb, or auto: rgb when any training picture shows colour (IDX: grey)")
      ->check(CLI::IsMember(data_color_names()))
      ->capture_default_str();
  c->add_option("--out", g.out_dir, "Run directory: config.toml, metrics.csv, summary.json, model.ckpt")
      ->capture_default_str();
  c->add_option("--progress", g.progress, "auto (bar on a terminal), bar, lines or none")
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}))
      ->capture_default_str();

  c->add_option("--resume", a->resume,
                 "Continue the run in this directory from its last finished epoch, with its saved settings "
                 "(only --threads and --progress may be given besides); bit-identical to a run never stopped");
  return c;
}

// The configuration the parsed options make.
TrainConfig train_config(const TrainArgs* a) {
    TrainConfig cfg = a->cfg;
    cfg.threads = resolve_threads(cfg.threads, "--threads");
    ResolvedModel m = resolve_model(a->model);
    cfg.model = m.spec;
    cfg.weights_target = m.target;
    cfg.optim.kind = parse_optimizer(a->optimizer);
    cfg.schedule.kind = parse_schedule(a->schedule);
    cfg.init = parse_init(a->init);
    cfg.stop_on = a->stop_on == "test" ? StopOn::test : StopOn::val;
    cfg.bf16 = a->precision == "bf16";
    cfg.data_parallel = a->data_parallel == "auto";
    cfg.tta_flip = a->tta == "flip";
    parse_image_size(a->image_size, &cfg.data.rows, &cfg.data.cols);
    cfg.data.color = parse_data_color(a->color);
    if (cfg.optim.nesterov && (cfg.optim.kind != OptimKind::sgd || cfg.optim.momentum <= 0))
      throw Error("--nesterov needs --optimizer sgd and --momentum > 0");
    return cfg;
}
}  // namespace

Run add_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* c = declare_train(app, a.get());
  return [a, c]() {
    if (!c->parsed()) return -1;
    if (!a->resume.empty()) return resume_run(*c, a->resume);
    const TrainConfig cfg = train_config(a.get());
    return interruptible([&](const std::atomic<int>* stop) { print_outcome(train(cfg, stop), cfg.out_dir); });
  };
}

std::vector<TrainOptionInfo> train_options() {
  CLI::App app;
  TrainArgs a;
  std::vector<TrainOptionInfo> out;
  for (const CLI::Option* o : declare_train(app, &a)->get_options()) {
    const std::vector<std::string> names = o->get_lnames();
    if (names.empty() || names[0] == "help") continue;
    TrainOptionInfo info;
    info.name = names[0];
    info.help = o->get_description();
    info.flag = o->get_expected_max() == 0;
    for (const std::string& f : o->get_fnames()) info.negatable = info.negatable || f == "no-" + info.name;
    // CLI11's type name, "FLOAT" or "TEXT:{sgd,adam}": the kind before any validator's text.
    const std::string type = o->get_type_name();
    info.type = info.flag ? "" : type.substr(0, type.find(':'));
    info.default_value = info.flag ? (o->get_default_str().empty() ? "false" : o->get_default_str()) : o->get_default_str();
    out.push_back(std::move(info));
  }
  return out;
}

OptionTable train_option_table() {
  OptionTable table;
  for (const TrainOptionInfo& o : train_options()) table[o.name] = OptionInfo{o.flag, o.negatable, o.type};
  return table;
}

// `train --KEY VALUE` through the real parser: its types, ranges and choices.
void check_train_option(const std::string& key, const std::string& value) {
  CLI::App app;
  TrainArgs a;
  declare_train(app, &a);  // parsing writes into `a`
  std::vector<std::string> args{value, "--" + key, "train"};  // CLI11 takes them in reverse
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    throw Error(e.what());
  }
}

TrainConfig train_config_from_options(const std::vector<std::pair<std::string, std::string>>& options) {
  CLI::App app;
  TrainArgs a;
  CLI::App* c = declare_train(app, &a);
  parse_named_options(app, c, {"train"}, options, "train");
  if (!a.resume.empty()) throw OptionError("resume", false, "resume is not a training option here: resume a run by its directory");
  return train_config(&a);
}

}  // namespace tailor::cli
