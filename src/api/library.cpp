// The library's face (include/tailor/tailor.hpp) over the engine: options through train's own
// parser (cli/commands.hpp), pictures in memory as the trainer's Dataset, runs as checkpoints.
#include "tailor/tailor.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <sstream>

#include "cli/commands.hpp"
#include "export/onnx_export.hpp"
#include "inspect/analysis.hpp"
#include "kernels/kernels.hpp"
#include "search/search.hpp"
#include "train/checkpoint.hpp"
#include "train/evaluate.hpp"
#include "train/trainer.hpp"
#include "util/atomic_file.hpp"

namespace tailor {

std::string version() { return tailor_version(); }

Data Data::from_dir(std::string dir) {
  Data d;
  d.dir = std::move(dir);
  return d;
}

Data Data::from_memory(Images train, Images test, std::vector<std::string> classes) {
  Data d;
  d.train = std::move(train);
  d.test = std::move(test);
  d.classes = std::move(classes);
  return d;
}

namespace {

Images to_images(const Dataset& d) {
  Images im;
  im.count = static_cast<int64_t>(d.size());
  im.channels = d.channels;
  im.rows = d.rows;
  im.cols = d.cols;
  im.pixels = d.images;
  im.labels = d.labels;
  return im;
}

// Checks one set of pictures in memory (`what`: "train", "test") and makes it a Dataset.
Dataset to_dataset(const Images& im, const std::string& what, int classes) {
  if (im.count <= 0) throw Error(what + ": no pictures");
  if (im.channels != 1 && im.channels != 3)
    throw Error(what + ": " + std::to_string(im.channels) + " channels; pictures are grey (1) or colour (3)");
  if (im.rows < 1 || im.rows > 1024 || im.cols < 1 || im.cols > 1024)
    throw Error(what + ": pictures of " + std::to_string(im.rows) + "x" + std::to_string(im.cols) +
                "; each side must lie in 1..1024");
  if (static_cast<int64_t>(im.pixels.size()) != im.count * im.pixels_per_image())
    throw Error(what + ": " + std::to_string(im.pixels.size()) + " pixel bytes for " + std::to_string(im.count) +
                " pictures of " + std::to_string(im.pixels_per_image()) + " bytes");
  if (static_cast<int64_t>(im.labels.size()) != im.count)
    throw Error(what + ": " + std::to_string(im.labels.size()) + " labels for " + std::to_string(im.count) + " pictures");
  for (uint8_t l : im.labels)
    if (l >= classes)
      throw Error(what + ": label " + std::to_string(l) + " is not below the " + std::to_string(classes) + " classes");
  Dataset d;
  d.rows = im.rows;
  d.cols = im.cols;
  d.channels = im.channels;
  d.num_classes = classes;
  d.images = im.pixels;
  d.labels = im.labels;
  return d;
}

// The pictures in memory as the trainer takes them: classes named or numbered, every class with
// training pictures (as a directory's must have), the test set in the training set's shape.
TrainTestData to_train_test(const Data& data) {
  int classes = static_cast<int>(data.classes.size());
  if (classes == 0) {
    int top = 0;
    for (uint8_t l : data.train.labels) top = std::max(top, static_cast<int>(l));
    classes = std::max(2, top + 1);
  }
  if (classes < 2) throw Error("classes: a classifier needs at least 2 classes");
  TrainTestData t;
  t.train = to_dataset(data.train, "train", classes);
  t.test = to_dataset(data.test, "test", classes);
  if (t.test.channels != t.train.channels || t.test.rows != t.train.rows || t.test.cols != t.train.cols)
    throw Error("test: its pictures are " + std::to_string(t.test.channels) + "x" + std::to_string(t.test.rows) + "x" +
                std::to_string(t.test.cols) + ", the training pictures " + std::to_string(t.train.channels) + "x" +
                std::to_string(t.train.rows) + "x" + std::to_string(t.train.cols));
  std::vector<int64_t> count(static_cast<size_t>(classes), 0);
  for (uint8_t l : t.train.labels) ++count[l];
  for (int k = 0; k < classes; ++k)
    if (count[static_cast<size_t>(k)] == 0)
      throw Error("train: class " + std::to_string(k) + " has no training pictures");
  t.classes = data.classes.empty() ? numbered_class_names(classes) : data.classes;
  return t;
}

TrainControl control_of(const Hooks& hooks, const TrainTestData* data) {
  TrainControl c;
  c.stop = hooks.stop;
  c.poll = hooks.poll;
  c.data = data;
  if (hooks.on_epoch)
    c.on_epoch = [f = hooks.on_epoch](const EpochReport& r) {
      return f(Epoch{r.epoch, r.epochs, r.train_loss, r.train_acc, r.val_loss, r.val_acc, r.test_acc, r.lr,
                     r.epoch_seconds, r.elapsed_seconds, r.images_per_second});
    };
  return c;
}

bool has_option(const Options& options, const std::string& name) {
  return std::any_of(options.begin(), options.end(), [&](const auto& o) { return o.first == name; });
}

double csv_number(const std::string& cell) { return cell.empty() ? std::nan("") : std::stod(cell); }

}  // namespace

Data read_data(const std::string& dir, const std::string& image_size, const std::string& color) {
  DataOptions opt;
  parse_image_size(image_size, &opt.rows, &opt.cols);
  opt.color = parse_data_color(color);
  TrainTestData t = load_train_test(dir, opt);
  Data d;
  d.train = to_images(t.train);
  d.test = to_images(t.test);
  d.classes = t.classes;
  d.source = dir;
  return d;
}

std::vector<TrainOption> train_options() {
  std::vector<TrainOption> out;
  for (const cli::TrainOptionInfo& o : cli::train_options())
    out.push_back({o.name, o.help, o.default_value, o.flag});
  return out;
}

struct Run::Impl {
  std::string dir;
  LoadedModel m;
  std::mutex mutex;  // the model's buffers serve one call at a time
};

Run Run::load(const std::string& dir) {
  Run r;
  r.impl_ = std::make_shared<Impl>();
  const std::string ckpt = checkpoint_path(dir);
  r.impl_->dir = std::filesystem::path(ckpt).parent_path().string();
  if (r.impl_->dir.empty()) r.impl_->dir = ".";
  r.impl_->m = load_model(ckpt);
  return r;
}

const std::string& Run::dir() const { return impl_->dir; }
const std::vector<std::string>& Run::classes() const { return impl_->m.classes; }
int Run::channels() const { return static_cast<int>(impl_->m.spec.in_channels); }
int Run::rows() const { return static_cast<int>(impl_->m.spec.height); }
int Run::cols() const { return static_cast<int>(impl_->m.spec.width); }
int64_t Run::weights() const { return static_cast<int64_t>(impl_->m.model->num_values()); }

std::string Run::summary_json() const {
  const std::string path = impl_->dir + "/summary.json";
  return std::filesystem::exists(path) ? read_file(path) : std::string();
}

std::vector<Epoch> Run::metrics() const {
  const std::string path = impl_->dir + "/metrics.csv";
  std::vector<Epoch> out;
  if (!std::filesystem::exists(path)) return out;
  std::istringstream in(read_file(path));
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> c;
    std::stringstream row(line);
    for (std::string cell; std::getline(row, cell, ',');) c.push_back(cell);
    if (line.back() == ',') c.emplace_back();
    if (c.size() < 10) throw Error(path + ": a row of " + std::to_string(c.size()) + " columns, not 10");
    Epoch e;
    e.epoch = std::stoll(c[0]);
    e.train_loss = csv_number(c[1]);
    e.train_acc = csv_number(c[2]);
    e.val_loss = csv_number(c[3]);
    e.val_acc = csv_number(c[4]);
    e.test_acc = csv_number(c[5]);
    e.lr = csv_number(c[6]);
    e.epoch_seconds = csv_number(c[7]);
    e.elapsed_seconds = csv_number(c[8]);
    e.images_per_second = csv_number(c[9]);
    out.push_back(e);
  }
  for (Epoch& e : out) e.epochs = static_cast<int64_t>(out.size());
  return out;
}

