#include "data/image_folder.hpp"

#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <thread>
#include <utility>

#include "data/image.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"
#include "util/memory.hpp"

namespace tailor {

namespace fs = std::filesystem;

namespace {

bool is_picture_name(const std::string& name) {
  std::string ext = fs::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".pgm";
}

// The entries of `dir` not starting with '.', sorted by name (bytes).
std::vector<fs::path> sorted_entries(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename().string().rfind('.', 0) != 0) out.push_back(it->path());
  if (ec) throw Error(dir.string() + ": cannot list (" + ec.message() + ")");
  std::sort(out.begin(), out.end());
  return out;
}

// One picture file, with what one stat() said of it (the cache key's part).
struct Picture {
  fs::path path;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
};
using Split = std::map<std::string, std::vector<Picture>>;  // class name -> its pictures, sorted

// One stat() per entry: listing a folder of 70,000 pictures stays a fraction of a second.
bool stat_entry(const fs::path& p, struct stat& st) { return ::stat(p.c_str(), &st) == 0; }

// The classes of one split and their pictures; errors name the folder or file at fault.
Split list_split(const fs::path& split) {
  Split classes;
  struct stat st;
  for (const fs::path& entry : sorted_entries(split)) {
    if (!stat_entry(entry, st) || !S_ISDIR(st.st_mode))
      throw Error(entry.string() + ": not a class folder (" + split.string() +
                  " holds one sub-directory of pictures per class)");
    auto& files = classes[entry.filename().string()];
    for (const fs::path& f : sorted_entries(entry)) {
      if (!stat_entry(f, st)) throw Error(f.string() + ": cannot read (" + std::strerror(errno) + ")");
      if (S_ISDIR(st.st_mode))
        throw Error(f.string() + ": a folder inside class folder " + entry.string() + " (pictures only)");
      if (!is_picture_name(f.filename().string()))
        throw Error(f.string() + ": not a picture (.png, .jpg, .jpeg or .pgm expected in a class folder)");
      files.push_back({f, static_cast<uint64_t>(st.st_size),
                       static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec});
    }
  }
  if (classes.empty()) throw Error(split.string() + " has no class folders (one sub-directory of pictures per class)");
  return classes;
}

Image decode_file(const fs::path& f, ColorMode mode) {
  return decode_image(read_file(f.string()), f.string(), kMaxImagePixels, mode);
}

// The converted set is cached in $XDG_CACHE_HOME/tailor/image-folders/<key>.bin (default
// ~/.cache), keyed by a hash of the format version, the directory, every picture's relative path,
// size and modification time, and the conversion: a changed, added or removed picture is a new key.
// The file ends with a CRC-32 of everything before it; a file that is short, damaged or of another
// key is rebuilt, never trusted. Written to a temporary file and renamed, so a partial file is
// never read.
constexpr char kCacheMagic[8] = {'T', 'A', 'I', 'L', 'O', 'R', 'I', 'F'};
constexpr uint32_t kCacheVersion = 2;  // 2: colour and the conversion options
// A conversion of at least this many pictures is announced on stderr (it takes about a second).
constexpr size_t kAnnounceConversion = 5000;

uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

uint64_t cache_key(const fs::path& root, const Split& train, const Split& test, const DataOptions& opt) {
  uint64_t h = 0xcbf29ce484222325ull;
  const std::string head = std::string("colour ") + data_color_name(opt.color) + " size " +
                           image_size_name(opt.rows, opt.cols) + " whole cap64 v" + std::to_string(kCacheVersion) +
                           " " + fs::absolute(root).string();
  h = fnv1a(h, head.data(), head.size());
  for (const auto& [split, classes] : {std::pair{"train", &train}, std::pair{"test", &test}})
    for (const auto& [name, files] : *classes)
      for (const Picture& f : files) {
        const std::string rel = std::string(split) + "/" + name + "/" + f.path.filename().string();
        h = fnv1a(h, rel.data(), rel.size() + 1);  // with its terminating zero
        h = fnv1a(h, &f.size, sizeof f.size);
        h = fnv1a(h, &f.mtime_ns, sizeof f.mtime_ns);
      }
  return h;
}

std::string cache_path(uint64_t key) {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  fs::path base = xdg && *xdg ? fs::path(xdg) : home && *home ? fs::path(home) / ".cache" : fs::path();
  if (base.empty()) return {};
  char name[32];
  std::snprintf(name, sizeof name, "%016llx.bin", static_cast<unsigned long long>(key));
  return (base / "tailor" / "image-folders" / name).string();
}

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void put_set(std::string& out, const Dataset& d) {
  put<uint64_t>(out, d.labels.size());
  out.append(reinterpret_cast<const char*>(d.labels.data()), d.labels.size());
  out.append(reinterpret_cast<const char*>(d.images.data()), d.images.size());
}

std::string cache_bytes(uint64_t key, const TrainTestData& data) {
  std::string out(kCacheMagic, sizeof kCacheMagic);
  put(out, kCacheVersion);
  put(out, key);
  put<int32_t>(out, data.train.channels);
  put<int32_t>(out, data.train.rows);
  put<int32_t>(out, data.train.cols);
  put<uint32_t>(out, static_cast<uint32_t>(data.classes.size()));
  for (const std::string& c : data.classes) {
    put<uint32_t>(out, static_cast<uint32_t>(c.size()));
    out += c;
  }
  put_set(out, data.train);
  put_set(out, data.test);
  put<uint32_t>(out, static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(out.data()), static_cast<uInt>(out.size()))));
  return out;
}

