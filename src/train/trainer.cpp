#include "train/trainer.hpp"

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "data/image_folder.hpp"
#include "dist/mpi.hpp"
#include "kernels/isa.hpp"
#include "kernels/kernels.hpp"
#include "kernels/update.hpp"
#include "nn/loss.hpp"
#include "report/figures.hpp"
#include "train/checkpoint.hpp"
#include "train/evaluate.hpp"
#include "train/progress.hpp"
#include "train/step_team.hpp"
#include "util/atomic_file.hpp"
#include "util/dir_lock.hpp"
#include "util/error.hpp"
#include "util/memory.hpp"

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

// One value as TOML, or a list of them for several channels.
std::string toml_floats(const float* v, int n) {
  return n == 1 ? fmt::format("{}", v[0]) : fmt::format("[{}]", fmt::join(v, v + n, ", "));
}

void write_summary(const std::string& dir, const nlohmann::json& s) {
  write_file_atomic(dir + "/summary.json", s.dump(2) + "\n");
}

}  // namespace

namespace {

// One model's share of a training step: its slice of each batch, with its own buffers and
// augmentation stream. Replica 0 trains the run's model; the others (data-parallel steps, see
// step_replicas) own copies of it that take its weights at the start of every step.
struct Replica {
  std::unique_ptr<Sequential> own;
  Sequential* model = nullptr;
  Rng augment_rng;
  std::vector<float> x, dlogits, scratch;
  std::vector<float> teacher;  // --teacher: the slice's rows of Run::teacher_logits
  std::vector<int32_t> y;
  LossStats st;
  std::exception_ptr error;
};

// Everything a run holds between epochs. setup() makes it; start_fresh() or resume() brings it
// to the start of its next epoch; run_epoch() trains and evaluates one; finish() writes the result.
struct Run {
  TrainConfig cfg;
  std::unique_ptr<kernels::ThreadScope> threads;  // the calling thread's kernels run on cfg.threads
  std::string dir;
  DirLock lock;
  const TrainControl* control = nullptr;  // train's: read at every step boundary and epoch end
  Clock::time_point polled{};             // when control->poll was last asked
  TrainTestData data;
  Split split;
  Normalization norm;
  std::unique_ptr<Sequential> model;
  std::unique_ptr<Optimizer> opt;
  Rng shuffle_rng;
  std::vector<Replica> reps;  // one, or one per thread for data-parallel steps
  std::unique_ptr<StepTeam> team;  // the threads of a data-parallel step
  std::vector<uint32_t> order;  // the training indices, as shuffled by the epochs so far
  std::vector<std::string> classes;
  int64_t weights = 0, n_train = 0, bs = 0, per_epoch = 0, total_steps = 0;
  RunState st{.metrics = kMetricsHeader};  // progress: epochs finished and what they found
  Clock::time_point wall_start = Clock::now();
  bool resuming = false;
  // Data-parallel training under mpirun: this process's rank of `world`; rank 0 writes the run.
  int rank = 0, world = 1;
  bool writes() const { return rank == 0; }
  Clock::time_point curves_drawn{};  // when curves.png was last drawn, and how long that took
  double curves_cost = 0;

  // --ema: the moving averages of the weights and of the batch-norm statistics.
  std::vector<float> ema_values, ema_buffers;
  // --teacher: its logits of every training image, (images in the training file, classes), the
  // held-out images' rows zero; computed once when the run is set up (fresh or resumed alike).
  std::vector<float> teacher_logits;

  std::string state_path() const { return dir + "/" + kResumeStateFile; }
  // At a step boundary: throws Interrupted when the caller asks the run to stop.
  void check_stop() {
    if (control->stop) {
      if (const int value = control->stop->load(std::memory_order_relaxed)) throw Interrupted(st.epoch, value, dir);
    }
    if (control->poll && seconds_since(polled) >= 0.05) {
      polled = Clock::now();
      if (const int value = control->poll()) throw Interrupted(st.epoch, value, dir);
    }
  }
  Snapshot snapshot() const {
    return {{model->values(), model->values() + model->num_values()},
            {model->buffer_values(), model->buffer_values() + model->num_buffer_values()},
            opt->state(),
            opt->steps(),
            ema_values,
            ema_buffers};
  }
  // The model's weights and statistics swapped with their averages (--ema; swapping twice
  // restores them): what is evaluated and saved.
  void swap_ema() {
    if (ema_values.empty()) return;
    std::swap_ranges(ema_values.begin(), ema_values.end(), model->values());
    std::swap_ranges(ema_buffers.begin(), ema_buffers.end(), model->buffer_values());
  }
  // Validation and test, of the averaged weights with --ema, with flips with --tta flip.
  void evaluate_both() {
    swap_ema();
    st.val = evaluate(*model, data.train, &split.val, norm, cfg.eval_batch, nullptr, cfg.tta_flip);
    if (control->evaluate_test) {
      st.test = evaluate(*model, data.test, nullptr, norm, cfg.eval_batch, nullptr, cfg.tta_flip);
    } else {
      st.test = EvalResult{};
      st.test.loss = st.test.acc = std::numeric_limits<double>::quiet_NaN();
    }
    swap_ema();
  }
  // The decay of step t (after t updates), warmed up as TensorFlow's ExponentialMovingAverage
  // with num_updates: early averages follow the weights more closely.
  float ema_decay() const {
    const double t = static_cast<double>(opt->steps());
    return static_cast<float>(std::min(static_cast<double>(cfg.ema), (1.0 + t) / (10.0 + t)));
  }
  // Fisher-Yates shuffle of `order` from the run's own stream, once per epoch.
  void shuffle() {
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[shuffle_rng.below(i)]);
  }
};

