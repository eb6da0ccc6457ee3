#include "train/checkpoint.hpp"

#include <cmath>
#include <cstring>
#include <filesystem>

#include <zlib.h>

#include "train/trainer.hpp"
#include "util/atomic_file.hpp"
#include "data/augment.hpp"
#include "util/error.hpp"
#include "util/memory.hpp"

namespace tailor {

namespace {

constexpr char kMagic[8] = {'T', 'A', 'I', 'L', 'O', 'R', 'C', 'K'};

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

void put_floats(std::string& out, const std::vector<float>& v) {
  put<uint64_t>(out, v.size());
  out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

class Reader {
 public:
  Reader(const std::string& path, const std::string& bytes, size_t end)
      : path_(path), bytes_(bytes), end_(end) {}
  template <typename T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string str(uint64_t n) {
    need(n);
    std::string s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::vector<float> floats() {
    const uint64_t n = get<uint64_t>();
    if (n > (end_ - pos_) / sizeof(float)) fail("truncated (array of " + std::to_string(n) + " floats does not fit)");
    std::vector<float> v(n);
    if (n > 0) std::memcpy(v.data(), bytes_.data() + pos_, n * sizeof(float));  // v.data() is null when n is 0
    pos_ += n * sizeof(float);
    return v;
  }
  size_t pos() const { return pos_; }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error("checkpoint " + path_ + " is corrupt: " + what);
  }

 private:
  void need(uint64_t n) {
    if (n > end_ - pos_) fail("truncated");
  }
  const std::string& path_;
  const std::string& bytes_;
  size_t end_, pos_ = 0;
};

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& ck) {
  std::string out(kMagic, sizeof(kMagic));
  put<uint32_t>(out, kCheckpointVersion);
  const std::string meta = ck.meta.dump();
  put<uint64_t>(out, meta.size());
  out += meta;
  put_floats(out, ck.weights);
  put_floats(out, ck.stats);
  put_floats(out, ck.optim_state);
  put<uint32_t>(out, static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(out.data()), out.size())));
  write_file_atomic(path, out);
}

Checkpoint read_checkpoint(const std::string& path) {
  const std::string bytes = read_file(path);
  if (bytes.size() < sizeof(kMagic) + 4 + 4 || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0)
    throw Error("checkpoint " + path + " is not a tailor checkpoint (bad magic or too short)");
  const size_t body = bytes.size() - 4;
  uint32_t stored;
  std::memcpy(&stored, bytes.data() + body, 4);
  const uint32_t actual = static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), body));
  Reader r(path, bytes, body);
  r.str(sizeof(kMagic));
  const uint32_t version = r.get<uint32_t>();
  if (version != kCheckpointVersion)
    throw Error("checkpoint " + path + " has version " + std::to_string(version) + ", this tailor reads " +
                std::to_string(kCheckpointVersion));
  if (stored != actual) r.fail("checksum mismatch (truncated or modified)");
  Checkpoint ck;
  const uint64_t meta_len = r.get<uint64_t>();
  try {
    ck.meta = nlohmann::json::parse(r.str(meta_len));
  } catch (const nlohmann::json::exception&) {
    r.fail("unreadable metadata");
  }
  ck.weights = r.floats();
  ck.stats = r.floats();
  ck.optim_state = r.floats();
  if (r.pos() != body) r.fail("unexpected bytes after the data");
  return ck;
}

nlohmann::json normalization_json(const Normalization& norm) {
  if (norm.channels == 1) return {{"mean", norm.mean[0]}, {"std", norm.std[0]}};
  return {{"mean", std::vector<float>(norm.mean.begin(), norm.mean.begin() + norm.channels)},
          {"std", std::vector<float>(norm.std.begin(), norm.std.begin() + norm.channels)}};
}

Normalization normalization_from_json(const nlohmann::json& j, int channels) {
  if (channels != 1 && channels != 3)
    throw Error("its model takes " + std::to_string(channels) + " input channels (1 or 3 are supported)");
  Normalization norm;
  norm.channels = channels;
  for (const char* key : {"mean", "std"}) {
    const nlohmann::json& v = j.at(key);
    std::vector<float> values = v.is_array() ? v.get<std::vector<float>>() : std::vector<float>{v.get<float>()};
    if (values.size() != static_cast<size_t>(channels))
      throw Error(std::string("its normalisation ") + key + " has " + std::to_string(values.size()) +
                  " value(s) for " + std::to_string(channels) + " channel(s)");
    for (int c = 0; c < channels; ++c) {
      const float x = values[static_cast<size_t>(c)];
      if (!std::isfinite(x) || (key[0] == 's' && !(x > 0)))
        throw Error(std::string("its normalisation ") + key + " " + std::to_string(x) + " is not usable");
      (key[0] == 'm' ? norm.mean : norm.std)[static_cast<size_t>(c)] = x;
    }
  }
  return norm;
}

nlohmann::json model_meta_json(const ModelMeta& m) {
  return {{"format", "tailor checkpoint"},
          {"version", tailor_version()},
          {"model", spec_to_json(m.spec)},
          {"normalization", normalization_json(m.norm)},
          {"classes", m.classes},
          {"optimizer", m.optimizer},
          {"steps", m.steps},
          {"epochs_run", m.epochs_run},
          {"data_dir", m.data_dir},
          {"pictures", picture_fit_name(m.pictures)},
          {"eval_batch", m.eval_batch},
          {"threads", m.threads},
          {"seed", m.seed},
          {"tta", m.tta_flip ? "flip" : "none"},
          {"ema", m.ema}};
}