// Reads a cache file front to back straight into the data set's arrays (no copy of the whole
// file: 70,000 28x28 pictures are 55 MB), keeping a running CRC-32 of what it read.
class CacheReader {
 public:
  explicit CacheReader(const std::string& path) : f_(std::fopen(path.c_str(), "rb")) {}
  ~CacheReader() {
    if (f_) std::fclose(f_);
  }
  bool ok() const { return f_ && ok_; }
  void bytes(void* to, size_t n) {
    if (!ok() || (n > 0 && std::fread(to, 1, n, f_) != n)) {
      ok_ = false;
      return;
    }
    crc_ = crc32(crc_, static_cast<const Bytef*>(to), static_cast<uInt>(n));
  }
  template <typename T>
  T get() {
    T v{};
    bytes(&v, sizeof v);
    return v;
  }
  // The stored CRC matches what was read, and nothing follows it.
  bool finish() {
    const uint32_t want = static_cast<uint32_t>(crc_);
    uint32_t stored = 0;
    if (!ok() || std::fread(&stored, 1, 4, f_) != 4) return false;
    return stored == want && std::fgetc(f_) == EOF;
  }

 private:
  std::FILE* f_;
  bool ok_ = true;
  uLong crc_ = crc32(0L, Z_NULL, 0);
};

// The cached set for `key`, or nothing when there is none or it cannot be trusted.
std::optional<TrainTestData> read_cache(const std::string& path, uint64_t key, size_t n_train, size_t n_test) {
  if (path.empty()) return std::nullopt;
  CacheReader r(path);
  char magic[sizeof kCacheMagic] = {};
  r.bytes(magic, sizeof magic);
  if (!r.ok() || std::memcmp(magic, kCacheMagic, sizeof magic) != 0) return std::nullopt;
  const auto version = r.get<uint32_t>();
  const auto stored_key = r.get<uint64_t>();
  const auto channels = r.get<int32_t>(), rows = r.get<int32_t>(), cols = r.get<int32_t>();
  const auto n_classes = r.get<uint32_t>();
  if (!r.ok() || version != kCacheVersion || stored_key != key || (channels != 1 && channels != 3) || rows < 1 ||
      cols < 1 || rows > 1024 || cols > 1024 || n_classes < 2 || n_classes > 256)
    return std::nullopt;
  TrainTestData d;
  for (uint32_t i = 0; i < n_classes; ++i) {
    const auto len = r.get<uint32_t>();
    if (!r.ok() || len > 4096) return std::nullopt;
    std::string name(len, '\0');
    r.bytes(name.data(), len);
    d.classes.push_back(std::move(name));
  }
  const size_t px = static_cast<size_t>(channels) * static_cast<size_t>(rows) * static_cast<size_t>(cols);
  for (auto [set, want] : {std::pair{&d.train, n_train}, std::pair{&d.test, n_test}}) {
    // The counts must be the folder's own before anything of that size is allocated.
    if (r.get<uint64_t>() != want || !r.ok()) return std::nullopt;
    set->channels = channels, set->rows = rows, set->cols = cols, set->num_classes = static_cast<int>(n_classes);
    set->labels.resize(want);
    r.bytes(set->labels.data(), want);
    set->images.resize(want * px);
    r.bytes(set->images.data(), want * px);
    for (uint8_t l : set->labels)
      if (l >= n_classes) return std::nullopt;
  }
  if (!r.finish()) return std::nullopt;
  return d;
}

