#pragma once
// A trained model as an ONNX graph, for other runtimes (OpenCV dnn, ONNX Runtime, ...).
//
// The graph is the evaluation-mode model, layer for layer:
//   image (N, C, H, W) float32, raw pixels 0..255
//     -> Mul(1 / (255 std)) -> Add(-mean / std)    the run's normalisation, as tailor computes it
//     -> [Flatten for an FCN] -> Conv (strides, groups) / BatchNormalization / Relu|Sigmoid|Tanh /
//        MaxPool / AveragePool / GlobalAveragePool + Flatten / Flatten / Gemm (weights (out, in),
//        transB = 1); a residual block is its branches' nodes, then Add and the activation;
//        dropout is left out (identity in evaluation)
//     -> logits (N, classes), and Softmax(axis 1) -> probabilities (N, classes)
// With the run's test-time flips (train --tta flip, or export --tta flip) the network is there
// twice, the second on the input mirrored left-right (MatMul by the reversal of the columns), and
// the logits are the mean of the two.
// Batch norm stays a BatchNormalization node in inference form (5 inputs, 1 output), not folded
// into the layer before it: its tensors keep tailor's (PyTorch's) names (`1.running_mean`), and
// the arithmetic stays the one tailor runs. The batch dimension is symbolic ("N").
#include <string>

#include <nlohmann/json.hpp>

#include "train/checkpoint.hpp"

namespace tailor {

inline constexpr int kOnnxMinOpset = 13, kOnnxMaxOpset = 17;

struct OnnxExport {
  int opset = 13;
  // Extra metadata_props besides the class names, normalisation and tailor's version
  // (e.g. the run's test accuracy).
  nlohmann::json metadata = nlohmann::json::object();
};

// The serialised ModelProto; throws tailor::Error on a layer or opset it cannot express.
std::string onnx_model_bytes(LoadedModel& m, const OnnxExport& options);

}  // namespace tailor
