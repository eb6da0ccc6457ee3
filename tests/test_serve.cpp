// tailor serve's JSON API, in-process on a free port, driven by an HTTP client: answers equal
// `tailor eval`'s, bad input is a 4xx with a JSON error (never a crash), static files stay in
// their folder, 200 concurrent predictions are all answered correctly, and clients that send
// slowly or not at all cannot hold up the others.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "data/dataset.hpp"
#include "data/image.hpp"
#include "serve/server.hpp"
#include "tiny_data.hpp"

namespace tailor {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A server in a thread of the test process; stopped and joined on destruction.
class Running {
 public:
  Running(const std::vector<std::string>& runs, serve::Options opt) : server_(runs, [&] {
    opt.port = 0;
    return opt;
  }()) {
    port_ = server_.bind();
    thread_ = std::thread([this] { server_.run(); });
  }
  ~Running() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30, 0);
    return c;
  }

 private:
  serve::Server server_;
  int port_ = 0;
  std::thread thread_;
};

// Predicted class of every test image as `tailor eval --predictions` writes them.
std::vector<int> eval_predictions(const std::string& run, const std::string& scratch, const std::string& data) {
  const std::string csv = scratch + "/pred.csv";
  auto r = testing::run_tailor("eval " + run + " --data " + data + " --predictions " + csv, scratch);
  EXPECT_EQ(r.code, 0) << r.err;
  std::istringstream in(testing::slurp(csv));
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "index,true,predicted,probability");
  std::vector<int> pred;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string index, truth, p;
    std::getline(f, index, ',');
    std::getline(f, truth, ',');
    std::getline(f, p, ',');
    EXPECT_EQ(std::stoul(index), pred.size());
    pred.push_back(std::stoi(p));
  }
  return pred;
}

// A PNG whose header claims width x height (valid signature, IHDR and CRC; no pixel data).
std::string png_header_only(uint32_t width, uint32_t height) {
  auto be32 = [](std::string& s, uint32_t v) {
    for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  };
  std::string png("\x89PNG\r\n\x1a\n", 8), chunk = "IHDR";
  be32(chunk, width);
  be32(chunk, height);
  chunk += std::string("\x08\x00\x00\x00\x00", 5);  // 8-bit grey, deflate, no filter, no interlace
  be32(png, 13);
  png += chunk;
  auto crc = [](const std::string& c) {
    return static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(c.data()), static_cast<uInt>(c.size())));
  };
  be32(png, crc(chunk));
  // An empty IDAT: libpng reads the header up to the first image data chunk.
  be32(png, 0);
  png += "IDAT";
  be32(png, crc("IDAT"));
  return png;
}

class Serve : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = (fs::temp_directory_path() / ("tailor_serve_" + std::to_string(::getpid()))).string();
    fs::remove_all(root_);
    testing::write_tiny_dataset(root_ + "/data", 400, 90, 12, 3);
    for (const char* flags : {"--model fcn --hidden 16 --out " , "--model cnn --channels 4 --hidden 8 --out "}) {
      const std::string out = root_ + (flags[8] == 'f' ? "/fcn" : "/cnn");
      auto r = testing::run_tailor(std::string("train ") + flags + out + " --epochs 2 --lr 0.01 --batch-size 32 --val 40 "
                                   "--threads 1 --progress none --data " + root_ + "/data", root_);
      ASSERT_EQ(r.code, 0) << r.err;
    }
    test_ = load_dataset(root_ + "/data", "t10k");
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  static serve::Options options() {
    serve::Options o;
    o.max_upload = 64 * 1024;
    o.threads = 4;
    return o;
  }
  static std::vector<std::string> runs() { return {root_ + "/fcn", root_ + "/cnn"}; }

  // Test image i as PNG bytes, exactly its data-set pixels.
  static std::string test_png(size_t i) {
    Image img;
    img.width = test_.cols;
    img.height = test_.rows;
    img.pixels.assign(test_.images.begin() + static_cast<long>(i * test_.pixels()),
                      test_.images.begin() + static_cast<long>((i + 1) * test_.pixels()));
    return encode_png(img);
  }

  // A 4xx answer with {"error": "..."} naming `needle`.
  static void expect_error(const httplib::Result& r, int status, const std::string& needle) {
    ASSERT_TRUE(r) << "no response";
    EXPECT_EQ(r->status, status) << r->body;
    const json j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << r->body;
    EXPECT_NE(j["error"].get<std::string>().find(needle), std::string::npos) << r->body;
  }

  static std::string root_;
  static Dataset test_;
};
std::string Serve::root_;
Dataset Serve::test_;