// Every picture of a split, in class then file order, decoded in `channels` (1 grey, 3 RGB) and
// resized to (rows, cols); labels are the classes' positions in sorted order. `decoded` (optional)
// holds pictures already decoded in that colour, in the same order; an empty one is decoded here.
Dataset convert_split(const Split& split, int channels, int rows, int cols, const std::vector<Image>* decoded = nullptr) {
  Dataset d;
  d.channels = channels, d.rows = rows, d.cols = cols;
  const ColorMode mode = channels == 3 ? ColorMode::rgb : ColorMode::grey;
  d.num_classes = static_cast<int>(split.size());
  uint8_t label = 0;
  size_t at = 0;
  for (const auto& [name, files] : split) {
    for (const Picture& f : files) {
      const Image* kept = decoded && !(*decoded)[at].pixels.empty() ? &(*decoded)[at] : nullptr;
      ++at;
      const std::vector<uint8_t> px = resize_area(kept ? *kept : decode_file(f.path, mode), rows, cols);
      d.images.insert(d.images.end(), px.begin(), px.end());
      d.labels.push_back(label);
    }
    ++label;
  }
  return d;
}

}  // namespace

bool is_image_folder(const std::string& dir) {
  std::error_code ec;
  return fs::is_directory(fs::path(dir) / "train", ec) && fs::is_directory(fs::path(dir) / "test", ec);
}