// --teacher: the run's teacher path with "{seed}" replaced by the seed, made absolute.
std::string teacher_path(const TrainConfig& cfg) {
  std::string path = cfg.teacher;
  const std::string seed = std::to_string(cfg.seed);
  for (size_t at = path.find("{seed}"); at != std::string::npos; at = path.find("{seed}", at + seed.size()))
    path.replace(at, 6, seed);
  return std::filesystem::absolute(path).lexically_normal().string();
}

// --teacher: loads the teacher, checks that it fits the data, and keeps its logits of every
// training image (evaluated as the teacher's run evaluates, with its own normalisation and
// test-time flip, on this run's threads). One line for a teacher that does not fit.
void load_teacher(Run& r) {
  TrainConfig& cfg = r.cfg;
  if (cfg.augment.shift > 0 || cfg.augment.erase > 0)
    throw Error("--teacher cannot be combined with --shift or --erase: the teacher's logits are computed once, "
                "for the pictures as they are");
  const std::string checkpoint = checkpoint_path(cfg.teacher);
  LoadedModel t;
  try {
    t = load_model(checkpoint);
  } catch (const Error& e) {
    throw Error(std::string("--teacher: ") + e.what());
  }
  if (cfg.augment.flip && !t.tta_flip)
    throw Error("--teacher with --flip needs a teacher that averages each picture with its mirror (trained with "
                "--tta flip): its logits are computed once, for the pictures as they are");
  const ModelSpec& ts = t.spec;
  if (ts.classes != cfg.model.classes)
    throw Error(fmt::format("--teacher {} tells {} classes apart; this data has {}", cfg.teacher, ts.classes,
                            cfg.model.classes));
  // A teacher trained at another picture size (or colour) sees the training pictures converted
  // as its own run converted them: the same files, so the same images in the same order.
  const bool own_size = ts.in_channels != cfg.model.in_channels || ts.height != cfg.model.height ||
                        ts.width != cfg.model.width;
  TrainTestData other;
  if (own_size) {
    if (r.control->data)
      throw Error(fmt::format("--teacher {} takes {}x{}x{} pictures; the data in memory has {}x{}x{}", cfg.teacher,
                              ts.in_channels, ts.height, ts.width, cfg.model.in_channels, cfg.model.height,
                              cfg.model.width));
    DataOptions as_teacher{static_cast<int>(ts.height), static_cast<int>(ts.width),
                           ts.in_channels == 3 ? DataColor::rgb : DataColor::grey};
    other = load_train_test(cfg.data_dir, as_teacher);
    if (other.train.size() != r.data.train.size() || other.train.channels != ts.in_channels ||
        other.train.rows != ts.height || other.train.cols != ts.width)
      throw Error(fmt::format("--teacher {} takes {}x{}x{} pictures, which {} cannot be converted to", cfg.teacher,
                              ts.in_channels, ts.height, ts.width, cfg.data_dir));
  }
  // A teacher of another split has seen this run's validation images: their accuracy reads high.
  // The split is the seed's and --val's (the teacher's config.toml has its --val, when it is there).
  int64_t teacher_val = cfg.val_count;
  const std::string teacher_config = (std::filesystem::path(checkpoint).parent_path() / "config.toml").string();
  if (std::filesystem::exists(teacher_config)) {
    try {
      teacher_val = config_from_toml(read_file(teacher_config), teacher_config).val_count;
    } catch (const Error&) {  // not a run's config.toml: nothing to compare
    }
  }
  if (r.writes() && (t.seed != cfg.seed || teacher_val != cfg.val_count))
    std::fprintf(stderr, "tailor: warning: --teacher %s held out %lld validation images with seed %llu, this run %lld "
                         "with seed %llu: the teacher saw some of this run's validation images, whose accuracy then "
                         "reads high (a teacher of the same --seed and --val does not; '{seed}' in the path helps)\n",
                 cfg.teacher.c_str(), static_cast<long long>(teacher_val), static_cast<unsigned long long>(t.seed),
                 static_cast<long long>(cfg.val_count), static_cast<unsigned long long>(cfg.seed));
  std::vector<float> logits;
  const auto t0 = Clock::now();
  // On one thread when the steps are data-parallel, whose results do not depend on --threads.
  const kernels::ThreadScope threads(r.reps.size() > 1 ? 1 : cfg.threads);
  evaluate(*t.model, own_size ? other.train : r.data.train, &r.split.train, t.norm, cfg.eval_batch, &logits, t.tta_flip);
  const int64_t k = cfg.model.classes;
  r.teacher_logits.assign(r.data.train.size() * static_cast<size_t>(k), 0.0f);
  for (size_t i = 0; i < r.split.train.size(); ++i)
    std::copy_n(logits.data() + i * k, k, r.teacher_logits.data() + r.split.train[i] * k);
  if (r.writes() && cfg.progress != "none")
    std::printf("teacher %s: its logits of the %zu training images, %s, in %.1f s\n", cfg.teacher.c_str(),
                r.split.train.size(), t.tta_flip ? "each averaged with its mirror's" : "as they are", seconds_since(t0));
}