TEST_F(Serve, RunsListsEveryRunWithItsModel) {
  Running s(runs(), options());
  auto r = s.client().Get("/api/runs");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  const json j = json::parse(r->body);
  ASSERT_EQ(j["runs"].size(), 2u);
  EXPECT_EQ(j["runs"][0]["name"], "fcn");
  EXPECT_EQ(j["runs"][0]["model"], "fcn");
  EXPECT_EQ(j["runs"][1]["model"], "cnn");
  EXPECT_EQ(j["runs"][1]["id"], "1");
  EXPECT_EQ(j["runs"][0]["classes"].size(), 3u);
  EXPECT_TRUE(j["runs"][0]["test_set"].get<bool>());
  const json summary = json::parse(testing::slurp(root_ + "/cnn/summary.json"));
  EXPECT_EQ(j["runs"][1]["test_acc"], summary["test_acc"]);
  EXPECT_EQ(j["runs"][1]["weights"], summary["weights"]);
}

TEST_F(Serve, PredictionsOfEveryTestImageEqualEval) {
  Running s(runs(), options());
  auto client = s.client();
  for (int run = 0; run < 2; ++run) {
    const std::vector<int> expected =
        eval_predictions(root_ + (run ? "/cnn" : "/fcn"), root_, root_ + "/data");
    ASSERT_EQ(expected.size(), test_.size());
    int equal = 0;
    for (size_t i = 0; i < test_.size(); ++i) {
      auto r = client.Post(("/api/predict?convert=0&runs=" + std::to_string(run)).c_str(), test_png(i), "image/png");
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 200) << r->body;
      const json j = json::parse(r->body);
      ASSERT_EQ(j["results"].size(), 1u);
      equal += j["results"][0]["predicted_index"].get<int>() == expected[i];
      // The picture was used as it is.
      EXPECT_EQ(j["image"]["pixels"].get<std::vector<int>>(),
                std::vector<int>(test_.images.begin() + static_cast<long>(i * test_.pixels()),
                                 test_.images.begin() + static_cast<long>((i + 1) * test_.pixels())));
    }
    EXPECT_EQ(equal, static_cast<int>(test_.size())) << "run " << run;
  }
}

TEST_F(Serve, PredictAnswersEveryRunWithProbabilitiesAndSaliency) {
  Running s(runs(), options());
  auto r = s.client().Post("/api/predict?saliency=1", test_png(5), "image/png");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_EQ(j["image"]["pixels"].size(), static_cast<size_t>(test_.pixels()));
  for (const json& res : j["results"]) {
    double sum = 0, best = -1;
    for (double p : res["probs"]) sum += p, best = std::max(best, p);
    EXPECT_NEAR(sum, 1.0, 2e-3);
    EXPECT_EQ(res["top"][0]["prob"].get<double>(), best);
    EXPECT_EQ(res["top"][0]["index"], res["predicted_index"]);
    EXPECT_EQ(res["predicted"], numbered_class_names(3)[res["predicted_index"].get<size_t>()]);
    const auto sal = res["saliency"].get<std::vector<double>>();
    ASSERT_EQ(sal.size(), static_cast<size_t>(test_.pixels()));
    EXPECT_EQ(*std::max_element(sal.begin(), sal.end()), 1.0);
    EXPECT_GE(*std::min_element(sal.begin(), sal.end()), 0.0);
  }
  // Only the runs asked for, once each.
  auto one = s.client().Post("/api/predict?runs=1,1", test_png(5), "image/png");
  ASSERT_TRUE(one);
  EXPECT_EQ(json::parse(one->body)["results"].size(), 1u);
  EXPECT_FALSE(json::parse(one->body)["results"][0].contains("saliency"));
}

TEST_F(Serve, ConvertsAPictureLikePredict) {
  // A large picture on white: the server converts it as `tailor predict` does.
  Image big;
  big.width = 90;
  big.height = 60;
  big.pixels.assign(90 * 60, 255);
  for (int y = 20; y < 26; ++y)
    for (int x = 10; x < 80; ++x) big.pixels[y * 90 + x] = 0;  // a dark bar
  const std::string file = root_ + "/bar.png";
  write_png(file, big);
  Running s(runs(), options());
  auto r = s.client().Post("/api/predict?runs=0", testing::slurp(file), "image/png");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["image"]["pixels"].get<std::vector<int>>(),
            [&] {
              auto px = to_dataset_format(big, test_.rows, test_.cols);
              return std::vector<int>(px.begin(), px.end());
            }());
  auto p = testing::run_tailor("predict " + root_ + "/fcn " + file + " --top 1", root_);
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_NE(p.out.find(": " + j["results"][0]["predicted"].get<std::string>() + " "), std::string::npos) << p.out;
}