TrainTestData load_image_folder(const std::string& dir, const DataOptions& opt, FolderLoad* how) {
  const fs::path root(dir), train_dir = root / "train", test_dir = root / "test";
  const auto train = list_split(train_dir), test = list_split(test_dir);
  TrainTestData out;
  for (const auto& [name, files] : train) {
    if (files.empty()) throw Error((train_dir / name).string() + " is an empty class folder (no pictures)");
    if (!test.count(name))
      throw Error("class '" + name + "' is in " + train_dir.string() + " but not in " + test_dir.string() +
                  " (both splits need the same class folders)");
    out.classes.push_back(name);
  }
  for (const auto& [name, files] : test)
    if (!train.count(name))
      throw Error("class '" + name + "' is in " + test_dir.string() + " but not in " + train_dir.string() +
                  " (both splits need the same class folders)");
  if (out.classes.size() < 2) throw Error(train_dir.string() + " has one class folder; a data set needs two or more");
  if (out.classes.size() > 256) throw Error(train_dir.string() + " has more than 256 class folders");

  size_t n_train = 0, n_test = 0;
  for (const auto& [name, files] : train) n_train += files.size();
  for (const auto& [name, files] : test) n_test += files.size();
  const uint64_t key = cache_key(root, train, test, opt);
  const std::string cached = cache_path(key);
  if (auto hit = read_cache(cached, key, n_train, n_test); hit && hit->classes == out.classes) {
    if (how) how->from_cache = true, how->cache_file = cached;
    return std::move(*hit);
  }

  // The colour and size. Decoded as asked (automatic: as each file stores it), every training
  // picture counts towards the most common size (ties: the smaller); pictures of at most 64x64
  // samples stay decoded for the conversion (70,000 of them are under 300 MB); larger ones are
  // decoded again then, one at a time.
  // Decoding tens of thousands of pictures takes seconds: say so (once per folder and options).
  const bool tell = n_train + n_test >= kAnnounceConversion;
  const auto t0 = std::chrono::steady_clock::now();
  if (tell)
    std::fprintf(stderr, "tailor: converting the %zu pictures of %s (once: later runs read the cache)\n", n_train + n_test,
                 dir.c_str());
  const ColorMode first = opt.color == DataColor::grey  ? ColorMode::grey
                          : opt.color == DataColor::rgb ? ColorMode::rgb
                                                        : ColorMode::keep;
  std::map<std::pair<int, int>, size_t> sizes;  // (height, width) -> count
  std::vector<Image> decoded;
  decoded.reserve(n_train);
  bool colour = opt.color == DataColor::rgb;
  for (const auto& [name, files] : train)
    for (const Picture& f : files) {
      Image img = decode_file(f.path, first);
      ++sizes[{img.height, img.width}];
      colour = colour || (opt.color == DataColor::automatic && shows_colour(img));
      const bool small = img.pixels.size() <= size_t{kMaxFolderImageSide} * kMaxFolderImageSide;
      decoded.push_back(small ? std::move(img) : Image{});
    }
  const int channels = colour ? 3 : 1;
  // Automatic colour: a grey set's colour files are decoded again as luminance (as --color grey
  // and predict decode them); a colour set's grey pictures get three planes.
  for (Image& img : decoded)
    if (img.channels != channels) img = channels == 3 ? with_planes(std::move(img), 3) : Image{};
  int rows = opt.rows, cols = opt.cols;
  if (rows <= 0 || cols <= 0) {
    const auto common = std::max_element(sizes.begin(), sizes.end(),
                                         [](const auto& a, const auto& b) { return a.second < b.second; })->first;
    rows = common.first, cols = common.second;
    if (std::max(rows, cols) > kMaxFolderImageSide) {
      const double f = static_cast<double>(kMaxFolderImageSide) / std::max(rows, cols);
      rows = std::max(1, static_cast<int>(std::lround(rows * f)));
      cols = std::max(1, static_cast<int>(std::lround(cols * f)));
    }
  }

  const uint64_t bytes = static_cast<uint64_t>(n_train + n_test) * static_cast<uint64_t>(channels) *
                         static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols);
  if (bytes > model_memory_limit() / 2)
    throw Error(dir + ": " + std::to_string(n_train + n_test) + " pictures of " + std::to_string(channels) + "x" +
                image_size_name(rows, cols) + " take " + std::to_string(bytes >> 20) +
                " MiB, more than half of this machine's memory (a smaller --image-size?)");
  out.train = convert_split(train, channels, rows, cols, &decoded);
  decoded = {};
  out.test = convert_split(test, channels, rows, cols);
  if (tell)
    std::fprintf(stderr, "tailor: converted to %s %s in %.1f s\n", channels == 3 ? "RGB" : "grey",
                 image_size_name(rows, cols).c_str(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  if (!cached.empty()) {
    try {
      fs::create_directories(fs::path(cached).parent_path());
      // A name of this writer's own first (process and thread): two trainings, MPI ranks or
      // threads converting the same folder at once must not write into one temporary file.
      // Then one rename into place.
      const std::string mine = cached + "." + std::to_string(::getpid()) + "." +
                               std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id()));
      write_file_atomic(mine, cache_bytes(key, out));
      if (std::rename(mine.c_str(), cached.c_str()) != 0) {
        const int err = errno;
        std::remove(mine.c_str());
        throw Error(std::strerror(err));
      }
      if (how) how->cache_file = cached;
    } catch (const std::exception& e) {  // a cache that cannot be written only costs time
      std::fprintf(stderr, "tailor: warning: cannot cache the converted pictures of %s in %s (%s)\n", dir.c_str(),
                   cached.c_str(), e.what());
    }
  }
  return out;
}

Dataset load_image_folder_test(const std::string& dir, const std::vector<std::string>& classes, int channels, int rows,
                               int cols) {
  const fs::path test_dir = fs::path(dir) / "test";
  const auto test = list_split(test_dir);
  std::vector<std::string> names;
  for (const auto& [name, files] : test) names.push_back(name);
  if (names != classes) {
    std::string want;
    for (const auto& c : classes) want += (want.empty() ? "" : ", ") + c;
    throw Error(test_dir.string() + "'s class folders are not the model's classes (" + want + ")");
  }
  if (channels != 1 && channels != 3) throw Error("a model of " + std::to_string(channels) + " input channels (1 or 3)");
  return convert_split(test, channels, rows, cols);
}

}  // namespace tailor