// Loads the data, checks the settings, builds and initialises the model: the same for a fresh
// and a resumed run (a resumed run then overwrites the weights and streams).
void setup(Run& r) {
  TrainConfig& cfg = r.cfg;
  if (cfg.threads <= 0) cfg.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  r.threads = std::make_unique<kernels::ThreadScope>(cfg.threads);  // this thread's, until the run ends
  if (cfg.bf16 && !kernels::has_bf16())
    throw Error("--precision bf16 needs a CPU with AVX-512 BF16 or AMX instructions; this one has neither (use fp32)");
  // A search worker trains on its own even under mpirun (TrainControl::local).
  r.rank = r.control->local ? 0 : dist::rank();
  r.world = r.control->local ? 1 : dist::size();
  if (r.world > 1 && r.resuming)
    throw Error("train --resume under mpirun is not supported: a data-parallel run keeps no resume state; train it "
                "again (or resume a single-process run without mpirun)");
  if (r.world > 1 && cfg.batch_size < r.world)
    throw Error("--batch-size " + std::to_string(cfg.batch_size) + " is smaller than the " + std::to_string(r.world) +
                " ranks: each rank needs at least one image of every batch");
  // One writer per run directory, held until the run ends (released by the kernel if it dies).
  if (r.writes()) r.lock = DirLock(cfg.out_dir, "run directory");
  r.dir = cfg.out_dir;
  if (r.control->data) {
    r.data = *r.control->data;
    if (r.data.train.size() == 0 || r.data.test.size() == 0) throw Error("the data in memory has no training or no test images");
  } else {
    r.data = load_train_test(cfg.data_dir, cfg.data);
  }
  if (static_cast<size_t>(cfg.val_count) >= r.data.train.size())
    throw Error("--val " + std::to_string(cfg.val_count) + " leaves no training images (the training set has " +
                std::to_string(r.data.train.size()) + ")");
  cfg.model.in_channels = r.data.train.channels;
  cfg.model.height = r.data.train.rows;
  cfg.model.width = r.data.train.cols;
  cfg.model.classes = r.data.train.num_classes;
  if (cfg.val_count == 0 && (cfg.patience > 0 || (cfg.stop_at > 0 && cfg.stop_on == StopOn::val)))
    throw Error("--val 0 leaves no validation set for --patience or --stop-on val");
  // A resumed run's config.toml holds the widths already sized: they are used as they are.
  if (cfg.weights_target > 0 && !r.resuming) cfg.model = fit_to_budget(cfg.model, cfg.weights_target);
  // Most of the memory (util/memory.hpp), so that an absurd width ("--channels 100000,100000") is one line
  // naming the flags, not a bad_alloc (or the OOM killer) half-way through building the model.
  check_training_memory(cfg.model, std::max(std::min<int64_t>(cfg.batch_size, static_cast<int64_t>(r.data.train.size())),
                                            cfg.eval_batch),
                        model_memory_limit());

  Rng master(cfg.seed);
  Rng init_rng = master.split(1);
  r.shuffle_rng = master.split(2);
  uint64_t dropout_seed = master.split(3).next_u64();
  Rng augment_rng = master.split(4);  // drawn last: runs without augmentation are as before it
  // Under mpirun the shuffle is shared (every rank takes its slice of the same batches); dropout
  // and augmentation draw per (seed, rank), rank 0 as a single process does. The replicas of a
  // data-parallel step draw as ranks would: replica k as rank k.
  const auto rank_seed = [&](int k) { return k > 0 ? Rng(dropout_seed).split(static_cast<uint64_t>(k)).next_u64() : dropout_seed; };
  const auto rank_augment = [&](int k) { return k > 0 ? augment_rng.split(static_cast<uint64_t>(k)) : augment_rng; };
  dropout_seed = rank_seed(r.rank);
  augment_rng = rank_augment(r.rank);
  r.split = stratified_split(r.data.train.labels, r.data.train.num_classes, cfg.val_count, cfg.seed);
  r.norm = compute_normalization(r.data.train, r.split.train);
  r.model = build_model(cfg.model, dropout_seed);
  r.n_train = static_cast<int64_t>(r.split.train.size());
  r.bs = std::min(cfg.batch_size, r.n_train);
  // A run's replicas are decided once, when it starts (config.toml keeps them): a resumed run
  // has its own, on any number of threads.
  if (r.world > 1) cfg.replicas = 1;
  if (cfg.replicas < 1) cfg.replicas = step_replicas(cfg.threads, r.bs, cfg.data_parallel);
  const int replicas = cfg.replicas;
  r.reps.resize(static_cast<size_t>(replicas));
  for (int k = 0; k < replicas; ++k) {
    Replica& p = r.reps[static_cast<size_t>(k)];
    if (k > 0) p.own = build_model(cfg.model, rank_seed(k));
    p.model = k > 0 ? p.own.get() : r.model.get();
    p.augment_rng = rank_augment(k);
  }
  if (replicas > 1) r.team = std::make_unique<StepTeam>(std::clamp(cfg.threads, 1, replicas) - 1);
  init_params(*r.model, cfg.init, cfg.model.activation, init_rng);
  // Every rank starts from rank 0's weights (the same seed gives the same ones; this makes sure).
  if (r.world > 1) {
    dist::broadcast(r.model->values(), r.model->num_values(), 0);
    dist::broadcast(r.model->buffer_values(), r.model->num_buffer_values(), 0);
  }
  for (Replica& p : r.reps) p.model->set_bf16_training(cfg.bf16);
  r.opt = std::make_unique<Optimizer>(cfg.optim, r.model->num_values());
  if (cfg.ema > 0) {  // the averages start at the initial weights and statistics
    r.ema_values.assign(r.model->values(), r.model->values() + r.model->num_values());
    r.ema_buffers.assign(r.model->buffer_values(), r.model->buffer_values() + r.model->num_buffer_values());
  }
  r.weights = static_cast<int64_t>(r.model->num_values());
  r.classes = r.data.classes;

  const int64_t pixels = r.data.train.pixels();
  r.per_epoch = (r.n_train + r.bs - 1) / r.bs;
  r.total_steps = r.per_epoch * cfg.epochs;
  r.order = r.split.train;
  for (Replica& p : r.reps) {  // a replica's slice is at most a batch's share, rounded up
    const int64_t most = (r.bs + replicas - 1) / replicas;
    p.x.resize(most * pixels);
    p.dlogits.resize(most * cfg.model.classes);
    p.y.resize(most);
    p.scratch.resize(pixels);
    if (!cfg.teacher.empty()) p.teacher.resize(most * cfg.model.classes);
  }
  if (!cfg.teacher.empty()) {
    cfg.teacher = teacher_path(cfg);  // what config.toml keeps (a resumed run's is so already)
    load_teacher(r);
  }
}

