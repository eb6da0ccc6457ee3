#pragma once
// CNNs built from stages (--arch): the compact text form, and the layers it builds.
//
//   ARCH   = STAGE { "|" STAGE } [ "|" HEAD ] [ "|" "fc" W { "," W } ]
//   STAGE  = WIDTH [ "x" COUNT ] { "," FLAG }
//   FLAG   = "k3" | "k5"            kernel size (default 3), same padding
//          | "res"                  residual: blocks of two convolutions around a skip (the
//                                   identity, or a 1x1 projection where the width or size changes),
//                                   the activation after the sum; COUNT must be even
//          | "sep"                  depthwise-separable: each convolution is a depthwise KxK one
//                                   then a pointwise 1x1 one, each with batch norm and activation
//          | "max" | "avg" | "l2"   a 2x2 pool after the stage
//          | "s2"                   the stage's first convolution has stride 2
//   HEAD   = "gap"                  global average pooling (the default), or
//          | "flat"                 flatten, as the two-block CNN does
//   then "fc W,W": hidden fully connected layers (with batch norm, activation and dropout) before
//   the classes.
//
// Each convolution is followed by batch norm (with --batchnorm) and the activation. Examples:
//   16,max | 32,max | flat | fc 60          today's CNN-100k, conv 16,32 | fc 60
//   24,max | 48x2,res,max | 96x2,res | gap   a residual network with a global-average-pool head
//   32 | 64,sep,s2 | 128x2,sep,res,s2        depthwise-separable stages, strided downsampling
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/layer.hpp"

namespace tailor {

struct ModelSpec;
class Rng;

enum class Downsample : uint8_t { none, max, avg, l2, stride2 };

struct Stage {
  int64_t width = 16;
  int64_t convs = 1;   // convolutions; a residual stage's blocks hold two each
  int64_t kernel = 3;  // 3 or 5
  bool residual = false, separable = false;
  Downsample down = Downsample::none;
  bool operator==(const Stage&) const = default;
};

// Parses `text` into spec.stages, spec.gap and spec.hidden; throws tailor::Error naming the part
// of `text` at fault and what is expected.
void parse_arch(const std::string& text, ModelSpec& spec);
// The canonical text of a staged spec (parse_arch(arch_text(s)) gives s back).
std::string arch_text(const ModelSpec& spec);

// The layers of a staged CNN, in order, not yet finalized; dropout layers draw their seeds from
// `seeds`. Throws tailor::Error when the input's size cannot go through the stages (a pool of a
// 1-pixel-wide map) or the widths cannot be grouped.
std::vector<LayerPtr> build_arch_layers(const ModelSpec& spec, Rng& seeds);

}  // namespace tailor