namespace {
void check_shape(const LoadedModel& m, const Dataset& d) {
  if (d.channels != m.spec.in_channels || d.rows != m.spec.height || d.cols != m.spec.width)
    throw Error("the model takes pictures of " + std::to_string(m.spec.in_channels) + "x" + std::to_string(m.spec.height) +
                "x" + std::to_string(m.spec.width) + " (channels x rows x cols), not " + std::to_string(d.channels) +
                "x" + std::to_string(d.rows) + "x" + std::to_string(d.cols));
}

// Logits (n, classes) of pictures in the model's shape, as the run evaluated: its batch, its
// threads, its flips.
std::vector<float> run_logits(Run::Impl& r, const Dataset& d) {
  LoadedModel& m = r.m;
  check_shape(m, d);
  const kernels::ThreadScope threads(m.threads);
  std::vector<float> logits;
  evaluate(*m.model, d, nullptr, m.norm, m.eval_batch, &logits, m.tta_flip);
  return logits;
}

Dataset unlabelled(const Run& run, const uint8_t* pixels, int64_t count) {
  if (count < 0 || (count > 0 && pixels == nullptr)) throw Error("predict: no pictures");
  Dataset d;
  d.channels = run.channels();
  d.rows = run.rows();
  d.cols = run.cols();
  d.num_classes = static_cast<int>(run.classes().size());
  d.images.assign(pixels, pixels + count * d.pixels());
  d.labels.assign(static_cast<size_t>(count), 0);
  return d;
}
}  // namespace

std::vector<float> Run::predict_proba(const uint8_t* pixels, int64_t count) const {
  const Dataset d = unlabelled(*this, pixels, count);
  std::lock_guard<std::mutex> hold(impl_->mutex);
  if (count == 0) return {};
  std::vector<float> p = run_logits(*impl_, d);
  const int k = d.num_classes;
  for (int64_t i = 0; i < count; ++i) {
    const std::vector<float> s = softmax(p.data() + i * k, k);
    std::copy(s.begin(), s.end(), p.begin() + i * k);
  }
  return p;
}

