#pragma once
// Data sets of picture files, as torchvision's ImageFolder and Keras's image_dataset_from_directory
// read them: DIR/train/<class>/*.png|jpg|jpeg|pgm and DIR/test/<class>/..., one sub-directory per
// class. Pictures are converted once on loading to the data set's size and colour.
#include <string>

#include "data/dataset.hpp"

namespace tailor {

// Whether DIR is laid out as an image folder (DIR/train and DIR/test are directories).
bool is_image_folder(const std::string& dir);

// The largest side a folder's images are converted to by default (the most common size, capped).
inline constexpr int kMaxFolderImageSide = 64;

// Loads DIR/train and DIR/test. The classes are train's sub-directory names in sorted (byte)
// order, and test must have exactly the same ones; each needs at least one picture in train.
// Files are read in sorted order; names starting with '.' are skipped. Every picture is decoded
// (alpha composited on white) as grey (luminance) or RGB (opt.color; automatic: RGB when any
// training picture shows colour, a grey one then repeated in three planes) and resized with area
// averaging, nothing cropped, to opt's size, by default the most common size among the training
// pictures (a longer side above 64 scaled down to 64, keeping the aspect ratio); pictures of that
// size keep their exact bytes. Errors name the
// file or folder: an empty class folder, a class in one split only, a file that is not a PNG,
// JPEG or PGM, an unreadable, truncated or too large picture, more than 256 classes.
// The converted set is cached under $XDG_CACHE_HOME/tailor/image-folders/ (default ~/.cache),
// keyed by every picture's path, size and modification time and the conversion; the next load
// of an unchanged folder reads that one file. A stale, short or damaged cache is rebuilt.
struct FolderLoad {
  bool from_cache = false;
  std::string cache_file;  // empty: no cache could be used or written
};
TrainTestData load_image_folder(const std::string& dir, const DataOptions& opt = {}, FolderLoad* how = nullptr);

// DIR/test alone, converted to (channels, rows, cols) for a model trained on DIR: its class
// folders must be `classes`, in order.
Dataset load_image_folder_test(const std::string& dir, const std::vector<std::string>& classes, int channels, int rows,
                               int cols);

}  // namespace tailor
