#include "export/onnx_export.hpp"

#include <cstring>
#include <set>
#include <string_view>

#include <onnx/onnx_pb.h>  // defines ONNX_API, then includes the generated onnx-ml.pb.h

#include "nn/residual.hpp"
#include "train/trainer.hpp"
#include "util/error.hpp"

namespace tailor {

namespace {

// Builds the graph node by node; each node's output is named after the layer that made it.
class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto* g) : g_(g) {}

  // A float initializer (raw little-endian data, as x86 holds it).
  void constant(const std::string& name, const std::vector<int64_t>& dims, const float* data) {
    onnx::TensorProto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    int64_t n = 1;
    for (int64_t d : dims) {
      t->add_dims(d);
      n *= d;
    }
    t->set_raw_data(std::string(reinterpret_cast<const char*>(data), static_cast<size_t>(n) * sizeof(float)));
  }

  onnx::NodeProto* node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                        const std::string& output) {
    onnx::NodeProto* n = g_->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const std::string& in : inputs) n->add_input(in);
    n->add_output(output);
    return n;
  }

  static void ints(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }
  static void integer(onnx::NodeProto* n, const std::string& name, int64_t v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void real(onnx::NodeProto* n, const std::string& name, float v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }

  // A graph input or output: float32 with a symbolic batch dimension, then `dims`.
  static void value_info(onnx::ValueInfoProto* v, const std::string& name, const std::vector<int64_t>& dims) {
    v->set_name(name);
    onnx::TypeProto_Tensor* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    onnx::TensorShapeProto* s = t->mutable_shape();
    s->add_dim()->set_dim_param("N");
    for (int64_t d : dims) s->add_dim()->set_dim_value(d);
  }

 private:
  onnx::GraphProto* g_;
};

std::vector<int64_t> dims_of(const Shape& s) {
  std::vector<int64_t> d;
  for (size_t i = 0; i < s.rank(); ++i) d.push_back(s[i]);
  return d;
}

std::string activation_op(const std::string& type) {
  if (type == "relu") return "Relu";
  if (type == "sigmoid") return "Sigmoid";
  if (type == "tanh") return "Tanh";
  return "";
}

// The nodes of a chain of layers, one group per PyTorch module (a layer's parts()), named by its
// index as the parameters are ("3.weight"); a layer's parameters belong to its first part, a
// residual block's to the block ("4.body.0.weight"). With test-time flips the network is written
// twice, the second pass's node and value names ending in ".mirror", its initializers shared.
class Emitter {
 public:
  // consts: the initializers written so far, shared by both passes.
  Emitter(GraphBuilder& b, std::set<std::string>& consts, std::string pass)
      : b_(b), consts_(consts), pass_(std::move(pass)) {}

