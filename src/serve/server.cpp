#include "serve/server.hpp"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <numeric>
#include <semaphore>
#include <string_view>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "data/image.hpp"
#include "inspect/analysis.hpp"
#include "kernels/kernels.hpp"
#include "serve/static_files.hpp"
#include "train/checkpoint.hpp"
#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace tailor::serve {

namespace {

using nlohmann::json;

// A request the server refuses: status and one line for {"error": ...}.
struct HttpError {
  int status;
  std::string message;
};

struct RunState {
  std::string id, name, path;
  LoadedModel m;
  int64_t eval_batch = 256;
  json test_acc;  // from summary.json, or null
  std::shared_ptr<const Dataset> test;
  std::string test_error;
  // The model's activation buffers serve one request at a time; predictions over the test set
  // are made once, under the same lock, on first use.
  std::mutex mu;
  std::unique_ptr<Predictions> preds;
};

// Rounded for JSON: 0.123456789 -> 0.1235 (the page shows percentages, and the body stays small).
double round4(double v) { return std::round(v * 1e4) / 1e4; }

// Strings from the request (a path, a parameter) end up in error messages: bytes that are not
// UTF-8 become U+FFFD instead of making dump() throw (found by fuzz_http: a path with 0xFF in it
// threw from the error handler and ended the server).
void send_json(httplib::Response& res, const json& j, int status = 200) {
  res.status = status;
  res.set_content(j.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

bool flag_param(const httplib::Request& req, const char* name, bool fallback) {
  if (!req.has_param(name)) return fallback;
  const std::string v = req.get_param_value(name);
  if (v == "1" || v == "true" || v == "yes") return true;
  if (v == "0" || v == "false" || v == "no") return false;
  throw HttpError{400, std::string("parameter '") + name + "' must be 0 or 1, not '" + v + "'"};
}

int64_t int_param(const httplib::Request& req, const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  if (!req.has_param(name)) return fallback;
  const std::string v = req.get_param_value(name);
  int64_t out = 0;
  size_t used = 0;
  try {
    out = std::stoll(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != v.size())
    throw HttpError{400, std::string("parameter '") + name + "' must be a whole number, not '" + v + "'"};
  if (out < lo || out > hi)
    throw HttpError{400, std::string("parameter '") + name + "' is " + v + ", outside [" + std::to_string(lo) + ", " +
                             std::to_string(hi) + "]"};
  return out;
}

// A connection's socket as httplib reads and writes it, under a deadline. A request must arrive
// within `timeout` of the moment the connection opened (or went idle between keep-alive
// requests), plus one second for every kMinRate bytes it brings; its response gets a fresh
// allowance on the same terms. A client that sends half a header and waits, sends nothing, or
// trickles bytes, loses its connection when the allowance is spent, not holding a thread for
// good; reads stop after `max_bytes`, so no request can grow past the upload limit.
// A request that ran out of time is neither answered nor logged: timed_out() says so.
class DeadlineStream : public httplib::Stream {
 public:
  static constexpr double kMinRate = 64 * 1024;  // bytes per second

  DeadlineStream(int sock, double timeout, uint64_t max_bytes, const std::atomic<int>& listener)
      : sock_(sock), timeout_(timeout), max_bytes_(max_bytes), listener_(listener), deadline_(after(timeout)) {}
  bool timed_out() const { return timed_out_; }

  bool is_readable() const override { return wait(POLLIN); }
  bool is_writable() const override { return wait(POLLOUT); }

  ssize_t read(char* ptr, size_t size) override {
    if (received_ >= max_bytes_) return -1;
    size = static_cast<size_t>(std::min<uint64_t>(size, max_bytes_ - received_));
    if (!wait(POLLIN)) return -1;
    const ssize_t n = ::recv(sock_, ptr, size, 0);
    if (n > 0) {
      received_ += static_cast<uint64_t>(n);
      extend(n);
    }
    return n;
  }

  ssize_t write(const char* ptr, size_t size) override {
    // A request that ran out of time gets no answer (httplib would send 400): the connection closes.
    if (timed_out_) return -1;
    if (!writing_) {  // the response: computing it may have used the request's allowance
      writing_ = true;
      deadline_ = after(timeout_);
    }
    if (!wait(POLLOUT)) return -1;
    const ssize_t n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
    if (n > 0) extend(n);
    return n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { address(::getpeername, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address(::getsockname, ip, port); }
  socket_t socket() const override { return sock_; }

 private:
  using Clock = std::chrono::steady_clock;
  static Clock::time_point after(double seconds) {
    return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  }
  void extend(ssize_t bytes) {
    deadline_ += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(bytes / kMinRate));
  }
  // Polls in slices of at most 100 ms, so a server being stopped is noticed at once.
  bool wait(short events) const {
    for (;;) {
      if (listener_.load() < 0) return false;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
      if (left <= 0) {
        if (!writing_) timed_out_ = true;
        return false;
      }
      pollfd p{sock_, events, 0};
      const int rc = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 100)));
      if (rc > 0) return true;  // readable, writable, or closed/failed: recv or send tells which
      if (rc < 0 && errno != EINTR) return false;
    }
  }
  void address(int (*get)(int, sockaddr*, socklen_t*), std::string& ip, int& port) const {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    ip.clear();
    port = 0;
    if (get(sock_, reinterpret_cast<sockaddr*>(&a), &len) != 0) return;
    char buf[INET6_ADDRSTRLEN] = {};
    if (a.ss_family == AF_INET) {
      const auto* v4 = reinterpret_cast<const sockaddr_in*>(&a);
      ::inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf);
      port = ntohs(v4->sin_port);
    } else if (a.ss_family == AF_INET6) {
      const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a);
      ::inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
      port = ntohs(v6->sin6_port);
    }
    ip = buf;
  }