nlohmann::json summary_head(const Run& r) {
  nlohmann::json head = {{"version", tailor_version()}, {"model", spec_to_json(r.cfg.model)}, {"weights", r.weights},
                         {"seed", r.cfg.seed}, {"threads", r.cfg.threads}};
  if (!r.cfg.teacher.empty()) head["teacher"] = r.cfg.teacher;
  return head;
}

void start_fresh(Run& r) {
  if (!r.writes()) return;
  const std::string extra = fmt::format(
      "[run]\nversion = \"{}\"\nthreads = {}\nworld_size = {}\nweights = {}\nwidths = \"{}\"\ntrain_images = {}\n"
      "val_images = {}\ntest_images = {}\nimage = \"{}x{}\"\nnorm_mean = {}\nnorm_std = {}\n",
      tailor_version(), r.cfg.threads, r.world, r.weights, r.cfg.model.widths_str(), r.split.train.size(),
      r.split.val.size(), r.data.test.size(), r.data.train.channels, image_size_name(r.data.train.rows, r.data.train.cols),
      toml_floats(r.norm.mean.data(), r.norm.channels), toml_floats(r.norm.std.data(), r.norm.channels));
  write_file_atomic(r.dir + "/config.toml", config_to_toml(r.cfg, extra));
  // What an earlier run left in this directory no longer describes it (and a finished-looking
  // summary.json would make `--resume` report this run as done).
  std::error_code ec;
  for (const char* f : {kResumeStateFile, "summary.json", "model.ckpt"}) std::filesystem::remove(r.dir + "/" + f, ec);
  write_file_atomic(r.dir + "/metrics.csv", r.st.metrics);  // the header at once, rows as epochs finish
}

// The resume state (train/run_state.hpp), written atomically after every epoch (after
// metrics.csv): the run's state and the moment's weights and streams.
void save_state(const Run& r) {
  LiveState live;
  live.now = r.snapshot();
  live.shuffle_rng = r.shuffle_rng.state();
  for (const Replica& p : r.reps) {
    for (Rng* g : p.model->random_streams()) live.dropout_rngs.push_back(g->state());
    live.augment_rngs.push_back(p.augment_rng.state());
  }
  RunState st = r.st;
  st.elapsed_seconds += seconds_since(r.wall_start);
  write_resume_state(r.state_path(), st, live);
}

