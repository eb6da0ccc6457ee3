#include "train/config.hpp"

#include <cstdlib>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "util/error.hpp"

namespace tailor {

namespace {
// A float as the shortest decimal that reads back to it (0.001f -> 0.001, not 0.0010000000475).
// strtod, not std::stod: the latter throws on a subnormal (1e-45f).
double shortest(float f) { return std::strtod(fmt::format("{}", f).c_str(), nullptr); }

toml::array to_array(const std::vector<int64_t>& v) {
  toml::array a;
  for (int64_t x : v) a.push_back(x);
  return a;
}
}  // namespace

namespace {
// Typed reads of config.toml, each failure one line naming the file and the key.
class TomlReader {
 public:
  TomlReader(const toml::table& t, std::string path) : t_(t), path_(std::move(path)) {}
  template <class T>
  T get(const char* table, const char* key) const {
    const toml::node_view v = t_[table][key];
    if constexpr (std::is_same_v<T, bool>) {
      if (auto b = v.value<bool>()) return *b;
    } else if constexpr (std::is_floating_point_v<T>) {
      if (auto d = v.value<double>()) return static_cast<T>(*d);
    } else if constexpr (std::is_integral_v<T>) {
      if (auto i = v.value<int64_t>()) return static_cast<T>(*i);
    } else {
      if (auto s = v.value<std::string>()) return *s;
    }
    throw Error(path_ + ": [" + table + "] " + key + " is missing or of the wrong type");
  }
  std::vector<int64_t> ints(const char* table, const char* key) const {
    const toml::array* a = t_[table][key].as_array();
    if (!a) throw Error(path_ + ": [" + table + "] " + key + " is missing or not an array");
    std::vector<int64_t> out;
    for (const auto& e : *a) {
      auto i = e.value<int64_t>();
      if (!i) throw Error(path_ + ": [" + table + "] " + key + " holds a value that is not an integer");
      out.push_back(*i);
    }
    return out;
  }

