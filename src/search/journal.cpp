#include "search/journal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace tailor {

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

std::string text_field(const nlohmann::json& record, const char* key) {
  if (!record.is_object()) return {};
  const auto it = record.find(key);
  return it != record.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::vector<nlohmann::json> Journal::open(const std::string& path, const nlohmann::json& header) {
  path_ = path;
  std::string text;
  if (::access(path.c_str(), F_OK) == 0) text = read_file(path);
  std::vector<nlohmann::json> records;
  size_t good = 0;  // bytes of whole, parsed lines
  for (size_t at = 0, line = 1; at < text.size(); ++line) {
    const size_t end = text.find('\n', at);
    const bool last = end == std::string::npos || end + 1 == text.size();
    nlohmann::json j = nlohmann::json::parse(text.substr(at, end == std::string::npos ? std::string::npos : end - at),
                                             nullptr, false);
    if (end == std::string::npos || j.is_discarded() || !j.is_object()) {
      if (last) break;  // torn by a kill: dropped, and redone
      throw Error(fmt::format("{}:{}: the search journal is damaged here (not a JSON record); it cannot be continued: "
                              "move it away to start the search again",
                              path, line));
    }
    records.push_back(std::move(j));
    at = end + 1;
    good = at;
  }
  if (!records.empty()) {
    const nlohmann::json& h = records.front();
    if (text_field(h, "type") != "search")
      throw Error(path + ":1: not a tailor search journal (its first record is not the search's header)");
    if (text_field(h, "space") != text_field(header, "space")) {
      const auto theirs = h.find("space");
      throw Error(fmt::format("{} was written by another search space (fingerprint {}, this space's {}): give this "
                              "search another --out, or move the directory away",
                              path, theirs == h.end() ? "none" : theirs->is_string() ? theirs->get<std::string>() : theirs->dump(),
                              text_field(header, "space")));
    }
  }
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("cannot open the search journal " + path + ": " + std::strerror(errno));
  if (good < text.size() && ::ftruncate(fd_, static_cast<off_t>(good)) != 0)
    throw Error("cannot cut the torn last line of " + path + ": " + std::strerror(errno));
  if (records.empty()) {
    append(header);
    records.push_back(header);
  }
  return records;
}

void Journal::append(const nlohmann::json& record) {
  const std::string line = record.dump() + "\n";
  std::lock_guard<std::mutex> lock(mutex_);
  if (broken_) throw Error("the search journal " + path_ + " could not be written earlier; the search stopped");
  // Where the record starts: a write that fails half-way is cut off again, so that no torn line
  // is left in the middle of the journal for the next record to follow.
  const off_t start = ::lseek(fd_, 0, SEEK_END);
  size_t done = 0;
  auto fail = [&](const char* what) {
    const std::string reason = std::strerror(errno);
    if (start < 0 || ::ftruncate(fd_, start) != 0) broken_ = true;
    throw Error(std::string("cannot ") + what + " the search journal " + path_ + ": " + reason);
  };
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("write");
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd_) != 0) fail("sync");
}

}  // namespace tailor