// Brings a freshly set-up run to where its state file says it stopped; refuses a state that does
// not fit the run (another model, a damaged file) with one line, before changing anything.
void resume(Run& r) {
  const std::string path = r.state_path();
  std::vector<Rng*> dropout;
  for (const Replica& p : r.reps)
    for (Rng* g : p.model->random_streams()) dropout.push_back(g);
  ResumeState s = read_resume_state(path, {r.model->num_values(), r.model->num_buffer_values(), r.opt->state().size(),
                                           dropout.size(), r.reps.size(), r.cfg.epochs, r.cfg.ema > 0});
  // The shuffles of the finished epochs, replayed: the order and the stream, checked.
  for (int64_t e = 0; e < s.run.epoch; ++e) r.shuffle();
  if (r.shuffle_rng.state() != s.live.shuffle_rng)
    throw Error("resume state " + path + " cannot be used: its shuffle stream does not follow from the run's seed");
  Snapshot& now = s.live.now;
  std::copy(now.values.begin(), now.values.end(), r.model->values());
  std::copy(now.stats.begin(), now.stats.end(), r.model->buffer_values());
  r.ema_values = std::move(now.ema_values);
  r.ema_buffers = std::move(now.ema_buffers);
  r.opt->restore(now.optim, now.steps);
  for (size_t k = 0; k < r.reps.size(); ++k) r.reps[k].augment_rng = Rng(s.live.augment_rngs[k]);
  for (size_t i = 0; i < dropout.size(); ++i) *dropout[i] = Rng(s.live.dropout_rngs[i]);
  r.st = std::move(s.run);
  // metrics.csv as the state has it (a kill between the two writes left it one row ahead).
  write_file_atomic(r.dir + "/metrics.csv", r.st.metrics);
}

// curves.png after an epoch. Drawing costs 30-80 ms (PLplot and cairo), as much as a whole epoch
// of a small FCN, so between epochs it is redrawn only once ten times its own cost has passed
// since the last drawing (at most 10% of the run); the last epoch's figure is always drawn.
void draw_curves(Run& r, bool last) {
  if (!r.writes()) return;
  if (!last && seconds_since(r.curves_drawn) < 10 * r.curves_cost) return;
  const auto t0 = Clock::now();
  write_run_curves(r.dir, run_title(r.cfg));
  r.curves_drawn = Clock::now();
  r.curves_cost = seconds_since(t0);
}

// Forward, loss and backward of the batch's images [lo, lo + mr) on one replica; the loss is the
// mean over the whole batch of m images, so the replicas' (or ranks') gradients sum to the batch's.
void slice_step(Run& r, Replica& p, int64_t lo, int64_t mr, int64_t m, const float* background) {
  const TrainConfig& cfg = r.cfg;
  const Dataset& d = r.data.train;
  p.st = {};
  if (mr == 0) {  // a last batch smaller than the replicas or ranks: this one adds nothing
    std::fill(p.model->grads(), p.model->grads() + p.model->num_values(), 0.0f);
    return;
  }
  gather_batch(d, r.order.data() + lo, mr, r.norm, p.x.data(), p.y.data());
  augment_batch(p.x.data(), mr, d.channels, d.rows, d.cols, cfg.augment, background, p.augment_rng, p.scratch.data());
  ConstView logits = p.model->forward(ConstView(p.x.data(), Shape{mr, d.pixels()}), Mode::train);
  View dl{p.dlogits.data(), Shape{mr, cfg.model.classes}};
  if (r.teacher_logits.empty()) {
    p.st = softmax_cross_entropy(logits, p.y.data(), dl, cfg.label_smoothing);
  } else {
    const int64_t k = cfg.model.classes;
    for (int64_t i = 0; i < mr; ++i)
      std::copy_n(r.teacher_logits.data() + static_cast<size_t>(r.order[lo + i]) * k, k, p.teacher.data() + i * k);
    p.st = distillation_loss(logits, p.y.data(), p.teacher.data(), dl, cfg.label_smoothing, cfg.distill_weight,
                             cfg.distill_temperature);
  }
  if (mr != m) {
    const float share = static_cast<float>(mr) / static_cast<float>(m);
    for (int64_t i = 0; i < mr * cfg.model.classes; ++i) p.dlogits[static_cast<size_t>(i)] *= share;
  }
  p.model->backward(dl);
}

// A training step is a step strategy, which leaves the batch's summed gradient in the model's
// gradient arena and returns the batch's loss statistics, then the one optimizer update
// (apply_update). The strategies:
//   rank_gradients     the whole batch through the layers on all threads; under mpirun each rank
//                      its slice, the gradients summed over the ranks (allreduce);
//   replica_gradients  one replica per thread on its slice of the batch (step_replicas), the
//                      replicas' gradients summed in replica order on the StepTeam.

// The arena in items of the StepTeam: 64 KiB of each array.
constexpr size_t kUpdateChunk = 16384;
int64_t update_chunks(size_t n) { return static_cast<int64_t>((n + kUpdateChunk - 1) / kUpdateChunk); }

LossStats rank_gradients(Run& r, int64_t start, int64_t m, const float* background) {
  // This rank's contiguous slice of the global batch (all of it in a world of one).
  const int64_t lo = start + m * r.rank / r.world, hi = start + m * (r.rank + 1) / r.world;
  slice_step(r, r.reps[0], lo, hi - lo, m, background);
  LossStats st = r.reps[0].st;
  if (r.world > 1) {
    dist::allreduce_sum(r.model->grads(), r.model->num_values());  // the flat gradient arena, once
    double sums[2] = {st.loss_sum, static_cast<double>(st.correct)};
    dist::allreduce_sum(sums, 2);
    st.loss_sum = sums[0];
    st.correct = static_cast<int64_t>(sums[1]);
  }
  return st;
}