  // x through `layers`; top: the owner of nested layers' parameters ("" at the top level, where a
  // layer's own first part is); ids: the prefix of their node names ("" or "4.body.").
  std::string chain(const std::vector<LayerPtr>& layers, std::string x, const std::string& top = "",
                    const std::string& ids = "") {
    size_t module = 0;
    for (const auto& layer : layers) {
      auto params = layer->params();
      auto buffers = layer->buffers();
      const std::string owner = top.empty() ? std::to_string(module) : top;
      auto named = [&](Param* p) { return constant(owner + "." + p->name, p); };
      if (const auto* res = dynamic_cast<const Residual*>(layer.get())) {
        const std::string id = ids + std::to_string(module++);
        const std::string body = chain(res->body().layers(), x, owner, id + ".body.");
        const std::string skip = res->skip().empty() ? x : chain(res->skip().layers(), x, owner, id + ".skip.");
        b_.node("Add", id + ".add" + pass_, {body, skip}, id + ".sum" + pass_);
        const std::string op = activation_op(res->describe().at("activation").get<std::string>());
        b_.node(op, id + ".activation" + pass_, {id + ".sum" + pass_}, id + ".out" + pass_);
        x = id + ".out" + pass_;
        continue;
      }
      for (const nlohmann::json& d : layer->parts()) {
        const std::string type = d.at("type").get<std::string>(), id = ids + std::to_string(module++);
        const std::string out = id + ".out" + pass_;
        if (type == "conv2d") {
          const int64_t k = d.at("kernel").get<int64_t>(), pad = d.at("padding").get<int64_t>();
          const int64_t stride = d.value("stride", int64_t{1}), groups = d.value("groups", int64_t{1});
          onnx::NodeProto* n = b_.node("Conv", id + ".conv" + pass_, {x, named(params.at(0)), named(params.at(1))}, out);
          GraphBuilder::ints(n, "kernel_shape", {k, k});
          GraphBuilder::ints(n, "pads", {pad, pad, pad, pad});
          GraphBuilder::ints(n, "strides", {stride, stride});
          if (groups != 1) GraphBuilder::integer(n, "group", groups);
        } else if (type == "batchnorm2d" || type == "batchnorm1d") {
          onnx::NodeProto* n = b_.node("BatchNormalization", id + ".batchnorm" + pass_,
                                       {x, named(params.at(0)), named(params.at(1)), named(buffers.at(0)),
                                        named(buffers.at(1))}, out);
          GraphBuilder::real(n, "epsilon", d.at("eps").get<float>());
          if (d.value("relu", false)) {  // the fused relu of a CNN block is its own node here
            b_.node("Relu", id + ".relu" + pass_, {out}, id + ".relu.out" + pass_);
            x = id + ".relu.out" + pass_;
            continue;
          }
        } else if (const std::string op = activation_op(type); !op.empty()) {
          b_.node(op, id + "." + type + pass_, {x}, out);
        } else if (type == "maxpool2d" || type == "avgpool2d") {
          const int64_t k = d.at("kernel").get<int64_t>();
          const bool max = type == "maxpool2d";
          onnx::NodeProto* n = b_.node(max ? "MaxPool" : "AveragePool", id + (max ? ".maxpool" : ".avgpool") + pass_, {x}, out);
          GraphBuilder::ints(n, "kernel_shape", {k, k});
          GraphBuilder::ints(n, "strides", {k, k});  // floor mode (ceil_mode 0), as tailor and PyTorch
        } else if (type == "lppool2d") {
          // L2 pooling as ops OpenCV 4.6 runs (it has no LpPool): sqrt(k^2 * mean of x^2) over each
          // window, the decomposition that equals PyTorch's LPPool2d(2, k).
          const int64_t k = d.at("kernel").get<int64_t>();
          const float area = static_cast<float>(k * k);
          const std::string area_name = id + ".area";
          if (consts_.insert(area_name).second) b_.constant(area_name, {}, &area);
          b_.node("Mul", id + ".square" + pass_, {x, x}, id + ".squared" + pass_);
          onnx::NodeProto* n = b_.node("AveragePool", id + ".avgpool" + pass_, {id + ".squared" + pass_}, id + ".mean" + pass_);
          GraphBuilder::ints(n, "kernel_shape", {k, k});
          GraphBuilder::ints(n, "strides", {k, k});
          b_.node("Mul", id + ".sum" + pass_, {id + ".mean" + pass_, area_name}, id + ".sumsq" + pass_);
          b_.node("Sqrt", id + ".sqrt" + pass_, {id + ".sumsq" + pass_}, out);
        } else if (type == "global_avg_pool") {
          b_.node("GlobalAveragePool", id + ".gap" + pass_, {x}, id + ".pooled" + pass_);  // (N, C, 1, 1)
          GraphBuilder::integer(b_.node("Flatten", id + ".flatten" + pass_, {id + ".pooled" + pass_}, out), "axis", 1);
        } else if (type == "flatten") {
          GraphBuilder::integer(b_.node("Flatten", id + ".flatten" + pass_, {x}, out), "axis", 1);
        } else if (type == "dropout") {
          continue;  // the identity in evaluation
        } else if (type == "linear") {
          onnx::NodeProto* n = b_.node("Gemm", id + ".gemm" + pass_, {x, named(params.at(0)), named(params.at(1))}, out);
          GraphBuilder::integer(n, "transB", 1);  // weight (out, in), as tailor and PyTorch keep it
        } else {
          throw Error("ONNX export: layer " + id + " (" + type + ") has no ONNX form");
        }
        x = out;
      }
    }
    return x;
  }

 private:
  std::string constant(const std::string& name, const Param* p) {
    if (consts_.insert(name).second) b_.constant(name, dims_of(p->shape), p->value);
    return name;
  }

  GraphBuilder& b_;
  std::set<std::string>& consts_;
  std::string pass_;
};

}  // namespace