  int sock_;
  double timeout_;
  uint64_t max_bytes_, received_ = 0;
  const std::atomic<int>& listener_;
  Clock::time_point deadline_;
  bool writing_ = false;
  mutable bool timed_out_ = false;  // set by wait(), a const poll, when the request's time ran out
};

// One request held in memory, its response collected: Server::respond, for the fuzzer.
class MemoryStream : public httplib::Stream {
 public:
  explicit MemoryStream(const std::string& in) : in_(in) {}
  bool is_readable() const override { return true; }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    const size_t n = std::min(size, in_.size() - pos_);
    std::memcpy(ptr, in_.data() + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    out_.append(ptr, size);
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 0;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 0;
  }
  socket_t socket() const override { return 0; }
  std::string& out() { return out_; }

 private:
  const std::string& in_;
  size_t pos_ = 0;
  std::string out_;
};

// A thread for each open connection, started when none is free, up to `max`: a slow client
// holds only its own thread, never the one a normal request needs.
class ConnectionThreads : public httplib::TaskQueue {
 public:
  explicit ConnectionThreads(size_t max) : max_(max) {}
  void enqueue(std::function<void()> fn) override {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(fn));
    if (jobs_.size() > idle_ && threads_.size() < max_) threads_.emplace_back([this] { work(); });
    else cv_.notify_one();
  }
  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void work() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      ++idle_;
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      --idle_;
      if (jobs_.empty()) return;
      std::function<void()> fn = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      fn();
      lock.lock();
    }
  }
  size_t max_, idle_ = 0;
  bool stopping_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
};

class HttpServer : public httplib::Server {
 public:
  // httplib listens with a backlog of 5 connections: a burst of clients overflows it and some
  // connections are reset (measured: 152 of 200 concurrent requests failed). On Linux, listen()
  // on a listening socket sets a new backlog, so it is called again once the socket is bound.
  void enlarge_backlog() { ::listen(svr_sock_.load(), SOMAXCONN); }

  void limit(int max_connections, double request_timeout, uint64_t max_request_bytes) {
    max_connections_ = max_connections;
    request_timeout_ = request_timeout;
    max_request_bytes_ = max_request_bytes;
  }