// The replicas, one item each, copy the weights and run forward, loss and backward on their
// slices of the batch; then, in chunks of the arena, their gradients are summed in replica order
// into the model's. Every item runs on one thread (oneDNN and tailor's kernels single-threaded),
// so the result does not depend on which thread took it, nor on the number of threads.
LossStats replica_gradients(Run& r, int64_t start, int64_t m, const float* background) {
  const int n_reps = static_cast<int>(r.reps.size());
  const size_t n = r.model->num_values();
  const float* values = r.model->values();
  float* grads = r.model->grads();
  // This thread's share runs single-threaded too (and makes its primitives so), until the step ends.
  const kernels::ThreadScope one_thread(1);
  auto replica = [&](int k) {
    Replica& p = r.reps[static_cast<size_t>(k)];
    try {
      if (k > 0) std::copy(values, values + n, p.model->values());
      const int64_t lo = start + m * k / n_reps, hi = start + m * (k + 1) / n_reps;
      slice_step(r, p, lo, hi - lo, m, background);
    } catch (...) {
      p.error = std::current_exception();
    }
  };
  r.team->run(n_reps, replica);
  for (Replica& p : r.reps)
    if (p.error) std::rethrow_exception(std::exchange(p.error, nullptr));
  LossStats sum;
  for (const Replica& q : r.reps) {
    sum.loss_sum += q.st.loss_sum;
    sum.correct += q.st.correct;
  }
  auto add = [&](int c) {
    const size_t lo = static_cast<size_t>(c) * kUpdateChunk, hi = std::min(n, lo + kUpdateChunk);
    for (int q = 1; q < n_reps; ++q) {
      const float* g = r.reps[static_cast<size_t>(q)].model->grads();
      for (size_t i = lo; i < hi; ++i) grads[i] += g[i];
    }
  };
  if (std::isfinite(sum.loss_sum)) r.team->run(static_cast<int>(update_chunks(n)), add);
  return sum;
}

// The one optimizer update of a step, and the moving average of the weights (--ema): over the
// arena's chunks on the StepTeam when the run has one, else over the whole arena on this thread
// (the same arithmetic for every weight either way).
void apply_update(Run& r, float lr) {
  const size_t n = r.model->num_values();
  float* values = r.model->values();
  const float* grads = r.model->grads();
  r.opt->begin_step();
  const float decay = r.ema_values.empty() ? 0.0f : r.ema_decay();  // of the step now counted
  const auto update = [&](size_t lo, size_t hi) {
    r.opt->update(values, grads, lr, lo, hi);
    if (decay > 0) kernels::ema_update(decay, values, r.ema_values.data(), lo, hi);
  };
  if (r.team) {
    const kernels::ThreadScope one_thread(1);
    auto chunk = [&](int c) {
      const size_t lo = static_cast<size_t>(c) * kUpdateChunk;
      update(lo, std::min(n, lo + kUpdateChunk));
    };
    r.team->run(static_cast<int>(update_chunks(n)), chunk);
  } else {
    update(0, n);
  }
}