TEST_F(Serve, BadInputIsA4xxWithAJsonError) {
  Running s(runs(), options());
  auto c = s.client();
  expect_error(c.Post("/api/predict", "", "image/png"), 400, "empty body");
  expect_error(c.Post("/api/predict", "hello, not a picture", "image/png"), 415, "not a PNG");
  const std::string png = test_png(0);
  expect_error(c.Post("/api/predict", png.substr(0, png.size() / 2), "image/png"), 415, "PNG");
  expect_error(c.Post("/api/predict", std::string("\xFF\xD8\xFF\xE0garbage", 11), "image/jpeg"), 415, "JPEG");
  expect_error(c.Post("/api/predict", "P5 100000 100000 255\n", "image/x-pgm"), 413, "limit");
  expect_error(c.Post("/api/predict", png_header_only(30000, 30000), "image/png"), 413, "30000x30000");
  expect_error(c.Post("/api/predict", std::string(65 * 1024, 'x'), "image/png"), 413, "too large");
  expect_error(c.Post("/api/predict?runs=7", png, "image/png"), 404, "no run '7'");
  expect_error(c.Post("/api/predict?saliency=maybe", png, "image/png"), 400, "saliency");
  Image wrong;
  wrong.width = wrong.height = 5;
  wrong.pixels.assign(25, 0);
  expect_error(c.Post("/api/predict?convert=0", encode_png(wrong), "image/png"), 400, "must be 12x12");
  expect_error(c.Get("/api/cell?run=0&true=9&pred=0"), 400, "'true'");
  expect_error(c.Get("/api/cell?run=0&true=1"), 400, "required");
  expect_error(c.Get("/api/confusion?run=x"), 404, "no run 'x'");
  expect_error(c.Get("/api/testimage/90.png"), 404, "does not exist");
  expect_error(c.Get("/api/testimage/1.png?scale=100"), 400, "scale");
  expect_error(c.Get("/no/such/page"), 404, "no such path");
  // The server still answers after all of that.
  auto ok = c.Post("/api/predict", png, "image/png");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(Serve, StaticFilesCannotEscapeTheirFolder) {
  const std::string dir = root_ + "/static";
  fs::create_directories(dir);
  std::ofstream(dir + "/app.js") << "// from disk\n";
  std::ofstream(root_ + "/secret.txt") << "TOP-SECRET-CONTENT\n";
  fs::create_symlink(root_ + "/secret.txt", dir + "/app.css");  // a link out of the folder
  serve::Options o = options();
  o.static_dir = dir;
  Running s(runs(), o);
  auto c = s.client();
  auto js = c.Get("/static/app.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->status, 200);
  EXPECT_EQ(js->body, "// from disk\n");
  for (const char* path : {"/static/app.css", "/static/..%2Fsecret.txt", "/static/../secret.txt", "/static/%2e%2e",
                           "/static/..", "/static/.%2e/secret.txt", "/static/secret.txt", "/static/%2Fetc%2Fpasswd"}) {
    auto r = c.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 404) << path;
    EXPECT_EQ(r->body.find("TOP-SECRET"), std::string::npos) << path;
  }
  // The Vega bundles are always the built-in ones.
  auto vega = c.Get("/static/vega.min.js");
  ASSERT_TRUE(vega);
  EXPECT_EQ(vega->status, 200);
  EXPECT_GT(vega->body.size(), 100000u);
}

TEST_F(Serve, ConfusionAndCellsAgreeWithEval) {
  Running s(runs(), options());
  auto c = s.client();
  const std::vector<int> expected = eval_predictions(root_ + "/cnn", root_, root_ + "/data");
  auto r = c.Get("/api/confusion?run=1");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  const auto counts = j["counts"].get<std::vector<std::vector<int64_t>>>();
  ASSERT_EQ(counts.size(), 3u);
  for (int t = 0; t < 3; ++t)
    for (int p = 0; p < 3; ++p) {
      int64_t n = 0;
      for (size_t i = 0; i < test_.size(); ++i) n += test_.labels[i] == t && expected[i] == p;
      EXPECT_EQ(counts[t][p], n) << t << "," << p;
      auto cell = c.Get(("/api/cell?run=1&true=" + std::to_string(t) + "&pred=" + std::to_string(p) + "&limit=1000").c_str());
      ASSERT_TRUE(cell);
      const json cj = json::parse(cell->body);
      EXPECT_EQ(cj["total"].get<int64_t>(), n);
      double last = 2;
      for (const json& img : cj["images"]) {
        const size_t i = img["index"].get<size_t>();
        EXPECT_EQ(test_.labels[i], t);
        EXPECT_EQ(expected[i], p);
        EXPECT_LE(img["prob"].get<double>(), last);  // most confident first
        last = img["prob"].get<double>();
      }
    }
}

TEST_F(Serve, TestImagesAreTheDataSetsPixels) {
  Running s(runs(), options());
  auto r = s.client().Get("/api/testimage/7.png?scale=3");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "image/png");
  Image img = decode_image(r->body, "response");
  ASSERT_EQ(img.width, 3 * test_.cols);
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x)
      ASSERT_EQ(img.pixels[y * img.width + x], test_.images[7 * test_.pixels() + (y / 3) * test_.cols + x / 3]);
}

