#include "util/dir_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace tailor {

namespace {

// This process's command line, NUL-separated in /proc, as one line.
std::string own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (char& c : raw)
    if (c == '\0') c = ' ';
  while (!raw.empty() && raw.back() == ' ') raw.pop_back();
  return raw.size() > 300 ? raw.substr(0, 300) + "..." : raw;
}

}  // namespace

DirLock::DirLock(const std::string& dir, const std::string& what) {
  ensure_writable_dir(dir);
  const std::string path = (std::filesystem::path(dir) / kDirLockFile).string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  // Another user's lock file in a shared directory: a read-only descriptor locks as well.
  if (fd_ < 0 && errno == EACCES) fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw Error("cannot open " + path + ": " + std::strerror(errno));
  // A holder that is being killed (a sweep started again at once after kill -9) lets go within
  // milliseconds: wait up to half a second before calling the directory taken.
  int err = 0;
  for (int tries = 0;; ++tries) {
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) break;
    err = errno;
    if (err == EINTR) continue;
    if (err != EWOULDBLOCK || tries >= 25) break;
    ::usleep(20000);
  }
  if (err == ENOSYS || err == ENOLCK || err == EOPNOTSUPP) {
    // A file system without flock (some NFS and Lustre mounts): run unguarded rather than refuse.
    std::fprintf(stderr, "tailor: warning: %s cannot be locked on this file system (%s): nothing stops a second writer\n",
                 dir.c_str(), std::strerror(err));
    release();
    return;
  }
  if (err != 0) {
    std::string holder;
    char buf[512];
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    if (n > 0) holder.assign(buf, static_cast<size_t>(n));
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    release();
    if (err != EWOULDBLOCK) throw Error("cannot lock " + path + ": " + std::strerror(err));
    throw Error(what + " " + dir + " is in use by " + (holder.empty() ? "another writer" : holder) +
                ": wait for it to end, or stop it");
  }
  // Who holds it, for the message a second writer gets.
  std::ostringstream who;
  who << "process " << ::getpid() << " (" << own_command_line() << ")\n";
  const std::string text = who.str();
  if (::ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] const ssize_t w = ::pwrite(fd_, text.data(), text.size(), 0);
  }
}

DirLock::DirLock(DirLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

DirLock& DirLock::operator=(DirLock&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

DirLock::~DirLock() { release(); }

void DirLock::release() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor ends the flock
  fd_ = -1;
}

}  // namespace tailor
