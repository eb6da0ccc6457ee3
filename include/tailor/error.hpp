#pragma once
// The errors tailor throws, in the library and the program alike.
#include <cstdint>
#include <stdexcept>
#include <string>

namespace tailor {

// Everything a user can get wrong (files, options, values, data): one line saying what and what
// to do. The program prints `tailor: error: <what>` and exits non-zero.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// An option of `train` given a bad value, or (unknown) one that `train` does not have; `option`
// is its name as the command line spells it, without the dashes ("lr", "batch-size").
class OptionError : public Error {
 public:
  OptionError(const std::string& option, bool unknown, const std::string& what)
      : Error(what), option(option), unknown(unknown) {}
  std::string option;
  bool unknown;
};

// A training stopped at a step boundary because its caller asked (Ctrl-C, SIGTERM, a poll or an
// epoch callback that threw). The run directory keeps the resume state of the last finished
// epoch: resuming it continues bit for bit as if nothing had happened.
class Interrupted : public Error {
 public:
  Interrupted(int64_t epochs_done, int value, const std::string& dir)
      : Error(epochs_done > 0 ? "interrupted after epoch " + std::to_string(epochs_done) +
                                    ": continue with tailor train --resume " + dir
                              : "interrupted in its first epoch: start it again with tailor train --resume " + dir),
        epochs_done(epochs_done), value(value), dir(dir) {}
  int64_t epochs_done;  // finished and kept
  int value;            // what stopped it (a signal number for Ctrl-C and SIGTERM)
  std::string dir;
};

}  // namespace tailor