  std::string respond(const std::string& request) {
    MemoryStream strm(request);
    bool closed = false;
    process_request(strm, true, closed, nullptr);
    return std::move(strm.out());
  }

 private:
  static constexpr int kRequestsPerConnection = 100;

  // Replaces httplib's loop over a connection's requests (it waits on each read for its read
  // timeout, with no bound on the whole request): at most max_connections_ are served at once,
  // each request under a DeadlineStream.
  bool process_and_close_socket(socket_t sock) override {
    bool ok = false;
    if (++open_ > max_connections_) {
      static constexpr char busy[] =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
          "Retry-After: 1\r\nContent-Length: 75\r\n\r\n"
          "{\"error\":\"the server has too many open connections; try again in a moment\"}";
      static_assert(sizeof busy - 1 - std::string_view(busy).find("\r\n\r\n") - 4 == 75);
      [[maybe_unused]] const ssize_t n = ::send(sock, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    } else {
      for (int i = 0; i < kRequestsPerConnection; ++i) {
        DeadlineStream strm(sock, request_timeout_, max_request_bytes_, svr_sock_);
        if (!strm.is_readable()) break;  // silent past the timeout, or the server is stopping
        bool closed = false;
        set_stream(&strm);
        ok = process_request(strm, i + 1 == kRequestsPerConnection, closed, nullptr);
        set_stream(nullptr);
        if (!ok || closed) break;
      }
    }
    --open_;
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ok;
  }

  // The stream of the request each connection thread is serving, for the logger.
  void set_stream(const DeadlineStream* s) {
    std::lock_guard<std::mutex> hold(streams_mutex_);
    if (s) {
      streams_[std::this_thread::get_id()] = s;
    } else {
      streams_.erase(std::this_thread::get_id());
    }
  }

 public:
  // Whether the request this thread is serving ran out of time (its logger call then stays quiet).
  bool timed_out_here() {
    std::lock_guard<std::mutex> hold(streams_mutex_);
    const auto it = streams_.find(std::this_thread::get_id());
    return it != streams_.end() && it->second->timed_out();
  }

 private:
  std::mutex streams_mutex_;
  std::unordered_map<std::thread::id, const DeadlineStream*> streams_;
  std::atomic<int> open_{0};
  int max_connections_ = 256;
  double request_timeout_ = 5;
  uint64_t max_request_bytes_ = 9u << 20;
};

}  // namespace

struct Server::Impl {
  Options opt;
  std::vector<std::unique_ptr<RunState>> runs;
  // By directory and the input it is converted to (channels x height x width): runs of one folder
  // at another size or colour get their own conversion.
  std::map<std::string, std::shared_ptr<const Dataset>> test_sets;
  HttpServer http;
  std::unique_ptr<std::counting_semaphore<>> compute;

  RunState& run_by_id(const std::string& id) {
    for (auto& r : runs)
      if (r->id == id) return *r;
    throw HttpError{404, "no run '" + id + "' (there are " + std::to_string(runs.size()) + ", numbered from 0)"};
  }

  RunState& run_param(const httplib::Request& req) {
    return run_by_id(req.has_param("run") ? req.get_param_value("run") : std::string("0"));
  }

  std::vector<RunState*> selected_runs(const httplib::Request& req) {
    std::vector<RunState*> out;
    if (!req.has_param("runs") || req.get_param_value("runs").empty()) {
      for (auto& r : runs) out.push_back(r.get());
      return out;
    }
    const std::string list = req.get_param_value("runs");
    size_t start = 0;
    while (start <= list.size()) {
      const size_t comma = std::min(list.find(',', start), list.size());
      RunState* r = &run_by_id(list.substr(start, comma - start));
      if (std::find(out.begin(), out.end(), r) == out.end()) out.push_back(r);
      start = comma + 1;
    }
    return out;
  }