TEST_F(Serve, TwoHundredConcurrentPredictionsAreAllRight) {
  Running s(runs(), options());
  // The answers one at a time first.
  std::vector<std::string> sequential(test_.size());
  for (size_t i = 0; i < test_.size(); ++i) {
    auto r = s.client().Post("/api/predict?convert=0&saliency=1", test_png(i), "image/png");
    ASSERT_TRUE(r);
    json j = json::parse(r->body);
    sequential[i] = j["results"].dump();
  }
  constexpr int kRequests = 200;
  std::atomic<int> ok{0}, same{0};
  std::vector<std::thread> clients;
  std::atomic<bool> go{false};
  for (int t = 0; t < kRequests; ++t)
    clients.emplace_back([&, t] {
      httplib::Client c("127.0.0.1", s.port());
      c.set_read_timeout(60, 0);
      c.set_connection_timeout(30, 0);
      const size_t i = static_cast<size_t>(t) % test_.size();
      const std::string body = test_png(i);
      while (!go.load()) std::this_thread::yield();
      auto r = c.Post("/api/predict?convert=0&saliency=1", body, "image/png");
      if (!r) {
        std::fprintf(stderr, "request %d: %s\n", t, httplib::to_string(r.error()).c_str());
      } else if (r->status != 200) {
        std::fprintf(stderr, "request %d: HTTP %d %s\n", t, r->status, r->body.c_str());
      } else {
        ++ok;
        same += json::parse(r->body)["results"].dump() == sequential[i];
      }
    });
  go = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), kRequests);
  EXPECT_EQ(same.load(), kRequests);
}

// A raw TCP connection to the server, for clients that do not behave.
class RawSocket {
 public:
  explicit RawSocket(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;
  bool connected() const { return connected_; }
  bool send(const std::string& bytes) const { return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()); }
  // What the server sent before closing, waiting at most `seconds`; "" and closed() false if it
  // neither answered nor closed.
  std::string read_until_closed(double seconds) {
    std::string got;
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }
  bool closed() const { return closed_; }

