#pragma once
// A labelled image data set in memory, its train/validation split, normalisation and batching.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/elementwise.hpp"

namespace tailor {

// Images stay resident as bytes: images (n, channels*rows*cols) uint8, each image its planes in
// turn (grey: one; colour: red, green, blue), labels (n) uint8. Floats are made per batch by
// gather_batch, so 60000 28x28 images cost 47 MB, not 188 MB.
struct Dataset {
  int rows = 0, cols = 0, channels = 1;
  int num_classes = 0;
  std::vector<uint8_t> images;
  std::vector<uint8_t> labels;
  size_t size() const { return labels.size(); }
  int pixels() const { return channels * rows * cols; }  // bytes per image
};

inline constexpr int kMaxChannels = 3;

inline constexpr const char* kDefaultDataDir = "/usr/share/datasets/fashion-mnist";

// Loads <dir>/<prefix>-images-idx3-ubyte[.gz] and <dir>/<prefix>-labels-idx1-ubyte[.gz]
// (prefix "train" or "t10k"; the .gz is preferred when both exist). With num_classes_hint == 0
// num_classes = max label + 1 (at least 2); otherwise a label >= hint is an error.
Dataset load_dataset(const std::string& dir, const std::string& prefix, int num_classes_hint = 0);

// How pictures are converted on loading (train --image-size, --color). rows = cols = 0: the data
// set's own size (an IDX set's; a folder's most common size, capped at 64). Colour `automatic`:
// RGB when any training picture shows colour, else grey. An IDX set is grey.
enum class DataColor { automatic, grey, rgb };
struct DataOptions {
  int rows = 0, cols = 0;
  DataColor color = DataColor::automatic;
  bool operator==(const DataOptions&) const = default;
};
DataColor parse_data_color(const std::string& name);  // auto|grey|gray|rgb; the error names --color
const char* data_color_name(DataColor c);             // "auto", "grey", "rgb"
std::vector<std::string> data_color_names();          // every name parse_data_color takes
// "32" -> 32x32, "24x32" -> 24 rows, 32 columns, "" or "auto" -> 0x0; each side 1..1024 (the
// error names --image-size). size_name is its inverse ("auto" for 0x0, "HxW" otherwise).
void parse_image_size(const std::string& text, int* rows, int* cols);
std::string image_size_name(int rows, int cols);

struct TrainTestData {
  Dataset train;
  Dataset test;
  std::vector<std::string> classes;  // one name per class
};

// Loads "train" and "t10k" from `dir`. The test set is held to the training set's class count
// and image size. A missing directory gets an error that says how to install the data.
// The classes: with a `classes.txt` beside the files (one name a line), its lines, in label
// order; every label must lie below their count and every class must have training images.
// Without it, labels 0..max, each with training images (a damaged label byte of 200 in a
// 10-class set is an error, not a 201-class model); named as Fashion-MNIST's classes when the
// training labels are Fashion-MNIST's own, else "0".."K-1". Errors name the file.
// A directory holding train/ and test/ folders of pictures is read as an image folder
// (data/image_folder.hpp): classes are the folder names.
// `opt` converts the pictures: an IDX set's images are resized to opt's size (area averaging);
// asking an IDX set for RGB is an error.
TrainTestData load_train_test(const std::string& dir, const DataOptions& opt = {});

// The test set of `dir` for a model with `classes` and (channels, rows, cols) inputs: the IDX
// "t10k" files, or an image folder's test/, converted to the model's size and colour.
Dataset load_test_set(const std::string& dir, const std::vector<std::string>& classes, int channels, int rows,
                      int cols);

struct Split {
  std::vector<uint32_t> train;  // indices into the data set, ascending
  std::vector<uint32_t> val;    // indices into the data set, ascending
};

// Seeded, stratified split: class k with c_k of the n images gives round(val_count * c_k / n)
// images to val (largest-remainder rounding, so the shares sum to val_count exactly), picked by
// a seeded shuffle of that class's indices. Needs val_count < n (the error names --val).
Split stratified_split(const std::vector<uint8_t>& labels, int num_classes, size_t val_count,
                       uint64_t seed);

// Per-data-set pixel statistics in units of pixel/255 (the torchvision convention, so a
// Fashion-MNIST training set gives about mean 0.286, std 0.353), one pair per channel.
struct Normalization {
  int channels = 1;
  std::array<float, kMaxChannels> mean{0, 0, 0}, std{1, 1, 1};
};

// Per channel, the mean and population std over every pixel of the images at `indices`, summed
// exactly in integers and finished in double. A constant channel (std 0) gets std 1.
Normalization compute_normalization(const Dataset& d, const std::vector<uint32_t>& indices);

// The one conversion of pixels to a model's input, (v/255 - mean)/std of the pixel's channel,
// computed as one multiply, then add per pixel (kernels::bytes_to_floats): training, evaluation, predict, serve
// and inspect all call it, so one picture gives the same floats, and the same logits, on every
// path. `pixels` is one image of n bytes: norm.channels planes of n / channels each.
inline void to_model_input(const uint8_t* pixels, size_t n, const Normalization& norm, float* out) {
  const size_t plane = n / static_cast<size_t>(norm.channels);
  for (int c = 0; c < norm.channels; ++c) {
    const float scale = 1.0f / (255.0f * norm.std[c]), shift = -norm.mean[c] / norm.std[c];
    kernels::bytes_to_floats(pixels + static_cast<size_t>(c) * plane, scale, shift, out + static_cast<size_t>(c) * plane,
                             plane);
  }
}

// out (n, pixels) = to_model_input(image[idx[i]]), out_labels (n) = label[idx[i]].
// No allocation: meant for the training loop. Throws on an index outside the data set, or on a
// normalisation of another channel count.
void gather_batch(const Dataset& d, const uint32_t* idx, size_t n, const Normalization& norm, float* out,
                  int32_t* out_labels);

// Fashion-MNIST's ten class names, in label order.
std::vector<std::string> fashion_mnist_class_names();
// "0", "1", ..., "K-1".
std::vector<std::string> numbered_class_names(int num_classes);

}  // namespace tailor