  // The run's test-set predictions, made on first use (caller holds r.mu).
  const Predictions& predictions(RunState& r) {
    if (!r.test) throw HttpError{409, "run '" + r.name + "' has no test set: " + r.test_error};
    if (!r.preds)
      r.preds = std::make_unique<Predictions>(predict_dataset(*r.m.model, *r.test, r.m.norm, r.eval_batch, r.m.tta_flip));
    return *r.preds;
  }

  void load_run(const std::string& path, size_t index) {
    auto r = std::make_unique<RunState>();
    r->id = std::to_string(index);
    r->path = path;
    std::filesystem::path p(path);
    if (std::filesystem::is_regular_file(p)) p = p.parent_path();
    r->name = std::filesystem::absolute(p).lexically_normal().filename().string();
    if (r->name.empty()) r->name = std::filesystem::absolute(p).lexically_normal().parent_path().filename().string();
    r->m = load_model(checkpoint_path(path));
    apply_tta_option(r->m, opt.tta);
    r->eval_batch = r->m.eval_batch;
    const std::string summary = (p / "summary.json").string();
    if (std::filesystem::exists(summary)) {
      try {
        const json s = json::parse(read_file(summary));
        if (s.contains("test_acc")) r->test_acc = s["test_acc"];
      } catch (const std::exception&) {
        // A damaged summary only costs the figure on the page.
      }
    }
    const std::string dir = !opt.data_dir.empty() ? opt.data_dir : r->m.data_dir;
    const std::string key = dir + "\n" + std::to_string(r->m.spec.in_channels) + "x" +
                            std::to_string(r->m.spec.height) + "x" + std::to_string(r->m.spec.width);
    auto it = test_sets.find(key);
    if (it == test_sets.end()) {
      std::shared_ptr<const Dataset> d;
      try {
        d = std::make_shared<const Dataset>(load_test_set(dir, r->m.classes, static_cast<int>(r->m.spec.in_channels), static_cast<int>(r->m.spec.height), static_cast<int>(r->m.spec.width)));
      } catch (const Error& e) {
        r->test_error = e.what();
        std::fprintf(stderr, "tailor serve: warning: %s (confusion matrix and browsing are off for %s)\n", e.what(),
                     r->name.c_str());
      }
      it = test_sets.emplace(key, d).first;
    }
    r->test = it->second;
    if (r->test && (r->test->rows != r->m.spec.height || r->test->cols != r->m.spec.width ||
                    r->test->channels != r->m.spec.in_channels)) {
      r->test_error = "the test images in " + dir + " are not the model's size";
      r->test.reset();
    }
    if (!r->test && r->test_error.empty()) r->test_error = "the test set in " + dir + " could not be read";
    runs.push_back(std::move(r));
  }

  json runs_json() {
    json list = json::array();
    for (auto& r : runs)
      list.push_back({{"id", r->id},
                      {"name", r->name},
                      {"path", r->path},
                      {"model", family_name(r->m.spec.family)},
                      {"widths", r->m.spec.widths_str()},
                      {"weights", count_weights(r->m.spec)},
                      {"test_acc", r->test_acc},
                      {"classes", r->m.classes},
                      {"test_set", r->test != nullptr}});
    return {{"runs", list}};
  }

  void predict(const httplib::Request& req, httplib::Response& res) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<RunState*> chosen = selected_runs(req);
    const bool convert = flag_param(req, "convert", true), saliency = flag_param(req, "saliency", false);
    if (req.body.empty()) throw HttpError{400, "empty body: send the bytes of a PNG, JPEG or PGM picture"};
    // Decoded once per colour the chosen runs take (grey, RGB), as each run's model wants it.
    std::optional<Image> decoded[2];

