// tailor: train, evaluate and inspect small FCN and CNN image classifiers.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "dist/mpi.hpp"
#include "kernels/isa.hpp"
#include "train/trainer.hpp"
#include "util/error.hpp"

static bool has_command(CLI::App& app, const std::string& name) {
  for (CLI::App* sub : app.get_subcommands({}))
    if (sub->get_name() == name) return true;
  return false;
}

namespace {
// MPI_Finalize on every way out of main (a no-op when no launcher started tailor).
struct MpiSession {
  MpiSession() { tailor::dist::init(); }
  ~MpiSession() { tailor::dist::finalize(); }
};

// OpenMP's idle threads (GCC's libgomp, which oneDNN and tailor's kernels share) spin 300,000
// times at every barrier before they sleep. Alone, that saves a wake-up per parallel region;
// beside another busy process on the same cores, the spinning takes the cores that the other's
// threads need, and the barriers of both wait on threads that are not running: CNN-100k epochs
// went from 2.3 s to 10-34 s with two trainings at once on 2 cores. A spin bounded at 3,000
// (a few microseconds) cost nothing measurable alone and halved the worst contended epoch
// (docs/performance.md, bench/contention.sh). libgomp reads the setting from the environment
// once, before main, so tailor sets it and starts itself again; a user's own OMP_WAIT_POLICY or
// GOMP_SPINCOUNT is left as it is. Returns only if nothing was to be done or the exec failed.
void bound_openmp_spinning(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  if (::setenv("GOMP_SPINCOUNT", "3000", 1) != 0) return;
  ::execv("/proc/self/exe", argv);
  ::unsetenv("GOMP_SPINCOUNT");  // the exec failed: run on, with libgomp's default as loaded
}

// An error on one rank of several: the others may be waiting in a collective, so all end now.
int failed(int code) {
  if (tailor::dist::size() > 1) tailor::dist::abort_all(code);
  return code;
}
}  // namespace

int main(int argc, char** argv) {
  bound_openmp_spinning(argv);
  // The kernels' instruction set, before anything runs one (kernels/isa.hpp).
  try {
    tailor::kernels::choose_isa(std::getenv("TAILOR_ISA"));
  } catch (const tailor::Error& e) {
    std::fprintf(stderr, "tailor: error: %s\n", e.what());
    return 2;
  }
  const MpiSession mpi;
  CLI::App app{"tailor " + tailor::tailor_version() +
               ": train, compare and inspect small FCN and CNN image classifiers (Fashion-MNIST by default)"};
  app.set_version_flag("--version", tailor::tailor_version());
  app.require_subcommand(1);
  std::vector<tailor::cli::Run> commands{tailor::cli::add_train(app), tailor::cli::add_eval(app),
                                         tailor::cli::add_predict(app), tailor::cli::add_summary(app),
                                         tailor::cli::add_bench(app), tailor::cli::add_sweep(app),
                                         tailor::cli::add_search(app),
                                         tailor::cli::add_report(app),
                                         tailor::cli::add_inspect(app), tailor::cli::add_serve(app),
                                         tailor::cli::add_export(app), tailor::cli::add_data(app)};
  app.footer("Run 'tailor COMMAND --help' for the options of each command.");
  // A user who repeats an option means the last one.
  for (CLI::App* sub : app.get_subcommands({}))
    for (CLI::Option* opt : sub->get_options()) opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  if (argc > 1 && argv[1][0] != '-' && !has_command(app, argv[1])) {
    std::fprintf(stderr, "tailor: error: unknown command '%s' (expected train, eval, predict, summary, bench, sweep, report, inspect, serve, export or data)\n", argv[1]);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "tailor: error: %s\n", e.what());
    return 2;
  }
  try {
    for (auto& run : commands) {
      int rc = run();
      if (rc >= 0) return rc;
    }
    return 0;
  } catch (const tailor::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "tailor: error: %s\n", e.what());
    return failed(1);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "tailor: error: out of memory\n");
    return failed(1);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tailor: error: %s\n", e.what());
    return failed(1);
  }
}
