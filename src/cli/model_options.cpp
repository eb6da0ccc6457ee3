#include "cli/model_options.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "dist/mpi.hpp"
#include "util/error.hpp"

namespace tailor::cli {

namespace {

std::vector<int64_t> parse_widths(const std::string& flag, const std::string& text) {
  std::vector<int64_t> out;
  if (text == "none" || text == "-") return out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    char* end = nullptr;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 1 || v > 100000)
      throw Error(flag + ": '" + text + "' is not a comma-separated list of widths in [1, 100000]");
    out.push_back(v);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

// 1e-12 -> "1e-12", 0.95 -> "0.95", 100000 -> "100000".
std::string fmt_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

void add_model_options(CLI::App& app, ModelOptions& o) {
  app.add_option("--model", o.family, "Model family: fcn (fully connected) or cnn (convolutional)")
      ->check(CLI::IsMember(family_names()))
      ->capture_default_str();
  app.add_option("--weights", o.weights,
                 "Weight budget (100k, 12500, 1.5M): widths are scaled so the count is within 5%. "
                 "Default 100k when neither --hidden nor --channels is given");
  app.add_option("--hidden", o.hidden,
                 "Hidden layer widths, comma-separated, or 'none' (default fcn 120,60; cnn 60); with --weights, "
                 "the shape to scale");
  app.add_option("--channels", o.channels,
                 "CNN conv block widths, comma-separated (default 16,32); each block is conv 3x3, "
                 "[batch norm], activation, 2x2 pool (--pool)");
  app.add_flag("--batchnorm,!--no-batchnorm", o.batchnorm,
               "Batch normalization after each conv and hidden layer (default on; --no-batchnorm turns it off)");
  app.add_option("--dropout", o.dropout, "Dropout probability after each hidden layer, in [0, 0.95]")
      ->check(finite_range(0.0, 0.95))
      ->capture_default_str();
  app.add_option("--activation", o.activation, "Activation: relu, sigmoid or tanh")
      ->check(CLI::IsMember(activation_names()))
      ->capture_default_str();
  app.add_option("--arch", o.arch,
                 "A CNN built from stages, '|' between them, then its head: e.g. '24,max | 48x2,res,max | 96x2,res | "
                 "gap'. A stage: WIDTH[xCOUNT] convolutions, each with batch norm and activation, and flags: k5 "
                 "(5x5 kernels), res (residual blocks of two), sep (depthwise-separable), max/avg/l2 (2x2 pool "
                 "after) or s2 (stride 2 first). Head: gap (global average pooling, default) or flat, then 'fc "
                 "W,W' hidden layers. With --weights every width is scaled, ratios kept (then moved to multiples of 8 where "
                 "all are 8 or more); instead of "
                 "--channels/--hidden (README, 'Architectures')");
  app.add_option("--pool", o.pool,
                 "CNN pooling, 2x2 stride 2: max, avg (the mean) or l2 (the square root of the sum of squares, "
                 "LPPool2d(2, 2))")
      ->check(CLI::IsMember(pool_names()))
      ->capture_default_str();
}

ResolvedModel resolve_model(const ModelOptions& o) {
  ResolvedModel r;
  r.spec = default_spec(parse_family(o.family));
  if (!o.hidden.empty()) r.spec.hidden = parse_widths("--hidden", o.hidden);
  if (!o.channels.empty()) {
    if (r.spec.family != Family::cnn) throw Error("--channels applies to --model cnn only");
    r.spec.channels = parse_widths("--channels", o.channels);
  }
  r.spec.batchnorm = o.batchnorm;
  r.spec.dropout = o.dropout;
  r.spec.activation = parse_activation(o.activation);
  r.spec.pool = parse_pool(o.pool);
  if (!o.arch.empty()) {
    if (r.spec.family != Family::cnn) throw Error("--arch builds a CNN: leave --model at cnn");
    if (!o.channels.empty() || !o.hidden.empty())
      throw Error("--arch gives the whole CNN (its fully connected widths as 'fc W,W'): leave out --channels and --hidden");
    parse_arch(o.arch, r.spec);
  }
  if (!o.weights.empty()) r.target = parse_weight_count(o.weights);
  else if (o.hidden.empty() && o.channels.empty() && o.arch.empty()) r.target = 100000;
  return r;
}

void add_tta_option(CLI::App& app, std::string& tta) {
  app.add_option("--tta", tta,
                 "Test-time augmentation: run (as the run was evaluated: train --tta), none, or flip (each "
                 "picture's logits averaged with its left-right mirror's)")
      ->check(CLI::IsMember({"run", "none", "flip"}))
      ->capture_default_str();
}

CLI::Validator finite_range(double lo, double hi) {
  const std::string desc = "in [" + fmt_number(lo) + ", " + fmt_number(hi) + "]";
  return CLI::Validator(
      [lo, hi, desc](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || end == text.c_str() || *end != '\0') return "'" + text + "' is not a number";
        if (!std::isfinite(v)) return "'" + text + "' is not a finite number (it must be " + desc + ")";
        if (v < lo || v > hi) return "'" + text + "' is outside [" + fmt_number(lo) + ", " + fmt_number(hi) + "]";
        return {};
      },
      "FLOAT " + desc);
}

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

int resolve_threads(int requested, const std::string& flag) {
  // Ranks of one mpirun on the same machine share its cores.
  const int local = dist::local_size(), cores = std::max(1, available_cores() / local);
  if (requested <= 0) return cores;
  if (requested > cores) {
    if (local > 1)
      std::fprintf(stderr, "tailor: warning: %s %d is more than the %d cores each of the %d ranks on this machine may use; "
                           "using %d\n", flag.c_str(), requested, cores, local, cores);
    else
      std::fprintf(stderr, "tailor: warning: %s %d is more than the %d cores this process may use; using %d\n",
                   flag.c_str(), requested, cores, cores);
    return cores;
  }
  return requested;
}

InterruptHandlers::InterruptHandlers(void (*handler)(int), bool restart) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = restart ? SA_RESTART : 0;
  for (auto [signal, old] : {std::pair{SIGINT, &old_int_}, std::pair{SIGTERM, &old_term_}}) {
    sigaction(signal, nullptr, old);
    if (old->sa_handler != SIG_IGN) sigaction(signal, &sa, nullptr);
  }
}

