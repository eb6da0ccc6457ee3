#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <thread>

#include "cli/commands.hpp"
#include "cli/model_options.hpp"
#include "serve/server.hpp"
#include "util/error.hpp"

namespace tailor::cli {

namespace {
volatile std::sig_atomic_t g_stop_requested = 0;

struct ServeArgs {
  std::vector<std::string> runs;
  serve::Options opt;
  std::string max_upload = "8MB";
};

// "8MB", "512KB", "1048576" -> bytes.
uint64_t parse_bytes(const std::string& text) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = text.substr(used);
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double mult = 0;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "KB" || unit == "K") mult = 1024;
  else if (unit == "MB" || unit == "M") mult = 1024.0 * 1024;
  else if (unit == "GB" || unit == "G") mult = 1024.0 * 1024 * 1024;
  if (used == 0 || mult == 0 || !(v > 0) || v * mult > 4.0 * 1024 * 1024 * 1024)
    throw Error("--max-upload '" + text + "' is not a size between 1 byte and 4GB (e.g. 8MB, 512KB)");
  return static_cast<uint64_t>(v * mult);
}
}  // namespace

Run add_serve(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* c = app.add_subcommand(
      "serve", "Local web app: draw or upload an item, see every run's prediction and saliency, browse the test set");
  c->add_option("runs", a->runs, "Run directories (or their model.ckpt); the first is run 0")->required();
  c->add_option("--host", a->opt.host, "Address to listen on (127.0.0.1: this machine only)")->capture_default_str();
  c->add_option("--port", a->opt.port, "Port (0: any free port; the URL is printed)")
      ->check(CLI::Range(0, 65535))->capture_default_str();
  c->add_option("--data", a->opt.data_dir, "Data directory with the t10k test set (default: each run's own)");
  c->add_option("--max-upload", a->max_upload, "Largest request body (e.g. 8MB, 512KB); larger gets 413")
      ->capture_default_str();
  add_tta_option(*c, a->opt.tta);
  c->add_option("--threads", a->opt.threads, "Requests computed at once (each runs its model on one core)")
      ->check(CLI::Range(1, 256))->capture_default_str();
  c->add_option("--max-connections", a->opt.max_connections,
                "Connections open at once (each waits on its own thread); more are answered 503 and closed")
      ->check(CLI::Range(1, 900))->capture_default_str();
  c->add_option("--request-timeout", a->opt.request_timeout,
                "Seconds a request may take to arrive (plus 1 s per 64 KiB of it), and a keep-alive connection "
                "may stay idle; slower clients are disconnected")
      ->check(finite_range(0.1, 3600))->capture_default_str();
  c->add_option("--static-dir", a->opt.static_dir,
                "Serve index.html, app.js and app.css from this folder instead of the built-in ones (front-end work)")
      ->check(CLI::ExistingDirectory);
  c->add_flag("--log", a->opt.log, "Log every request on stderr (refused ones are always logged)");
  return [a, c]() {
    if (!c->parsed()) return -1;
    a->opt.max_upload = parse_bytes(a->max_upload);
    // SIGINT/SIGTERM only set a flag (libraries start threads of their own before main, so the
    // signal may land on any thread); a watcher thread sees it and stops the server cleanly.
    struct sigaction sa {};
    sa.sa_handler = [](int) { g_stop_requested = 1; };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    serve::Server server(a->runs, a->opt);
    const int port = server.bind();
    std::printf("tailor serve: %zu run%s loaded\n", a->runs.size(), a->runs.size() == 1 ? "" : "s");
    std::printf("tailor serve: listening on http://%s:%d\n", a->opt.host.c_str(), port);
    std::fflush(stdout);
    std::atomic<bool> finished{false};
    std::thread watcher([&] {
      while (!finished.load()) {
        if (g_stop_requested) {
          server.stop();
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
    server.run();
    finished = true;
    watcher.join();
    std::printf("tailor serve: stopped\n");
    return 0;
  };
}

}  // namespace tailor::cli