std::vector<int> Run::predict(const uint8_t* pixels, int64_t count) const {
  const Dataset d = unlabelled(*this, pixels, count);
  std::lock_guard<std::mutex> hold(impl_->mutex);
  if (count == 0) return {};
  const std::vector<float> z = run_logits(*impl_, d);
  const int k = d.num_classes;
  std::vector<int> out(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    out[static_cast<size_t>(i)] = static_cast<int>(std::max_element(z.data() + i * k, z.data() + (i + 1) * k) - (z.data() + i * k));
  return out;
}

Evaluation Run::evaluate(const Images& images) const {
  const Dataset d = to_dataset(images, "images", static_cast<int>(classes().size()));
  std::lock_guard<std::mutex> hold(impl_->mutex);
  LoadedModel& m = impl_->m;
  check_shape(m, d);
  const kernels::ThreadScope threads(m.threads);
  const EvalResult r = tailor::evaluate(*m.model, d, nullptr, m.norm, m.eval_batch, nullptr, m.tta_flip);
  return {r.acc, r.loss, r.count};
}

std::vector<float> Run::predict_picture(const std::string& encoded, const std::string& name) const {
  std::lock_guard<std::mutex> hold(impl_->mutex);
  LoadedModel& m = impl_->m;
  const kernels::ThreadScope one_thread(1);  // as tailor predict
  const std::vector<float> x = input_for_model(m, fit_for_model(m, decode_for_model(m, encoded, name)));
  return softmax(logits_for_model(m, x).data(), static_cast<int>(m.spec.classes));
}

void Run::export_onnx(const std::string& path, int opset) const {
  if (opset < kOnnxMinOpset || opset > kOnnxMaxOpset)
    throw Error("opset " + std::to_string(opset) + " is not one tailor writes (" + std::to_string(kOnnxMinOpset) + ".." +
                std::to_string(kOnnxMaxOpset) + ")");
  std::lock_guard<std::mutex> hold(impl_->mutex);
  OnnxExport options;
  options.opset = opset;
  write_file_atomic(path, onnx_model_bytes(impl_->m, options));
}

Run train(const Data& data, const Options& options, const Hooks& hooks) {
  Options all = options;
  if (!has_option(all, "progress")) all.emplace_back("progress", "none");  // a library prints nothing unasked
  const bool in_memory = data.dir.empty();
  if (!in_memory) {
    if (has_option(all, "data")) throw OptionError("data", false, "data: give the directory once, as the Data or as the option");
    all.emplace_back("data", data.dir);
  } else {
    for (const char* o : {"data", "image-size", "color"})
      if (has_option(all, o))
        throw OptionError(o, false, std::string(o) + " applies to pictures read from a directory, not to pictures in memory");
  }
  TrainConfig cfg = cli::train_config_from_options(all);
  TrainTestData memory;
  if (in_memory) {
    memory = to_train_test(data);
    cfg.data_dir = data.source;
  }
  const TrainControl control = control_of(hooks, in_memory ? &memory : nullptr);
  tailor::train(cfg, control);
  return Run::load(cfg.out_dir);
}

Run resume(const std::string& dir, const Data& data, const Hooks& hooks, int threads) {
  const std::string config = dir + "/config.toml";
  if (!std::filesystem::exists(config)) throw Error("resume " + dir + ": no config.toml there, so no run to continue");
  TrainConfig cfg = config_from_toml(read_file(config), config);
  cfg.out_dir = dir;
  cfg.progress = "none";
  if (threads > 0) cfg.threads = threads;
  const bool in_memory = data.dir.empty();
  TrainTestData memory;
  if (in_memory) {
    memory = to_train_test(data);
  } else {
    cfg.data_dir = data.dir;
  }
  if (!std::filesystem::exists(std::filesystem::path(dir) / kResumeStateFile) &&
      std::filesystem::exists(std::filesystem::path(dir) / "model.ckpt"))
    return Run::load(dir);  // finished: nothing to continue
  resume_training(cfg, control_of(hooks, in_memory ? &memory : nullptr));
  return Run::load(dir);
}

SearchSummary search(const std::string& space, const Options& flags, std::function<int()> poll) {
  Options f = flags;
  if (std::none_of(f.begin(), f.end(), [](const auto& kv) { return kv.first == "progress"; }))
    f.emplace_back("progress", "none");  // a library prints nothing unless asked
  cli::SearchSetup setup = cli::search_setup_from_flags(space, f);
  SearchSpace& s = setup.space;
  SearchOptions& o = setup.options;
  o.poll = std::move(poll);
  const SearchOutcome r = run_search(s, o, cli::train_config_from_options);
  SearchSummary out;
  out.out = s.out;
  out.complete = r.complete;
  out.timed_out = r.timed_out;
  out.stopped_by = r.stopped_by;
  out.trials = r.trials;
  out.finished = r.finished;
  out.pruned = r.pruned;
  out.failed = r.failed;
  out.epochs = r.epochs_run;
  out.text = r.summary;
  return out;
}

}  // namespace tailor
