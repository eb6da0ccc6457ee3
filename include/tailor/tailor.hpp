#pragma once
// tailor as a library: train a small FCN or CNN image classifier on pictures in a directory or
// in memory, follow it epoch by epoch, and use the run it leaves (predict, evaluate, export).
//
//   #include <tailor/tailor.hpp>
//   tailor::Data data = tailor::Data::from_dir("/usr/share/datasets/fashion-mnist");
//   tailor::Run run = tailor::train(data, {{"epochs", "5"}, {"out", "runs/lib"}});
//   std::vector<int> labels = run.predict(data.test);
//
// CMake: find_package(tailor) and link tailor::tailor. Every function throws tailor::Error (one
// line saying what is wrong and what to do), OptionError for an option, Interrupted for a
// training asked to stop. Trainings in several threads at once are independent: each gives the
// bits it gives alone. A Run may be used from one thread at a time (its calls take a lock).
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tailor/error.hpp"

namespace tailor {

// The library's version ("0.1.0"), the program's.
std::string version();

// Labelled pictures in memory: `count` images of channels x rows x cols bytes each, one after
// another, each image its planes in turn (grey: one; colour: red, green, blue), and one label
// byte per image (0 .. classes - 1). Channels 1 or 3.
struct Images {
  int64_t count = 0;
  int channels = 1, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;
  std::vector<uint8_t> labels;
  int64_t pixels_per_image() const { return static_cast<int64_t>(channels) * rows * cols; }
};

// What a training learns from: a directory as `tailor train --data` takes it (IDX files, or an
// image folder of train/ and test/), or training and test pictures in memory.
struct Data {
  std::string dir;          // a directory; or empty, and then:
  Images train, test;       // the pictures in memory,
  std::vector<std::string> classes;  // their class names in label order (empty: "0", "1", ...)
  // Where the pictures in memory were read from, if they were (read_data sets it): the run
  // records it as its data directory, so that `tailor eval` and `inspect` find the test set.
  std::string source;

  static Data from_dir(std::string dir);
  static Data from_memory(Images train, Images test, std::vector<std::string> classes = {});
};

// The pictures of a directory, read into memory as training would read them (`image_size`:
// "auto", "28" or "24x32"; `color`: "auto", "grey" or "rgb").
Data read_data(const std::string& dir, const std::string& image_size = "auto", const std::string& color = "auto");

// The options of `tailor train`, by their command-line names without dashes ("lr",
// "batch-size"), each with a value as the command line spells it ("0.003", "120,60"; a flag
// "true" or "false"). `out` names the run directory (default: runs/latest, as the program).
using Options = std::vector<std::pair<std::string, std::string>>;

// One option of `tailor train`: what train_options() lists (the same table the program reads).
struct TrainOption {
  std::string name, help, default_value;
  bool flag = false;  // on or off, no value
};
std::vector<TrainOption> train_options();

// One finished epoch, as the run's metrics.csv row says (val_loss and val_acc are NaN with val 0).
struct Epoch {
  int64_t epoch = 0, epochs = 0;  // this one, from 1; the run's epochs
  double train_loss = 0, train_acc = 0, val_loss = 0, val_acc = 0, test_acc = 0, lr = 0;
  double epoch_seconds = 0, elapsed_seconds = 0, images_per_second = 0;
};

// How a caller follows and steers a training; every member may be left empty.
struct Hooks {
  // After each epoch (its row and resume state written): return false to end the run there,
  // with model.ckpt and summary.json written (stop reason "callback"). An exception thrown here
  // stops the run resumable (as Interrupted) and is passed on.
  std::function<bool(const Epoch&)> on_epoch;
  // Read at every step boundary: non-zero stops the run there, resumable; Interrupted is thrown.
  // Set from on_epoch, it pauses the run after that epoch (the next step reads it before
  // computing anything): resume() continues it later, bit for bit.
  const std::atomic<int>* stop = nullptr;
  // Asked at step boundaries, at most every 50 ms: non-zero stops as `stop` does.
  std::function<int()> poll;
};

// Accuracy (percent) and mean cross-entropy of a run's model on labelled pictures.
struct Evaluation {
  double accuracy = 0, loss = 0;
  int64_t count = 0;
};

// A finished run: its directory (config.toml, metrics.csv, summary.json, model.ckpt) and its
// model, loaded. Copies share the model.
class Run {
 public:
  static Run load(const std::string& dir);  // a run directory or its model.ckpt

  const std::string& dir() const;
  std::vector<Epoch> metrics() const;        // metrics.csv, one entry per epoch run (`epochs`: their count)
  std::string summary_json() const;          // summary.json's text ("" when there is none)
  const std::vector<std::string>& classes() const;
  int channels() const;                      // the pictures the model takes
  int rows() const;
  int cols() const;
  int64_t weights() const;

  // Class probabilities (count x classes, row by row) and the most probable class of each
  // picture of `pixels` (count images as Images::pixels lays them out, in the model's size and
  // colour), evaluated as the run evaluated (its batch, threads and test-time flips).
  std::vector<float> predict_proba(const uint8_t* pixels, int64_t count) const;
  std::vector<int> predict(const uint8_t* pixels, int64_t count) const;
  std::vector<int> predict(const Images& images) const { return predict(images.pixels.data(), images.count); }
  Evaluation evaluate(const Images& images) const;
  // Class probabilities of a picture file's bytes (PNG, JPEG or PGM, any size and colour),
  // converted as `tailor predict` converts it (and as the run's own pictures were made).
  std::vector<float> predict_picture(const std::string& encoded, const std::string& name = "picture") const;
  // The model as an ONNX file (`tailor export`'s graph), written atomically.
  void export_onnx(const std::string& path, int opset = 13) const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// Trains one model as `tailor train` with these options would, on `data`, and returns its run.
// With the same options and seed, the pictures in memory give the bits the same pictures on disk
// give (model.ckpt, metrics.csv), whatever else runs in the process.
Run train(const Data& data, const Options& options = {}, const Hooks& hooks = {});
// Continues the run in `dir` from its last finished epoch (after an Interrupted), with its saved
// settings; `data` as it was trained on (for a run on pictures in memory, the same pictures).
// `threads` 0: the run's own (the bits of a run never stopped).
Run resume(const std::string& dir, const Data& data, const Hooks& hooks = {}, int threads = 0);

// A search of the space file `space` (`tailor search`; docs/search.md), with the command's flags
// by name without dashes: out, jobs, threads-per-job, time ("30m"), trials, seed, schedule,
// sampler, data, progress. Run again with the same space and out, it continues where it stopped.
struct SearchSummary {
  std::string out;  // the search directory: trials.csv, pareto.csv, best.toml, report.html
  bool complete = false;   // every trial sampled and nothing left to promote
  bool timed_out = false;  // `time` ran out
  int stopped_by = 0;      // non-zero: `poll` stopped it (the outputs are written)
  int64_t trials = 0, finished = 0, pruned = 0, failed = 0, epochs = 0;
  std::string text;  // what `tailor search` prints at the end: the Pareto set and the files
};
// `poll` is asked every 200 ms from the calling thread: a first non-zero answer lets the trials
// under way finish their epoch and ends the search there, a second stops them at their next step.
SearchSummary search(const std::string& space, const Options& flags = {}, std::function<int()> poll = {});

}  // namespace tailor