 private:
  int fd_;
  bool connected_ = false, closed_ = false;
};

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// The measurement: 8 half-sent headers made GET /api/runs take 9.5 s, 16 made it time
// out. Now 64 half-open and 64 silent connections are held open while normal requests (the list
// of runs and a prediction, each on a new connection) go on; every one is answered within 1 s.
TEST_F(Serve, SlowClientsCannotHoldUpNormalRequests) {
  serve::Options o = options();
  o.request_timeout = 3;
  Running s(runs(), o);
  std::vector<std::unique_ptr<RawSocket>> half_open, silent;
  for (int i = 0; i < 64; ++i) {
    half_open.push_back(std::make_unique<RawSocket>(s.port()));
    ASSERT_TRUE(half_open.back()->connected());
    ASSERT_TRUE(half_open.back()->send("GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow"));
    silent.push_back(std::make_unique<RawSocket>(s.port()));
    ASSERT_TRUE(silent.back()->connected());
  }
  // Normal requests for two seconds, while all 128 are held (they have 3 s to finish).
  std::vector<double> ms;
  const std::string png = test_png(0);
  const auto t_end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (int i = 0; std::chrono::steady_clock::now() < t_end; ++i) {
    httplib::Client c("127.0.0.1", s.port());
    c.set_read_timeout(10, 0);
    const auto t0 = std::chrono::steady_clock::now();
    auto r = i % 2 ? c.Post("/api/predict?convert=0", png, "image/png") : c.Get("/api/runs");
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    EXPECT_EQ(r->status, 200) << r->body;
  }
  const double worst = *std::max_element(ms.begin(), ms.end());
  std::printf("%zu normal requests beside 64 half-open and 64 silent connections: median %.2f ms, max %.2f ms\n",
              ms.size(), median_of(ms), worst);
  EXPECT_LT(worst, 1000.0);
  EXPECT_GE(ms.size(), 20u);
  // The server closes them once their time is up (3 s from connecting), answering nothing.
  for (auto* group : {&half_open, &silent})
    for (auto& sock : *group) {
      EXPECT_EQ(sock->read_until_closed(3), "");
      EXPECT_TRUE(sock->closed());
    }
  // And answers as before.
  auto r = s.client().Get("/api/runs");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

// A client that trickles its request a byte at a time cannot keep its connection (and its thread)
// beyond the time allowed; one that is merely slow but steady gets its answer.
TEST_F(Serve, TricklingClientsAreCutOffAndSteadyOnesAnswered) {
  serve::Options o = options();
  o.request_timeout = 1;
  Running s(runs(), o);
  RawSocket trickle(s.port());
  ASSERT_TRUE(trickle.connected());
  const std::string request = "GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + std::string(200, 'x') + "\r\n\r\n";
  const auto t0 = std::chrono::steady_clock::now();
  size_t sent = 0;
  for (; sent < request.size(); ++sent) {
    if (!trickle.send(request.substr(sent, 1))) break;
    if (!trickle.read_until_closed(0.1).empty() || trickle.closed()) break;
  }
  const double held = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(trickle.closed() || trickle.read_until_closed(2).empty()) << "still open after " << held << " s";
  EXPECT_LT(sent, request.size()) << "the whole request went through a byte per 100 ms";
  EXPECT_LT(held, 3.0);
  // Steady: the same request in four pieces 200 ms apart, well within the allowance.
  RawSocket steady(s.port());
  for (size_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(steady.send(request.substr(i * request.size() / 4, (i + 1) * request.size() / 4 - i * request.size() / 4)));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(steady.read_until_closed(2).rfind("HTTP/1.1 200", 0), 0u);
}

// Past --max-connections a new connection is answered 503 with a JSON error and closed at once;
// when the others go, connections are accepted again.
TEST_F(Serve, ConnectionsBeyondTheLimitAreRefusedWith503) {
  serve::Options o = options();
  o.max_connections = 8;
  Running s(runs(), o);
  std::vector<std::unique_ptr<RawSocket>> held;
  for (int i = 0; i < 8; ++i) {
    held.push_back(std::make_unique<RawSocket>(s.port()));
    ASSERT_TRUE(held.back()->connected());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // all eight taken up by the server
  RawSocket extra(s.port());
  const std::string answer = extra.read_until_closed(2);
  EXPECT_EQ(answer.rfind("HTTP/1.1 503", 0), 0u) << answer;
  EXPECT_NE(answer.find("too many open connections"), std::string::npos) << answer;
  EXPECT_TRUE(extra.closed());
  held.clear();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto r = s.client().Get("/api/runs");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

// A POST with no body and no Content-Length (curl -X POST) was read until the client gave up, and
// the client got no status at all after the request timeout: it gets 411 at once.
TEST_F(Serve, APostWithoutALengthIsRefusedAtOnce) {
  serve::Options o = options();
  o.request_timeout = 5;
  Running s(runs(), o);
  // Connection: close, so that the socket closes once answered: the old server sent nothing and
  // closed it only at the request timeout (5 s).
  for (const char* extra : {"", "Content-Type: image/png\r\n", "Transfer-Encoding: gzip\r\n"}) {
    RawSocket sock(s.port());
    ASSERT_TRUE(sock.connected());
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(sock.send(std::string("POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n") + extra +
                          "\r\n"));
    const std::string answer = sock.read_until_closed(4);
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(answer.rfind("HTTP/1.1 411", 0), 0u) << answer;
    EXPECT_NE(answer.find("POST needs a body and its Content-Length header"), std::string::npos) << answer;
    EXPECT_TRUE(sock.closed());
    EXPECT_LT(waited, 2.0) << "answered only when the request timed out";
  }
  // With its length, the same empty body is the usual 400.
  expect_error(s.client().Post("/api/predict", "", "image/png"), 400, "empty body");
}

// Server::respond, the fuzzer's entry: a raw request through the same parser and handlers.
TEST_F(Serve, RespondRunsARawRequestThroughTheHandlers) {
  serve::Server server(runs(), options());
  const std::string ok = server.respond("GET /api/runs HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200", 0), 0u) << ok;
  EXPECT_NE(ok.find("\"runs\""), std::string::npos);
  const std::string bad = server.respond("GET /api/cell?run=0&true=x&pred=1 HTTP/1.1\r\n\r\n");
  EXPECT_EQ(bad.rfind("HTTP/1.1 400", 0), 0u) << bad;
  EXPECT_NE(bad.find("whole number"), std::string::npos) << bad;
  EXPECT_EQ(server.respond(""), "");
}

// Found by fuzz_http: a path that is not UTF-8 made the JSON error's dump() throw inside the
// error handler, which ended the whole server. It is a 404 whose message carries U+FFFD.
TEST_F(Serve, PathsThatAreNotUtf8AreA404NotACrash) {
  serve::Server server(runs(), options());
  const std::string r = server.respond("GET /api/tes\xff\xff\xff.png?scale=2 HTTP/1.1\r\n\r\n");
  ASSERT_EQ(r.rfind("HTTP/1.1 404", 0), 0u) << r;
  const json j = json::parse(r.substr(r.find("\r\n\r\n") + 4));
  EXPECT_EQ(j["error"], "no such path: /api/tes\uFFFD\uFFFD\uFFFD.png");
  const std::string p = server.respond("GET /api/cell?run=0&true=\xfe&pred=1 HTTP/1.1\r\n\r\n");
  EXPECT_EQ(p.rfind("HTTP/1.1 400", 0), 0u) << p;
}

TEST_F(Serve, BadCommandLinesFailWithOneLine) {
  testing::expect_one_line_error(testing::run_tailor("serve " + root_ + "/nope --port 0", root_), "nope");
  testing::expect_one_line_error(testing::run_tailor("serve " + root_ + "/fcn --max-upload lots", root_), "--max-upload");
  testing::expect_one_line_error(testing::run_tailor("serve " + root_ + "/fcn --request-timeout nan", root_),
                                 "--request-timeout");
  testing::expect_one_line_error(testing::run_tailor("serve " + root_ + "/fcn --max-connections 0", root_),
                                 "--max-connections");
}

// The acceptance figure: every one of the 10,000 Fashion-MNIST test images through the API gives
// the class `tailor eval` counts.
TEST(ServeRealData, AllTenThousandTestImagesMatchEval) {
  ASSERT_TRUE(fs::exists(kDefaultDataDir)) << "install dataset-fashion-mnist (make test does)";
  const std::string dir = (fs::temp_directory_path() / ("tailor_serve_real_" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto t = testing::run_tailor("train --model cnn --weights 20k --epochs 1 --val 1000 --threads 2 --progress none --out " +
                                   dir + "/cnn", dir);
  ASSERT_EQ(t.code, 0) << t.err;
  const std::vector<int> expected = eval_predictions(dir + "/cnn", dir, kDefaultDataDir);
  const Dataset test = load_dataset(kDefaultDataDir, "t10k");
  ASSERT_EQ(expected.size(), 10000u);
  serve::Options o;
  o.threads = 2;
  Running s({dir + "/cnn"}, o);
  std::atomic<int> equal{0}, answered{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 2; ++w)
    workers.emplace_back([&, w] {
      httplib::Client c("127.0.0.1", s.port());
      c.set_keep_alive(true);
      c.set_tcp_nodelay(true);
      for (size_t i = static_cast<size_t>(w); i < test.size(); i += 2) {
        Image img;
        img.width = test.cols;
        img.height = test.rows;
        img.pixels.assign(test.images.begin() + static_cast<long>(i * test.pixels()),
                          test.images.begin() + static_cast<long>((i + 1) * test.pixels()));
        auto r = c.Post("/api/predict?convert=0", encode_png(img), "image/png");
        if (!r || r->status != 200) continue;
        ++answered;
        equal += json::parse(r->body)["results"][0]["predicted_index"].get<int>() == expected[i];
      }
    });
  for (auto& w : workers) w.join();
  std::printf("API predictions equal to tailor eval's: %d of %zu\n", equal.load(), test.size());
  EXPECT_EQ(answered.load(), 10000);
  EXPECT_EQ(equal.load(), 10000);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tailor
