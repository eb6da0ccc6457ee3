#pragma once
// A search's journal, OUT/search.jsonl: one JSON record per line, appended and synced to the disk
// one by one (fsync), so that a search killed at any moment (kill -9, a power cut) loses at most
// the record being written. Reading it back: a last line cut short by such a kill is dropped (and
// cut off the file, to be redone); a damaged line anywhere else, or a first line that names
// another search space, is refused with one line.
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tailor {

class Journal {
 public:
  Journal() = default;
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Opens (or creates) `path`. A new journal gets `header` as its first record; an existing one
  // must start with a header whose "space" equals header["space"]. The records already there,
  // header first, are returned. Throws tailor::Error naming the file and line.
  std::vector<nlohmann::json> open(const std::string& path, const nlohmann::json& header);
  // Appends one record (one line) and syncs it to the disk; thread-safe.
  void append(const nlohmann::json& record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  bool broken_ = false;  // a failed write could not be cut off: nothing more is appended
  std::mutex mutex_;
};

// A record's text field, or "" where it is missing or not text (json::value throws there): a
// damaged journal is reported in words, never by a type error.
std::string text_field(const nlohmann::json& record, const char* key);

}  // namespace tailor