InterruptHandlers::~InterruptHandlers() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
}

void end_by_signal(int signal, const std::string& line) {
  std::fflush(stdout);
  std::fprintf(stderr, "%s%s\n", ::isatty(STDERR_FILENO) ? "\n" : "", line.c_str());
  std::fflush(stderr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(signal, &dfl, nullptr);
  ::raise(signal);
  ::_exit(128 + signal);  // not reached: the signal ends the process
}

void parse_named_options(CLI::App& app, const CLI::App* c, std::vector<std::string> args,
                         const std::vector<std::pair<std::string, std::string>>& options, const std::string& command) {
  for (const auto& [name, value] : options) {
    const CLI::Option* o = name.empty() || name == "help" ? nullptr : c->get_option_no_throw("--" + name);
    if (!o || o->get_lnames().empty()) throw OptionError(name, true, command + " has no option '" + name + "'");
    if (o->get_expected_max() == 0) {
      if (value != "true" && value != "false")
        throw OptionError(name, false, "--" + name + " is on or off: its value must be true or false, not '" + value + "'");
      args.push_back("--" + name + "=" + value);
    } else {
      args.push_back("--" + name);
      args.push_back(value);
    }
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes them in reverse
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    // CLI11's messages name the option ("--lr: Value nan not in range ..."): pick it out.
    std::string what = e.what(), option;
    for (const auto& [name, value] : options)
      if (what.find("--" + name) != std::string::npos && name.size() > option.size()) option = name;
    throw OptionError(option, false, what);
  }
}

}  // namespace tailor::cli
