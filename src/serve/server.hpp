#pragma once
// `tailor serve`: a local web app and JSON API over one or more trained runs (docs/serve.md).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tailor::serve {

struct Options {
  std::string host = "127.0.0.1";
  int port = 8080;              // 0: any free port
  std::string data_dir;         // test set; empty: each run's own data directory
  uint64_t max_upload = 8u << 20;  // bytes of a request body
  uint64_t max_pixels = 16u << 20; // of an uploaded picture, checked from its header
  int threads = 8;              // requests computed at once (each runs its model on one core)
  int max_connections = 256;    // open at once, each with its own thread; more get 503 and are closed
  double request_timeout = 5;   // seconds a request may take to arrive (also the keep-alive idle limit)
  std::string static_dir;       // serve index.html, app.js, app.css from here (development)
  bool log = false;             // one line per request on stderr
  bool log_errors = true;       // one line per refused request (4xx, 5xx) on stderr
  std::string tta = "run";      // test-time augmentation of every run: run (each its own), none, flip
};

class Server {
 public:
  // Loads every run's model.ckpt (and the test sets, when present); throws tailor::Error.
  Server(const std::vector<std::string>& runs, Options opt);
  ~Server();
  // Binds the address; returns the port (the chosen one for port 0). Throws when it cannot.
  int bind();
  // Serves until stop() (from another thread); returns when the server has stopped.
  void run();
  void stop();

  // One raw HTTP request through the server's own parser and handlers, without a socket; returns
  // the raw response (the fuzzer and tests use it).
  std::string respond(const std::string& request);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tailor::serve