std::string onnx_model_bytes(LoadedModel& m, const OnnxExport& options) {
  if (options.opset < kOnnxMinOpset || options.opset > kOnnxMaxOpset)
    throw Error("--opset " + std::to_string(options.opset) + " is not supported: use " +
                std::to_string(kOnnxMinOpset) + " to " + std::to_string(kOnnxMaxOpset));
  onnx::ModelProto model;
  model.set_ir_version(onnx::IR_VERSION);
  model.set_producer_name("tailor");
  model.set_producer_version(tailor_version());
  model.set_doc_string("tailor " + family_name(m.spec.family) + " " + m.spec.widths_str() +
                       ": input 'image' (N, C, H, W) float32 with raw pixel values 0..255");
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(options.opset);

  nlohmann::json meta = options.metadata;
  meta["classes"] = m.classes;
  meta["normalization"] = normalization_json(m.norm);
  meta["normalization"]["input"] = "raw pixels 0..255";
  meta["tailor_version"] = tailor_version();
  for (auto it = meta.begin(); it != meta.end(); ++it) {
    onnx::StringStringEntryProto* p = model.add_metadata_props();
    p->set_key(it.key());
    p->set_value(it->is_string() ? it->get<std::string>() : it->dump());
  }

  onnx::GraphProto* g = model.mutable_graph();
  g->set_name("tailor_" + family_name(m.spec.family));
  GraphBuilder b(g);
  Sequential& net = *m.model;
  // The model's own input: (C, H, W) for a CNN, (C*H*W) for an FCN; the graph takes images.
  const int64_t channels = m.spec.in_channels;
  const std::vector<int64_t> image = {channels, m.spec.height, m.spec.width};
  GraphBuilder::value_info(g->add_input(), "image", image);

  // x / 255 normalised as tailor's to_model_input does it: x * (1 / (255 std)) + (-mean / std),
  // per channel: scalars for one channel, (C, 1, 1) tensors broadcast over (N, C, H, W) for more.
  if (m.norm.channels != channels) throw Error("the run's normalisation does not match its input channels");
  std::vector<float> scale, shift;
  for (int c = 0; c < m.norm.channels; ++c) {
    scale.push_back(1.0f / (255.0f * m.norm.std[c]));
    shift.push_back(-m.norm.mean[c] / m.norm.std[c]);
  }
  const std::vector<int64_t> per_channel = channels == 1 ? std::vector<int64_t>{} : std::vector<int64_t>{channels, 1, 1};
  b.constant("input.scale", per_channel, scale.data());
  b.constant("input.shift", per_channel, shift.data());
  b.node("Mul", "input.mul", {"image", "input.scale"}, "input.scaled");
  b.node("Add", "input.add", {"input.scaled", "input.shift"}, "input.normalized");
  std::string x = "input.normalized";
  if (net.item_shape().rank() == 1) {  // an FCN: (N, C, H, W) -> (N, C*H*W), PyTorch's order
    GraphBuilder::integer(b.node("Flatten", "input.flatten", {x}, "input.flat"), "axis", 1);
    x = "input.flat";
  }

  // The layers, and with test-time flips (--tta flip) the layers again on the mirrored input (a
  // MatMul by the reversal of the columns: exact, and run by OpenCV 4.6, which has neither Gather
  // nor Slice with negative steps), the two logits averaged as tailor averages them.
  std::set<std::string> consts;
  std::string logits = Emitter(b, consts, "").chain(net.layers(), x);
  if (m.tta_flip) {
    const int64_t w = m.spec.width;
    std::vector<float> reverse(static_cast<size_t>(w * w), 0.0f);
    for (int64_t j = 0; j < w; ++j) reverse[static_cast<size_t>(j * w + (w - 1 - j))] = 1.0f;
    b.constant("input.mirror", {w, w}, reverse.data());
    b.node("MatMul", "input.mirror", {"input.normalized", "input.mirror"}, "input.mirrored");
    std::string mirrored = "input.mirrored";
    if (net.item_shape().rank() == 1) {
      GraphBuilder::integer(b.node("Flatten", "input.flatten.mirror", {mirrored}, "input.flat.mirror"), "axis", 1);
      mirrored = "input.flat.mirror";
    }
    const std::string second = Emitter(b, consts, ".mirror").chain(net.layers(), mirrored);
    const float half = 0.5f;
    b.constant("tta.half", {}, &half);
    b.node("Add", "tta.add", {logits, second}, "tta.sum");
    b.node("Mul", "tta.mean", {"tta.sum", "tta.half"}, "tta.logits");
    logits = "tta.logits";
  }
  x = logits;
  // The last layer's output is the logits; an Identity gives it the contract's name.
  b.node("Identity", "logits", {x}, "logits");
  GraphBuilder::integer(b.node("Softmax", "probabilities", {"logits"}, "probabilities"), "axis", 1);
  GraphBuilder::value_info(g->add_output(), "logits", {m.spec.classes});
  GraphBuilder::value_info(g->add_output(), "probabilities", {m.spec.classes});

  std::string bytes;
  if (!model.SerializeToString(&bytes)) throw Error("ONNX export: the model could not be serialised");
  return bytes;
}

}  // namespace tailor
