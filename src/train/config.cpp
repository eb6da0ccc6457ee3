#include "train/config.hpp"

#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

namespace tailor {

namespace {
// A float as the shortest decimal that reads back to it (0.001f -> 0.001, not 0.0010000000475).
double shortest(float f) { return std::stod(fmt::format("{}", f)); }

toml::array to_array(const std::vector<int64_t>& v) {
  toml::array a;
  for (int64_t x : v) a.push_back(x);
  return a;
}
}  // namespace

std::string config_to_toml(const TrainConfig& c, const std::string& extra) {
  toml::table model{{"family", family_name(c.model.family)},
                    {"channels", to_array(c.model.channels)},
                    {"hidden", to_array(c.model.hidden)},
                    {"batchnorm", c.model.batchnorm},
                    {"dropout", shortest(c.model.dropout)},
                    {"activation", activation_name(c.model.activation)},
                    {"init", init_name(c.init)},
                    {"weights_target", c.weights_target}};
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
                    {"stop_at", shortest(c.stop_at)},
                    {"stop_on", c.stop_on == StopOn::val ? "val" : "test"},
                    {"patience", c.patience},
                    {"label_smoothing", shortest(c.label_smoothing)},
                    {"shift", c.augment.shift},
                    {"flip", c.augment.flip},
                    {"eval_batch", c.eval_batch}};
  toml::table root{{"data", toml::table{{"dir", c.data_dir}}},
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