// One epoch: the training pass, evaluation, the metrics row, early stopping, the resume state.
void run_epoch(Run& r, Progress& progress) {
  TrainConfig& cfg = r.cfg;
  const int64_t epoch = r.st.epoch + 1;
  std::array<float, kMaxChannels> background{};  // a black pixel, normalised
  for (int c = 0; c < r.norm.channels; ++c) background[c] = -r.norm.mean[c] / r.norm.std[c];
  // The replicas' batch-norm statistics start every epoch from the model's (see below).
  for (size_t k = 1; k < r.reps.size(); ++k)
    std::copy(r.model->buffer_values(), r.model->buffer_values() + r.model->num_buffer_values(), r.reps[k].model->buffer_values());
  r.shuffle();
  const auto t0 = Clock::now();
  double loss_sum = 0, lr = cfg.optim.lr;
  int64_t correct = 0, seen = 0;
  for (int64_t b = 0; b < r.per_epoch; ++b) {
    if (r.world == 1) r.check_stop();
    const int64_t start = b * r.bs, m = std::min(r.bs, r.n_train - start);
    lr = lr_at(cfg.schedule, cfg.optim.lr, r.opt->steps(), r.total_steps, r.per_epoch);
    const LossStats st = r.reps.size() > 1 ? replica_gradients(r, start, m, background.data())
                                           : rank_gradients(r, start, m, background.data());
    if (!std::isfinite(st.loss_sum)) {
      if (r.writes()) {
        nlohmann::json summary = summary_head(r);
        summary["stop_reason"] = "diverged";
        summary["epochs_run"] = epoch - 1;
        summary["train_seconds"] = r.st.train_seconds;
        write_summary(r.dir, summary);
        std::error_code ec;
        std::filesystem::remove(r.state_path(), ec);  // nothing to resume: the run is over
      }
      throw Error(fmt::format("training diverged: the loss became {} in epoch {}, batch {} (try a lower --lr); "
                              "{} keeps the {} finished epochs",
                              st.loss_sum, epoch, b + 1, r.dir + "/metrics.csv", epoch - 1));
    }
    apply_update(r, static_cast<float>(lr));
    // The statistics' average follows the first replica's (each estimates the same statistics;
    // the replicas' are averaged only at the epoch's end), as rank 0's under mpirun.
    if (!r.ema_buffers.empty()) kernels::ema_update(r.ema_decay(), r.model->buffer_values(), r.ema_buffers.data(), 0, r.ema_buffers.size());
    loss_sum += st.loss_sum;
    correct += st.correct;
    seen += m;
    progress.batch(epoch, b + 1, loss_sum / seen, 100.0 * correct / seen);
  }
  const double epoch_seconds = seconds_since(t0);
  r.st.train_seconds += epoch_seconds;
  r.st.epoch_seconds.push_back(epoch_seconds);
  if (r.model->num_buffer_values() > 0 && (r.world > 1 || r.reps.size() > 1)) {
    // Batch-norm statistics were kept per rank or replica, on its slices; their mean evaluates.
    float* state = r.model->buffer_values();
    for (size_t k = 1; k < r.reps.size(); ++k) {
      const float* other = r.reps[k].model->buffer_values();
      for (size_t i = 0; i < r.model->num_buffer_values(); ++i) state[i] += other[i];
    }
    if (r.world > 1) dist::allreduce_sum(state, r.model->num_buffer_values());
    const float inv = 1.0f / static_cast<float>(r.world * static_cast<int>(r.reps.size()));
    for (size_t i = 0; i < r.model->num_buffer_values(); ++i) state[i] *= inv;
  }
  r.evaluate_both();
  const double train_loss = loss_sum / seen, train_acc = 100.0 * correct / seen, ips = seen / epoch_seconds;
  // Without a validation set (--val 0) its two columns stay empty rather than read as zero.
  const std::string val_cols = r.st.val.count ? fmt::format("{:.6f},{:.4f}", r.st.val.loss, r.st.val.acc) : ",";
  r.st.metrics += fmt::format("{},{:.6f},{:.4f},{},{:.4f},{:.6g},{:.3f},{:.3f},{:.0f}\n", epoch, train_loss, train_acc,
                           val_cols, r.st.test.acc, lr, epoch_seconds, r.st.elapsed_seconds + seconds_since(r.wall_start),
                           ips);
  progress.epoch(fmt::format("epoch {:>3}/{}  loss {:.4f}  train {:.2f}%  val {:.2f}% (loss {:.4f})  test {:.2f}%  "
                             "{:.2f} s  {:.0f} img/s",
                             epoch, cfg.epochs, train_loss, train_acc, r.st.val.acc, r.st.val.loss, r.st.test.acc,
                             epoch_seconds, ips));
  r.st.epoch = epoch;
  if (cfg.patience > 0) {
    if (r.st.val.loss < r.st.best_val_loss) {
      r.st.best_val_loss = r.st.val.loss;
      r.st.best_epoch = epoch;
      r.st.since_best = 0;
      r.st.best = r.snapshot();
    } else if (++r.st.since_best >= cfg.patience) {
      r.st.stop_reason = "patience";
    }
  }
  if (r.st.stop_reason.empty() && cfg.stop_at > 0 && (cfg.stop_on == StopOn::val ? r.st.val.acc : r.st.test.acc) >= cfg.stop_at)
    r.st.stop_reason = "target_accuracy";
  // metrics.csv first, then the state: a kill between them leaves metrics.csv a row ahead,
  // which resume() rewrites from the state. A data-parallel run keeps no state (its ranks'
  // streams would all have to be saved); rank 0 writes the rest.
  if (!r.writes()) return;
  write_file_atomic(r.dir + "/metrics.csv", r.st.metrics);
  draw_curves(r, false);
  if (r.world == 1) save_state(r);
  if (r.control->on_epoch) {
    const double nan = std::nan("");
    EpochReport e{epoch, cfg.epochs, train_loss, train_acc, r.st.val.count ? r.st.val.loss : nan, r.st.val.count ? r.st.val.acc : nan,
                  r.st.test.acc, lr, epoch_seconds, r.st.elapsed_seconds + seconds_since(r.wall_start), ips};
    if (!r.control->on_epoch(e) && r.st.stop_reason.empty()) r.st.stop_reason = "callback";
  }
}