ModelMeta model_meta_from_json(const nlohmann::json& j) {
  ModelMeta m;
  try {
    m.spec = spec_from_json(j.at("model"));
    m.classes = j.at("classes").get<std::vector<std::string>>();
    m.optimizer = j.value("optimizer", m.optimizer);
    m.steps = j.value("steps", m.steps);
    m.epochs_run = j.value("epochs_run", m.epochs_run);
    m.seed = j.value("seed", m.seed);
    m.ema = j.value("ema", m.ema);
    m.data_dir = j.value("data_dir", m.data_dir);
    m.eval_batch = j.value("eval_batch", m.eval_batch);
    m.threads = j.value("threads", m.threads);
    const std::string pictures = j.value("pictures", std::string("object"));
    if (pictures != "object" && pictures != "whole") throw Error("its pictures '" + pictures + "' is not object or whole");
    m.pictures = pictures == "whole" ? PictureFit::whole : PictureFit::object;
    const std::string tta = j.value("tta", std::string("none"));  // checkpoints before --tta: none
    if (tta != "none" && tta != "flip") throw Error("its tta '" + tta + "' is not none or flip");
    m.tta_flip = tta == "flip";
    if (m.eval_batch < 1 || m.eval_batch > 65536 || m.threads < 1 || m.threads > 1024)
      throw Error("its eval_batch " + std::to_string(m.eval_batch) + " or threads " + std::to_string(m.threads) +
                  " is out of range");
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("is corrupt: its metadata misses a field or has one of the wrong type (") + e.what() + ")");
  }
  // The normalisation is read once the model's channels are known (load_model).
  return m;
}

LoadedModel load_model(const std::string& path) {
  Checkpoint ck = read_checkpoint(path);
  LoadedModel m;
  try {
    static_cast<ModelMeta&>(m) = model_meta_from_json(ck.meta);
  } catch (const Error& e) {
    const std::string what = e.what();
    throw Error("checkpoint " + path + (what.rfind("is corrupt", 0) == 0 ? " " : ": ") + what);
  }
  // The arrays must hold the weights the description claims before the model is built, so that
  // what is allocated never outgrows the file.
  if (count_weights(m.spec) > 200'000'000) throw Error("checkpoint " + path + " describes an implausibly large model");
  if (ck.weights.size() != static_cast<uint64_t>(count_weights(m.spec)))
    throw Error("checkpoint " + path + " is corrupt: its arrays do not match its model description (" +
                std::to_string(ck.weights.size()) + " weights, the description has " +
                std::to_string(count_weights(m.spec)) + ")");
  if (training_bytes(m.spec, 1) > model_memory_limit())
    throw Error("checkpoint " + path + " describes a model too large for this machine's memory");
  try {
    m.norm = normalization_from_json(ck.meta.at("normalization"), static_cast<int>(m.spec.in_channels));
  } catch (const nlohmann::json::exception& e) {
    throw Error("checkpoint " + path + " is corrupt: its normalization misses a field or has one of the wrong type (" +
                e.what() + ")");
  } catch (const Error& e) {
    throw Error("checkpoint " + path + ": " + e.what());
  }
  m.model = build_model(m.spec, 0);
  if (ck.weights.size() != m.model->num_values() || ck.stats.size() != m.model->num_buffer_values() ||
      m.classes.size() != static_cast<size_t>(m.spec.classes))
    throw Error("checkpoint " + path + " is corrupt: its arrays do not match its model description");
  std::copy(ck.weights.begin(), ck.weights.end(), m.model->values());
  std::copy(ck.stats.begin(), ck.stats.end(), m.model->buffer_values());
  return m;
}

Image decode_for_model(const LoadedModel& m, const std::string& bytes, const std::string& name, uint64_t max_pixels) {
  return decode_image(bytes, name, max_pixels, m.spec.in_channels == 3 ? ColorMode::rgb : ColorMode::grey);
}

std::vector<uint8_t> fit_for_model(const LoadedModel& m, const Image& img) {
  if (img.channels != m.spec.in_channels)
    throw Error("a picture of " + std::to_string(img.channels) + " channel(s) for a model of " +
                std::to_string(m.spec.in_channels));
  return fit_picture(img, static_cast<int>(m.spec.height), static_cast<int>(m.spec.width), m.pictures);
}

std::vector<float> input_for_model(const LoadedModel& m, const std::vector<uint8_t>& pixels) {
  const size_t want = static_cast<size_t>(m.spec.in_channels * m.spec.height * m.spec.width);
  if (pixels.size() != want)
    throw Error("an input of " + std::to_string(pixels.size()) + " pixels for a model of " + std::to_string(want));
  std::vector<float> x(pixels.size());
  to_model_input(pixels.data(), pixels.size(), m.norm, x.data());
  return x;
}

std::string checkpoint_path(const std::string& run) {
  if (std::filesystem::is_directory(run)) return run + "/model.ckpt";
  return run;
}

std::vector<float> logits_for_model(LoadedModel& m, const std::vector<float>& x) {
  const Shape one{1, static_cast<int64_t>(x.size())};
  const int64_t k = m.spec.classes;
  ConstView z = m.model->infer(ConstView(x.data(), one));
  std::vector<float> logits(z.data, z.data + k);
  if (!m.tta_flip) return logits;
  std::vector<float> mirror = x;
  flip_batch(mirror.data(), 1, static_cast<int>(m.spec.in_channels), static_cast<int>(m.spec.height),
             static_cast<int>(m.spec.width));
  z = m.model->infer(ConstView(mirror.data(), one));
  for (int64_t j = 0; j < k; ++j) logits[j] = (logits[j] + z.data[j]) * 0.5f;  // as evaluate() averages
  return logits;
}

void apply_tta_option(LoadedModel& m, const std::string& option) {
  if (option == "none" || option == "flip") m.tta_flip = option == "flip";
  else if (option != "run") throw Error("--tta '" + option + "' (expected run, none or flip)");
}

}  // namespace tailor