    json results = json::array(), shown;
    for (RunState* r : chosen) {
      const int rows = static_cast<int>(r->m.spec.height), cols = static_cast<int>(r->m.spec.width);
      const int channels = static_cast<int>(r->m.spec.in_channels);
      std::optional<Image>& img = decoded[channels == 3 ? 1 : 0];
      if (!img) img = decode_for_model(r->m, req.body, "uploaded picture", opt.max_pixels);
      std::vector<uint8_t> px;
      if (convert) {
        px = fit_for_model(r->m, *img);
      } else {
        if (img->width != cols || img->height != rows)
          throw HttpError{400, "with convert=0 the picture must be " + std::to_string(cols) + "x" + std::to_string(rows) +
                                   ", not " + std::to_string(img->width) + "x" + std::to_string(img->height)};
        px = img->pixels;
      }
      if (shown.is_null()) shown = {{"width", cols}, {"height", rows}, {"channels", channels}, {"pixels", px}};
      const std::vector<float> x = input_for_model(r->m, px);

      const int64_t k = r->m.spec.classes;
      std::vector<float> probs, sal, logits;
      int64_t best = 0;  // the arg-max of the logits, as `tailor eval` counts
      {
        std::lock_guard<std::mutex> lock(r->mu);
        logits = logits_for_model(r->m, x);
        probs = softmax(logits.data(), k);
        best = std::max_element(logits.begin(), logits.end()) - logits.begin();
        if (saliency) sal = normalise_map(gradient_saliency(*r->m.model, x.data(), best, channels));
      }
      std::vector<int64_t> order(static_cast<size_t>(k));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return probs[a] > probs[b]; });
      json top = json::array(), pj = json::array();
      for (int64_t j = 0; j < std::min<int64_t>(3, k); ++j)
        top.push_back({{"class", r->m.classes[order[j]]}, {"index", order[j]}, {"prob", round4(probs[order[j]])}});
      for (float p : probs) pj.push_back(round4(p));
      json one = {{"run", r->id}, {"name", r->name}, {"predicted", r->m.classes[best]},
                  {"predicted_index", best}, {"probs", pj}, {"top", top}, {"logits", logits}};
      if (saliency) {
        json sj = json::array();
        for (float v : sal) sj.push_back(round4(v));
        one["saliency"] = std::move(sj);
      }
      results.push_back(std::move(one));
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    send_json(res, {{"image", shown}, {"results", results}, {"ms", round4(ms)}});
  }

  void confusion(const httplib::Request& req, httplib::Response& res) {
    RunState& r = run_param(req);
    std::lock_guard<std::mutex> lock(r.mu);
    const Predictions& p = predictions(r);
    const std::vector<int64_t> counts = confusion_counts(p);
    json rows = json::array();
    int64_t correct = 0;
    for (int64_t t = 0; t < p.classes; ++t) {
      rows.push_back(std::vector<int64_t>(counts.begin() + t * p.classes, counts.begin() + (t + 1) * p.classes));
      correct += counts[static_cast<size_t>(t * p.classes + t)];
    }
    send_json(res, {{"run", r.id}, {"classes", r.m.classes}, {"counts", rows}, {"count", p.n},
                    {"accuracy", p.n ? round4(100.0 * correct / p.n) : 0.0}});
  }

  void cell(const httplib::Request& req, httplib::Response& res) {
    RunState& r = run_param(req);
    const int64_t k = r.m.spec.classes;
    if (!req.has_param("true") || !req.has_param("pred"))
      throw HttpError{400, "parameters 'true' and 'pred' (class indices) are required"};
    const auto t = static_cast<int32_t>(int_param(req, "true", 0, 0, k - 1));
    const auto pr = static_cast<int32_t>(int_param(req, "pred", 0, 0, k - 1));
    const int64_t limit = int_param(req, "limit", 60, 0, 1000);
    std::lock_guard<std::mutex> lock(r.mu);
    const Predictions& p = predictions(r);
    const std::vector<int64_t> all = cell_images(p, t, pr, p.n);
    json images = json::array();
    for (size_t i = 0; i < all.size() && static_cast<int64_t>(i) < limit; ++i)
      images.push_back({{"index", all[i]}, {"prob", round4(p.prob(all[i], pr))}});
    send_json(res, {{"run", r.id}, {"true", t}, {"pred", pr}, {"total", all.size()}, {"images", images}});
  }

  void test_image(const httplib::Request& req, httplib::Response& res) {
    const Dataset* test = nullptr;
    if (req.has_param("run")) {
      RunState& r = run_param(req);
      if (!r.test) throw HttpError{409, "run '" + r.name + "' has no test set: " + r.test_error};
      test = r.test.get();
    } else {
      for (auto& r : runs)
        if (r->test) {
          test = r->test.get();
          break;
        }
      if (!test) throw HttpError{409, "no run has a test set: " + runs.front()->test_error};
    }
    const std::string digits = req.matches[1];
    if (digits.size() > 9 || std::stoll(digits) >= static_cast<int64_t>(test->size()))
      throw HttpError{404, "test image " + digits + " does not exist (the test set has " + std::to_string(test->size()) +
                               ", numbered from 0)"};
    const int64_t index = std::stoll(digits);
    const int scale = static_cast<int>(int_param(req, "scale", 1, 1, 16));
    Image img;
    img.width = test->cols * scale;
    img.height = test->rows * scale;
    img.channels = test->channels;
    img.pixels.resize(img.plane() * static_cast<size_t>(img.channels));
    for (int c = 0; c < img.channels; ++c) {
      const uint8_t* src = test->images.data() + index * test->pixels() + static_cast<size_t>(c) * test->rows * test->cols;
      uint8_t* dst = img.pixels.data() + static_cast<size_t>(c) * img.plane();
      for (int y = 0; y < img.height; ++y)
        for (int x = 0; x < img.width; ++x)
          dst[static_cast<size_t>(y) * img.width + x] = src[(y / scale) * test->cols + x / scale];
    }
    res.set_content(encode_png(img), "image/png");
  }

  void static_file(const std::string& name, httplib::Response& res) {
    const bool app_file = name == "index.html" || name == "app.js" || name == "app.css";
    if (app_file && !opt.static_dir.empty()) {
      if (auto body = file_in_dir(opt.static_dir, name)) {
        res.set_content(*body, mime_type(name));
        return;
      }
    } else if (auto f = builtin_file(name)) {
      res.set_content(std::string(f->content), f->mime);
      return;
    }
    throw HttpError{404, "no such file: " + name};
  }

  // Every handler runs inside this: errors become {"error": ...} with the right status.
  httplib::Server::Handler guarded(void (Impl::*fn)(const httplib::Request&, httplib::Response&)) {
    return [this, fn](const httplib::Request& req, httplib::Response& res) {
      try {
        // At most --threads requests compute at once; the others wait here, not on a socket.
        compute->acquire();
        struct Release {
          std::counting_semaphore<>& s;
          ~Release() { s.release(); }
        } release{*compute};
        (this->*fn)(req, res);
      } catch (const HttpError& e) {
        send_json(res, {{"error", e.message}}, e.status);
      } catch (const ImageTooLarge& e) {
        send_json(res, {{"error", e.what()}}, 413);
      } catch (const NotAnImage& e) {
        send_json(res, {{"error", e.what()}}, 415);
      } catch (const Error& e) {
        send_json(res, {{"error", e.what()}}, 400);
      } catch (const std::bad_alloc&) {
        send_json(res, {{"error", "out of memory"}}, 503);
      } catch (const std::exception& e) {
        send_json(res, {{"error", std::string("internal error: ") + e.what()}}, 500);
      }
    };
  }

  void routes() {
    http.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
      // Each worker thread runs its model on one core: many requests in parallel, not one
      // request over many threads.
      kernels::set_threads(1);  // this connection thread's own OpenMP setting
      // A body without a length would be read until the client closes the connection (httplib
      // reads to the end), so the client would wait for the request timeout and get no answer:
      // it gets 411 at once. This runs before httplib reads any body.
      // The methods whose body httplib 0.11 reads; it takes a body as chunked only when the header
      // is exactly "chunked", in any case.
      const bool reads_body = req.method == "POST" || req.method == "PUT" || req.method == "PATCH" ||
                              req.method == "DELETE" || req.method == "PRI";
      if (reads_body && !req.has_header("Content-Length") &&
          strcasecmp(req.get_header_value("Transfer-Encoding").c_str(), "chunked") != 0) {
        send_json(res, {{"error", req.method + " needs a body and its Content-Length header"}}, 411);
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    http.Get("/", guarded(&Impl::index));
    http.Get(R"(/static/([^/]+))", guarded(&Impl::static_route));
    http.Get("/api/health", [this](const httplib::Request&, httplib::Response& res) {
      send_json(res, {{"ok", true}, {"runs", runs.size()}});
    });
    http.Get("/api/runs", [this](const httplib::Request&, httplib::Response& res) { send_json(res, runs_json()); });
    http.Post("/api/predict", guarded(&Impl::predict));
    http.Get("/api/confusion", guarded(&Impl::confusion));
    http.Get("/api/cell", guarded(&Impl::cell));
    http.Get(R"(/api/testimage/(\d+)\.png)", guarded(&Impl::test_image));
    // Unmatched paths, too-large bodies and the like: httplib sets the status, we add the JSON.
    http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      std::string msg = "HTTP " + std::to_string(res.status);
      if (res.status == 404) msg = "no such path: " + req.path;
      if (res.status == 413)
        msg = "request body too large (limit " + std::to_string(opt.max_upload) + " bytes, --max-upload)";
      if (res.status == 400) msg = "bad request (a POST needs a body with its Content-Length)";
      if (res.status == 405) msg = "method " + req.method + " not allowed on " + req.path;
      send_json(res, {{"error", msg}}, res.status);
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      send_json(res, {{"error", "internal error"}}, 500);
    });
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      if (http.timed_out_here()) return;  // not a request: a client too slow to send one
      if (opt.log || (res.status >= 400 && opt.log_errors))
        std::fprintf(stderr, "tailor serve: %s %s -> %d\n", req.method.c_str(), req.path.c_str(), res.status);
    });
    http.set_payload_max_length(opt.max_upload);
    // Headers and body go out in separate writes: without TCP_NODELAY a keep-alive client waits
    // for the delayed ACK (measured: 42 ms per request instead of 0.5 ms).
    http.set_tcp_nodelay(true);
    compute = std::make_unique<std::counting_semaphore<>>(std::max(1, opt.threads));
    // Refusing a connection past the limit takes its thread a moment: a few spare threads for it.
    const size_t connection_threads = static_cast<size_t>(std::max(1, opt.max_connections)) + 16;
    http.new_task_queue = [connection_threads] { return new ConnectionThreads(connection_threads); };
    http.limit(std::max(1, opt.max_connections), opt.request_timeout, opt.max_upload + (1u << 20));
  }

  void index(const httplib::Request&, httplib::Response& res) { static_file("index.html", res); }
  void static_route(const httplib::Request& req, httplib::Response& res) { static_file(req.matches[1], res); }
};

Server::Server(const std::vector<std::string>& runs, Options opt) : impl_(std::make_unique<Impl>()) {
  if (runs.empty()) throw Error("tailor serve needs at least one run directory");
  impl_->opt = std::move(opt);
  for (size_t i = 0; i < runs.size(); ++i) impl_->load_run(runs[i], i);
  impl_->routes();
}

Server::~Server() = default;

int Server::bind() {
  const Options& o = impl_->opt;
  int port = o.port;
  if (o.port == 0) {
    port = impl_->http.bind_to_any_port(o.host);
    if (port < 0) throw Error("cannot listen on " + o.host + " (--host): no free port");
  } else if (!impl_->http.bind_to_port(o.host, o.port)) {
    throw Error("cannot listen on " + o.host + ":" + std::to_string(o.port) +
                " (--host/--port): the port is in use or the address is not this machine's");
  }
  impl_->http.enlarge_backlog();
  return port;
}

void Server::run() { impl_->http.listen_after_bind(); }

void Server::stop() { impl_->http.stop(); }

std::string Server::respond(const std::string& request) { return impl_->http.respond(request); }

}  // namespace tailor::serve
