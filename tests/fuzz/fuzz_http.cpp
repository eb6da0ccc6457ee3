// The web API: raw HTTP requests through `tailor serve`'s own parser, routes and handlers
// (Server::respond, the code a socket's requests run through), against one tiny run. Every
// response must be a well-formed HTTP status line, and no request may crash the server.
#include <cstdint>
#include <filesystem>
#include <memory>

#include "fuzz_input.hpp"
#include "nn/model_spec.hpp"
#include "serve/server.hpp"
#include "tiny_data.hpp"
#include "train/checkpoint.hpp"
#include "util/error.hpp"

namespace {

std::unique_ptr<tailor::serve::Server> g_server;

// A run directory holding an untrained 8x8 FCN over a tiny 3-class test set.
std::string make_run() {
  const std::string root = tailor::fuzz::scratch_dir();
  tailor::testing::write_tiny_dataset(root + "/data", 30, 30, 8, 3);
  tailor::ModelSpec spec = tailor::default_spec(tailor::Family::fcn);
  spec.hidden = {6};
  spec.height = spec.width = 8;
  spec.classes = 3;
  auto model = tailor::build_model(spec, 1);
  tailor::Checkpoint ck;
  ck.meta = {{"format", "tailor checkpoint"},
             {"model", tailor::spec_to_json(spec)},
             {"normalization", {{"mean", 0.3}, {"std", 0.3}}},
             {"classes", {"a", "b", "c"}},
             {"data_dir", root + "/data"},
             {"eval_batch", 16},
             {"threads", 1}};
  for (size_t i = 0; i < model->num_values(); ++i) ck.weights.push_back(0.01f * static_cast<float>(i % 17) - 0.08f);
  ck.stats.assign(model->buffer_values(), model->buffer_values() + model->num_buffer_values());
  std::filesystem::create_directories(root + "/run");
  tailor::save_checkpoint(root + "/run/model.ckpt", ck);
  return root + "/run";
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tailor::serve::Options opt;
  opt.log_errors = false;
  opt.max_upload = 1u << 20;
  g_server = std::make_unique<tailor::serve::Server>(std::vector<std::string>{make_run()}, opt);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string response = g_server->respond(std::string(reinterpret_cast<const char*>(data), size));
  // Nothing, when the request line could not be read; else a status line.
  if (!response.empty() && response.rfind("HTTP/1.1 ", 0) != 0) __builtin_trap();
  return 0;
}
