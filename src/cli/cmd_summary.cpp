#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/model_options.hpp"
#include "data/dataset.hpp"
#include "nn/residual.hpp"
#include "util/error.hpp"

namespace tailor::cli {

namespace {
struct SummaryArgs {
  ModelOptions model;
  std::string size = "28", color = "grey";
  int64_t classes = 10;
  bool json = false;
};
}  // namespace

Run add_summary(CLI::App& app) {
  auto a = std::make_shared<SummaryArgs>();
  CLI::App* c = app.add_subcommand("summary", "Layers, output shapes and weights of a model, without training");
  add_model_options(*c, a->model);
  c->add_option("--image-size", a->size, "Input images are H x H, or H x W given as HxW (each side 1 to 1024)")->capture_default_str();
  c->add_option("--color", a->color, "Input colour: grey (one channel) or rgb (three)")
      ->check(CLI::IsMember({"grey", "gray", "rgb"}))
      ->capture_default_str();
  c->add_option("--classes", a->classes, "Number of classes")->check(CLI::Range(2, 100000))->capture_default_str();
  c->add_flag("--json", a->json, "Print the model as JSON (the layer vocabulary of the PyTorch scripts)");
  return [a, c]() {
    if (!c->parsed()) return -1;
    ResolvedModel r = resolve_model(a->model);
    int rows = 0, cols = 0;
    parse_image_size(a->size, &rows, &cols);
    if (rows <= 0) throw Error("--image-size '" + a->size + "': summary needs a size such as 28 or 24x32");
    r.spec.height = rows, r.spec.width = cols;
    r.spec.in_channels = a->color == "rgb" ? 3 : 1;
    r.spec.classes = a->classes;
    ModelSpec spec = r.target > 0 ? fit_to_budget(r.spec, r.target) : r.spec;
    auto model = build_model(spec, 0);
    const auto shapes = model->shapes(1);
    if (a->json) {
      nlohmann::json layers = nlohmann::json::array();
      // Each layer's PyTorch modules; a fused batch norm + ReLU is two of them.
      for (const auto& l : model->layers())
        for (nlohmann::json d : l->parts()) {
          const bool relu = d.value("relu", false);
          d.erase("relu");
          layers.push_back(d);
          if (relu) layers.push_back({{"type", "relu"}});
        }
      nlohmann::json j{{"model", spec_to_json(spec)},
                       {"layers", layers},
                       {"weights", model->num_values()},
                       {"input", {spec.in_channels, rows, cols}},
                       {"forward_flops_per_image", model->forward_flops(1)}};
      std::printf("%s\n", j.dump(2).c_str());
      return 0;
    }
    std::printf("%s %s%s\n", family_name(spec.family).c_str(), spec.widths_str().c_str(),
                r.target > 0 ? (", sized to " + std::to_string(r.target) + " weights").c_str() : "");
    std::printf("%-14s %-20s %-18s %10s %10s\n", "#", "layer", "output shape", "weights", "MFLOPs");
    std::printf("%-14s %-20s %-18s\n", "", "input", Shape::batched(1, model->item_shape()).str().c_str());
    // One line per PyTorch module (parts of a layer): numbered as the parameters are named. A part
    // before a layer's last keeps its input's shape (batch norm, activation); the layer's
    // parameters and forward multiply-adds belong to its first part. A residual block's branches
    // follow it, indented, with their own parts.
    auto row = [](const std::string& index, const std::string& type, const Shape& out, int64_t weights, int64_t flops) {
      std::printf("%-14s %-20s %-18s %10s %10s\n", index.c_str(), type.c_str(), out.str().c_str(),
                  weights ? std::to_string(weights).c_str() : "", flops ? fmt::format("{:.3f}", flops / 1e6).c_str() : "");
    };
    auto layer_rows = [&](const Layer& l, const Shape& in, const std::string& prefix, size_t& index) {
      int64_t n = 0;
      for (Param* p : const_cast<Layer&>(l).params()) n += p->numel();
      const Shape out = l.output_shape(in);
      const auto parts = l.parts();
      for (size_t j = 0; j < parts.size(); ++j, ++index) {
        const std::string type = parts[j].at("type").get<std::string>() + (parts[j].value("relu", false) ? "+relu" : "");
        row(prefix + std::to_string(index), type, j + 1 == parts.size() ? out : in, j == 0 ? n : 0,
            j == 0 ? l.forward_flops(in) : 0);
      }
      return out;
    };
    size_t index = 0;
    Shape in = Shape::batched(1, model->item_shape());
    for (const auto& l : model->layers()) {
      const size_t at = index;
      const Shape out = layer_rows(*l, in, "", index);
      if (const auto* res = dynamic_cast<const Residual*>(l.get()))
        for (const auto& [name, branch] : {std::pair{"body", &res->body()}, std::pair{"skip", &res->skip()}}) {
          Shape s = in;
          size_t sub = 0;
          for (const auto& part : branch->layers())
            s = layer_rows(*part, s, "  " + std::to_string(at) + "." + name + ".", sub);
        }
      in = out;
    }
    std::printf("total weights: %zu (trainable: weights, biases, batch-norm scale and shift)\n", model->num_values());
    std::printf("forward MFLOPs per image: %.3f\n", static_cast<double>(model->forward_flops(1)) / 1e6);
    return 0;
  };
}

}  // namespace tailor::cli