 private:
  const toml::table& t_;
  std::string path_;
};
}  // namespace

TrainConfig config_from_toml(const std::string& text, const std::string& path) {
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    throw Error(path + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  const TomlReader r(root, path);
  TrainConfig c;
  try {
    c.model.family = parse_family(r.get<std::string>("model", "family"));
    c.model.channels = r.ints("model", "channels");
    c.model.hidden = r.ints("model", "hidden");
    c.model.batchnorm = r.get<bool>("model", "batchnorm");
    c.model.dropout = r.get<float>("model", "dropout");
    c.model.activation = parse_activation(r.get<std::string>("model", "activation"));
    // Runs from before pooling was a choice have no key: they were max-pooled.
    c.model.pool = parse_pool(root["model"]["pool"].value_or(std::string("max")));
    // A staged CNN (--arch) has its text; runs from before stages have no key.
    if (const auto arch = root["model"]["arch"].value<std::string>()) parse_arch(*arch, c.model);
    c.init = parse_init(r.get<std::string>("model", "init"));
    c.weights_target = r.get<int64_t>("model", "weights_target");
    c.optim.kind = parse_optimizer(r.get<std::string>("optim", "optimizer"));
    c.optim.lr = r.get<float>("optim", "lr");
    c.optim.momentum = r.get<float>("optim", "momentum");
    c.optim.nesterov = r.get<bool>("optim", "nesterov");
    c.optim.weight_decay = r.get<float>("optim", "weight_decay");
    c.optim.beta1 = r.get<float>("optim", "beta1");
    c.optim.beta2 = r.get<float>("optim", "beta2");
    c.optim.eps = r.get<float>("optim", "eps");
    c.optim.alpha = r.get<float>("optim", "alpha");
    c.schedule.kind = parse_schedule(r.get<std::string>("optim", "schedule"));
    c.schedule.step_epochs = r.get<int64_t>("optim", "step_epochs");
    c.schedule.gamma = r.get<float>("optim", "gamma");
    c.epochs = r.get<int64_t>("train", "epochs");
    c.batch_size = r.get<int64_t>("train", "batch_size");
    c.val_count = r.get<int64_t>("train", "val");
    c.seed = static_cast<uint64_t>(r.get<int64_t>("train", "seed"));
    c.threads = r.get<int>("train", "threads");
    c.bf16 = r.get<std::string>("train", "precision") == "bf16";
    // Runs from before data-parallel steps trained on the layers' threads: they resume so.
    const std::string dp = root["train"]["data_parallel"].value_or(std::string("off"));
    if (dp != "auto" && dp != "off") throw Error("[train] data_parallel must be \"auto\" or \"off\", not \"" + dp + "\"");
    c.data_parallel = dp == "auto";
    c.replicas = static_cast<int>(root["train"]["replicas"].value_or(int64_t{1}));
    if (c.replicas < 1 || c.replicas > 1024) throw Error("[train] replicas must be in [1, 1024], not " + std::to_string(c.replicas));
    c.stop_at = r.get<float>("train", "stop_at");
    c.stop_on = r.get<std::string>("train", "stop_on") == "test" ? StopOn::test : StopOn::val;
    c.patience = r.get<int64_t>("train", "patience");
    c.label_smoothing = r.get<float>("train", "label_smoothing");
    c.augment.shift = r.get<int>("train", "shift");
    c.augment.flip = r.get<bool>("train", "flip");
    // Runs from before these recipes have no keys: off.
    c.augment.erase = static_cast<float>(root["train"]["erase"].value_or(0.0));
    c.ema = static_cast<float>(root["train"]["ema"].value_or(0.0));
    const std::string tta = root["train"]["tta"].value_or(std::string("none"));
    if (tta != "none" && tta != "flip") throw Error("[train] tta must be \"none\" or \"flip\", not \"" + tta + "\"");
    c.tta_flip = tta == "flip";
    c.teacher = root["train"]["teacher"].value_or(std::string());
    c.distill_weight = static_cast<float>(root["train"]["distill_weight"].value_or(0.5));
    c.distill_temperature = static_cast<float>(root["train"]["distill_temperature"].value_or(4.0));
    if (!(c.distill_weight >= 0 && c.distill_weight <= 1)) throw Error("[train] distill_weight must be in [0, 1]");
    if (!(c.distill_temperature >= 1 && c.distill_temperature <= 100))
      throw Error("[train] distill_temperature must be in [1, 100]");
    if (!(c.augment.erase >= 0 && c.augment.erase <= 1)) throw Error("[train] erase must be in [0, 1]");
    if (!(c.ema >= 0 && c.ema < 1)) throw Error("[train] ema must be in [0, 1)");
    c.eval_batch = r.get<int64_t>("train", "eval_batch");
    c.data_dir = r.get<std::string>("data", "dir");
    // Runs from before these options have no keys: their data's own size, grey.
    parse_image_size(root["data"]["image_size"].value_or(std::string("auto")), &c.data.rows, &c.data.cols);
    c.data.color = parse_data_color(root["data"]["color"].value_or(std::string("grey")));
  } catch (const Error& e) {
    const std::string what = e.what();
    throw Error(what.rfind(path, 0) == 0 ? what : path + ": " + what);
  }
  if (auto out = root["out"].value<std::string>()) c.out_dir = *out;
  return c;
}

std::string config_to_toml(const TrainConfig& c, const std::string& extra) {
  toml::table model{{"family", family_name(c.model.family)},
                    {"channels", to_array(c.model.channels)},
                    {"hidden", to_array(c.model.hidden)},
                    {"batchnorm", c.model.batchnorm},
                    {"dropout", shortest(c.model.dropout)},
                    {"activation", activation_name(c.model.activation)},
                    {"pool", kernels::pool_name(c.model.pool)},
                    {"init", init_name(c.init)},
                    {"weights_target", c.weights_target}};
  if (c.model.staged()) model.insert("arch", arch_text(c.model));
  toml::table optim{{"optimizer", optimizer_name(c.optim.kind)},
                    {"lr", shortest(c.optim.lr)},
                    {"momentum", shortest(c.optim.momentum)},
                    {"nesterov", c.optim.nesterov},
                    {"weight_decay", shortest(c.optim.weight_decay)},
                    {"beta1", shortest(c.optim.beta1)},
                    {"beta2", shortest(c.optim.beta2)},
                    {"eps", shortest(c.optim.eps)},
                    {"alpha", shortest(c.optim.alpha)},
                    {"schedule", schedule_name(c.schedule.kind)},
                    {"step_epochs", c.schedule.step_epochs},
                    {"gamma", shortest(c.schedule.gamma)}};
  toml::table train{{"epochs", c.epochs},
                    {"batch_size", c.batch_size},
                    {"val", c.val_count},
                    {"seed", static_cast<int64_t>(c.seed)},
                    {"threads", static_cast<int64_t>(c.threads)},
                    {"precision", c.bf16 ? "bf16" : "fp32"},
                    {"data_parallel", c.data_parallel ? "auto" : "off"},
                    {"replicas", static_cast<int64_t>(std::max(c.replicas, 1))},
                    {"stop_at", shortest(c.stop_at)},
                    {"stop_on", c.stop_on == StopOn::val ? "val" : "test"},
                    {"patience", c.patience},
                    {"label_smoothing", shortest(c.label_smoothing)},
                    {"shift", c.augment.shift},
                    {"flip", c.augment.flip},
                    {"erase", shortest(c.augment.erase)},
                    {"ema", shortest(c.ema)},
                    {"tta", c.tta_flip ? "flip" : "none"},
                    {"eval_batch", c.eval_batch}};
  if (!c.teacher.empty()) {  // runs without a teacher keep the file they always had
    train.insert("teacher", c.teacher);
    train.insert("distill_weight", shortest(c.distill_weight));
    train.insert("distill_temperature", shortest(c.distill_temperature));
  }
  toml::table root{{"data", toml::table{{"dir", c.data_dir},
                                        {"image_size", image_size_name(c.data.rows, c.data.cols)},
                                        {"color", data_color_name(c.data.color)}}},
                   {"model", model},
                   {"optim", optim},
                   {"train", train},
                   {"out", c.out_dir}};
  std::ostringstream s;
  s << "# tailor training run: every setting, as used\n" << root << "\n";
  if (!extra.empty()) s << "\n" << extra << "\n";
  return s.str();
}

}  // namespace tailor
