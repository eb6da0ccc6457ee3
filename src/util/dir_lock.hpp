#pragma once
// One writer per directory: a run, sweep or search directory is held by whoever writes into it.
// The hold is an exclusive flock(2) on DIR/.tailor.lock, which the kernel releases when the holder
// closes it or dies, so a `kill -9` never leaves a stale lock behind and `--resume` after a crash
// works. Two holders in one process (two threads, or two trainings from Python) exclude each
// other as two processes do: each open of the file is its own lock.
#include <string>

namespace tailor {

class DirLock {
 public:
  DirLock() = default;
  // Creates `dir` if needed and holds it; throws tailor::Error naming the holder (its process id
  // and command line, as it wrote them into the lock file) when another writer still has it after
  // half a second. `what` names the directory in that message ("run directory", "sweep
  // directory"). On a file system without flock it warns and holds nothing.
  DirLock(const std::string& dir, const std::string& what);
  DirLock(DirLock&& other) noexcept;
  DirLock& operator=(DirLock&& other) noexcept;
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  ~DirLock();

  bool held() const { return fd_ >= 0; }
  void release();

 private:
  int fd_ = -1;
};

// The lock file's name inside a held directory.
inline constexpr const char* kDirLockFile = ".tailor.lock";

}  // namespace tailor