// The result: with patience the best epoch's weights, statistics and optimizer state, evaluated
// afresh; model.ckpt, then summary.json, then the resume state is removed.
TrainOutcome finish(Run& r) {
  TrainConfig& cfg = r.cfg;
  TrainOutcome out;
  out.weights = r.weights;
  out.train_images = r.n_train;
  out.epochs_run = r.st.epoch;
  out.epoch_seconds = r.st.epoch_seconds;
  out.stop_reason = r.st.stop_reason.empty() ? "epochs" : r.st.stop_reason;
  int64_t steps = r.opt->steps();
  std::vector<float> optim_state = r.opt->state();
  if (cfg.patience > 0 && !r.st.best.empty() && r.st.best_epoch != r.st.epoch) {
    std::copy(r.st.best.values.begin(), r.st.best.values.end(), r.model->values());
    std::copy(r.st.best.stats.begin(), r.st.best.stats.end(), r.model->buffer_values());
    r.ema_values = r.st.best.ema_values;
    r.ema_buffers = r.st.best.ema_buffers;
    optim_state = r.st.best.optim;
    steps = r.st.best.steps;
    r.evaluate_both();
  }
  out.val_acc = r.st.val.acc;
  out.test_acc = r.st.test.acc;
  out.test_loss = r.st.test.loss;
  out.train_seconds = r.st.train_seconds;
  if (!r.writes()) return out;
  ModelMeta meta;
  meta.spec = cfg.model;
  meta.norm = r.norm;
  meta.classes = r.classes;
  meta.optimizer = optimizer_name(cfg.optim.kind);
  meta.steps = steps;
  meta.epochs_run = r.st.epoch;
  meta.seed = cfg.seed;
  meta.ema = cfg.ema;
  // Absolute, so eval, inspect and serve find the data from any working directory.
  meta.data_dir = cfg.data_dir.empty() ? std::string() : std::filesystem::absolute(cfg.data_dir).lexically_normal().string();
  // An image folder's pictures were resized whole; predict and serve convert alike.
  meta.pictures = is_image_folder(cfg.data_dir) ? PictureFit::whole : PictureFit::object;
  meta.eval_batch = cfg.eval_batch;
  meta.threads = cfg.threads;
  meta.tta_flip = cfg.tta_flip;
  Checkpoint ck;
  ck.meta = model_meta_json(meta);
  // With --ema the averaged weights and statistics are the model (what was evaluated).
  r.swap_ema();
  ck.weights.assign(r.model->values(), r.model->values() + r.model->num_values());
  ck.stats.assign(r.model->buffer_values(), r.model->buffer_values() + r.model->num_buffer_values());
  r.swap_ema();
  ck.optim_state = std::move(optim_state);
  save_checkpoint(r.dir + "/model.ckpt", ck);

  nlohmann::json summary = summary_head(r);
  summary["val_acc"] = r.st.val.acc;
  summary["val_loss"] = r.st.val.loss;
  summary["test_acc"] = r.st.test.acc;
  summary["test_loss"] = r.st.test.loss;
  summary["train_seconds"] = r.st.train_seconds;
  summary["wall_seconds"] = r.st.elapsed_seconds + seconds_since(r.wall_start);
  summary["peak_rss_mb"] = peak_rss_mb();
  summary["epochs_run"] = r.st.epoch;
  summary["best_epoch"] = cfg.patience > 0 ? r.st.best_epoch : r.st.epoch;
  summary["stop_reason"] = out.stop_reason;
  write_summary(r.dir, summary);
  std::error_code ec;
  std::filesystem::remove(r.state_path(), ec);
  return out;
}

TrainOutcome run_to_end(Run& r) {
  if (!r.writes()) r.cfg.progress = "none";  // rank 0 reports for all
  if (r.cfg.progress != "none")
    std::printf("tailor %s (%s): %s %s, %lld weights, %zu train / %zu val / %zu test images, %d threads%s%s%s\n",
                tailor_version().c_str(), kernels::isa_summary().c_str(), family_name(r.cfg.model.family).c_str(),
                r.cfg.model.widths_str().c_str(),
                static_cast<long long>(r.weights), r.split.train.size(), r.split.val.size(), r.data.test.size(),
                r.cfg.threads, r.world > 1 ? fmt::format(" per rank, {} ranks (data-parallel)", r.world).c_str() : "",
                r.reps.size() > 1 ? fmt::format(" (data-parallel: {} replicas of {} images a batch)", r.reps.size(),
                                                r.bs / static_cast<int64_t>(r.reps.size())).c_str()
                                  : "",
                r.st.epoch ? fmt::format("; resumed after epoch {}", r.st.epoch).c_str() : "");
  Progress progress(r.cfg.progress, r.cfg.epochs, r.per_epoch);
  while (r.st.epoch < r.cfg.epochs && r.st.stop_reason.empty()) run_epoch(r, progress);
  if (r.st.epoch > 0) draw_curves(r, true);
  return finish(r);
}

}  // namespace

int step_replicas(int threads, int64_t batch, bool data_parallel) {
  if (!data_parallel || threads < 2 || batch < kMinReplicaSlice * threads) return 1;
  return threads;
}

std::string run_title(const TrainConfig& cfg) {
  return family_name(cfg.model.family) + " " + cfg.model.widths_str() + ", seed " + std::to_string(cfg.seed);
}

TrainOutcome train(TrainConfig cfg, const TrainControl& control) {
  Run r;
  r.cfg = std::move(cfg);
  r.control = &control;
  setup(r);
  start_fresh(r);
  return run_to_end(r);
}

TrainOutcome resume_training(TrainConfig cfg, const TrainControl& control) {
  Run r;
  r.cfg = std::move(cfg);
  r.control = &control;
  r.resuming = true;
  setup(r);
  if (std::filesystem::exists(r.state_path())) {
    resume(r);
  } else {  // killed before its first epoch ended: that run's start is this one's
    start_fresh(r);
  }
  return run_to_end(r);
}

}  // namespace tailor
