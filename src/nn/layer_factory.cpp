#include "nn/layer_factory.hpp"

#include "nn/activation.hpp"
#include "nn/batchnorm.hpp"
#include "nn/block_tail.hpp"
#include "nn/conv2d.hpp"
#include "nn/linear.hpp"
#include "nn/pool.hpp"
#include "nn/residual.hpp"
#include "util/error.hpp"

namespace tailor {

LayerPtr layer_from_json(const nlohmann::json& j, uint64_t seed) {
  try {
    const std::string t = j.at("type").get<std::string>();
    if (t == "linear") return std::make_unique<Linear>(j.at("in").get<int64_t>(), j.at("out").get<int64_t>());
    if (t == "conv2d")
      return std::make_unique<Conv2d>(j.at("in").get<int64_t>(), j.at("out").get<int64_t>(),
                                      j.at("kernel").get<int64_t>(), j.value("padding", int64_t{0}),
                                      j.value("stride", int64_t{1}), j.value("groups", int64_t{1}));
    if (t == "maxpool2d") return std::make_unique<Pool2d>(kernels::PoolKind::max, j.at("kernel").get<int64_t>());
    if (t == "avgpool2d") return std::make_unique<Pool2d>(kernels::PoolKind::avg, j.at("kernel").get<int64_t>());
    if (t == "lppool2d") {
      if (j.value("p", 2) != 2) throw Error("lppool2d: only p = 2 (L2 pooling) is supported");
      return std::make_unique<Pool2d>(kernels::PoolKind::l2, j.at("kernel").get<int64_t>());
    }
    if (t == "block_tail")
      return std::make_unique<BlockTail>(j.at("channels").get<int64_t>(), j.at("batchnorm").get<bool>(),
                                         parse_activation(j.at("activation").get<std::string>()),
                                         parse_pool(j.at("pool").get<std::string>()));
    if (t == "batchnorm1d") return std::make_unique<BatchNorm>(j.at("features").get<int64_t>(), false);
    if (t == "batchnorm2d")
      return std::make_unique<BatchNorm>(j.at("channels").get<int64_t>(), true, j.value("relu", false));
    if (t == "flatten") return std::make_unique<Flatten>();
    if (t == "global_avg_pool") return std::make_unique<GlobalAvgPool>();
    if (t == "residual") {
      Chain body, skip;
      for (const auto& l : j.at("body")) body.add(layer_from_json(l, seed));
      for (const auto& l : j.at("skip")) skip.add(layer_from_json(l, seed));
      return std::make_unique<Residual>(std::move(body), std::move(skip),
                                        parse_activation(j.value("activation", std::string("relu"))));
    }
    if (t == "dropout") return std::make_unique<Dropout>(j.at("p").get<float>(), seed);
    if (t == "relu" || t == "sigmoid" || t == "tanh") return std::make_unique<Activation>(parse_activation(t));
    throw Error("unknown layer type '" + t + "'");
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("bad layer description: ") + e.what());
  }
}

}  // namespace tailor
