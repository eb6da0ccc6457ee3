// `tailor bench`: this machine's figures for the models `tailor train --weights 100k` builds.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/model_options.hpp"
#include "kernels/isa.hpp"
#include "kernels/kernels.hpp"
#include "train/checkpoint.hpp"
#include "train/evaluate.hpp"
#include "train/trainer.hpp"
#include "util/error.hpp"

namespace tailor::cli {

namespace {

struct BenchArgs {
  int64_t epochs = 3;
  int threads = 0;
  std::vector<int64_t> batches{64, 256};
  std::vector<std::string> models{"fcn", "cnn"};
  std::vector<std::string> pools{"max"};
  std::vector<std::string> archs;  // CNNs built from stages, a row each
  std::string weights = "100k", data = kDefaultDataDir;
  int64_t eval_batch = TrainConfig{}.eval_batch;
  std::string precision = "fp32";
  bool json = false;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// One core's fp32 peak as the sgemm behind kernels::gemm (oneDNN) reaches it at 1024^3 (best of 5 after a warm-up call).
double sgemm_peak_gflops() {
  const int n = 1024;
  std::vector<float> a(n * n, 1.0f), b(n * n, 0.5f), c(n * n);
  kernels::set_threads(1);
  std::vector<double> r;
  kernels::gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
  for (int i = 0; i < 5; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    kernels::gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    r.push_back(2.0 * n * n * n / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 1e9);
  }
  return *std::max_element(r.begin(), r.end());
}

// "AMD EPYC (family 25, model 1)", from /proc/cpuinfo's first processor.
std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, name = "unknown CPU", family, model;
  auto value = [&] { return line.substr(std::min(line.size(), line.find(':') + 2)); };
  while (std::getline(in, line) && !line.empty()) {
    if (line.rfind("model name", 0) == 0) name = value();
    else if (line.rfind("cpu family", 0) == 0) family = value();
    else if (line.rfind("model\t", 0) == 0 || line.rfind("model :", 0) == 0) model = value();
  }
  if (!family.empty()) name += " (family " + family + ", model " + model + ")";
  return name;
}

// Multiply-adds x 2 of one training step per image: forward, weight gradients, and input
// gradients for every layer but the first (tailor skips those).
int64_t train_flops_per_image(const ModelSpec& spec) {
  auto m = build_model(spec, 0);
  const int64_t first = m->layers()[0]->forward_flops(Shape::batched(1, m->item_shape()));
  return 3 * m->forward_flops(1) - first;
}

}  // namespace

Run add_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* c = app.add_subcommand("bench", "Speed on this machine: seconds per epoch, GFLOP/s, share of the sgemm "
                                            "peak, evaluation images/s and peak memory");
  c->add_option("--epochs", a->epochs, "Epochs per configuration (the median is shown)")->check(CLI::Range(1, 100))->capture_default_str();
  c->add_option("--threads", a->threads, "Threads (0: all cores)")->check(CLI::Range(0, 1024))->capture_default_str();
  c->add_option("--batch-sizes", a->batches, "Batch sizes to measure")->check(CLI::Range(1, 65536))->delimiter(',')->capture_default_str();
  c->add_option("--models", a->models, "Families to measure")->check(CLI::IsMember({"fcn", "cnn"}))->delimiter(',')->capture_default_str();
  c->add_option("--weights", a->weights, "Weight budget of the models")->capture_default_str();
  c->add_option("--pool", a->pools, "CNN pooling kinds to measure, each a row (max, avg, l2; e.g. --pool max,avg,l2)")
      ->check(CLI::IsMember({"max", "avg", "l2"}))
      ->delimiter(',')
      ->capture_default_str();
  c->add_option("--arch", a->archs,
                 "A CNN built from stages (as train --arch), sized to --weights: one row each; may be given "
                 "several times")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  c->add_option("--data", a->data, "Data directory")->capture_default_str();
  c->add_option("--eval-batch", a->eval_batch, "Images per batch when measuring evaluation")
      ->check(CLI::Range(1, 65536))->capture_default_str();
  c->add_option("--precision", a->precision, "Training precision: fp32, or bf16 (see tailor train --help)")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  c->add_flag("--json", a->json, "Print JSON instead of a table");
  return [a, c]() {
    if (!c->parsed()) return -1;
    const int threads = resolve_threads(a->threads, "--threads");
    const double peak = sgemm_peak_gflops();
    const std::string tmp = (std::filesystem::temp_directory_path() / ("tailor_bench_" + std::to_string(::getpid()))).string();
    nlohmann::json rows = nlohmann::json::array();
    const std::string cpu = cpu_model(), isa = kernels::cpu_isa(), path = kernels::isa_name(kernels::current_isa());
    if (!a->json)
      std::printf("CPU: %s, %u cores; tailor %s runs its %s kernels, oneDNN %s its %s kernels\n"
                  "sgemm 1024^3 on one core: %.0f GFLOP/s; %d threads, so the peak used is %.0f GFLOP/s\n\n"
                  "%-12s %5s %8s %10s %10s %8s %12s %9s\n",
                  cpu.c_str(), std::thread::hardware_concurrency(), tailor_version().c_str(), path.c_str(),
                  kernels::onednn_version().c_str(), isa.c_str(), peak, threads, peak * threads, "model", "batch", "weights", "s/epoch", "GFLOP/s", "of peak", "eval img/s",
                  "RSS MiB");
    // The rows: every family x batch x pool, then every --arch x batch.
    struct Row {
      std::string family, pool, arch, label;
      int64_t batch;
    };
    std::vector<Row> plan;
    for (const std::string& family : a->models)
      for (int64_t batch : a->batches)
        for (const std::string& pool : a->pools) {
          // An FCN has no pooling: one row for it, under the first kind named.
          if (family == "fcn" && pool != a->pools.front()) continue;
          plan.push_back({family, pool, "", family + "-" + a->weights + (family == "cnn" && pool != "max" ? "-" + pool : ""),
                          batch});
        }
    for (size_t i = 0; i < a->archs.size(); ++i)
      for (int64_t batch : a->batches)
        plan.push_back({"cnn", "max", a->archs[i], "arch" + std::to_string(i + 1) + "-" + a->weights, batch});
    for (const Row& plan_row : plan) {
          const std::string &family = plan_row.family, &pool = plan_row.pool, &label = plan_row.label;
          const int64_t batch = plan_row.batch;
          TrainConfig cfg;
          cfg.model = default_spec(parse_family(family));
          cfg.model.pool = parse_pool(pool);
          if (!plan_row.arch.empty()) parse_arch(plan_row.arch, cfg.model);
          cfg.weights_target = parse_weight_count(a->weights);
          cfg.data_dir = a->data;
          cfg.out_dir = tmp;
          cfg.epochs = a->epochs;
          cfg.batch_size = batch;
          cfg.threads = threads;
          cfg.progress = "none";
          cfg.eval_batch = a->eval_batch;
          cfg.bf16 = a->precision == "bf16";
          TrainOutcome r = train(cfg);
          LoadedModel m = load_model(tmp + "/model.ckpt");
          Dataset test = load_test_set(a->data, m.classes, static_cast<int>(m.spec.in_channels), static_cast<int>(m.spec.height), static_cast<int>(m.spec.width));
          std::vector<double> eval_ips;
          for (int i = 0; i < 3; ++i) {
            auto t0 = std::chrono::steady_clock::now();
            evaluate(*m.model, test, nullptr, m.norm, cfg.eval_batch);
            eval_ips.push_back(test.size() / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
          }
          const double sec = median(r.epoch_seconds);
          const double images = static_cast<double>(r.train_images);
          const double gflops = static_cast<double>(train_flops_per_image(m.spec)) * images / sec / 1e9;
          nlohmann::json row{{"model", family},       {"batch", batch},          {"weights", r.weights},
                             {"pool", family == "cnn" ? pool : std::string("none")},  {"arch", plan_row.arch},
                             {"epoch_seconds", sec},  {"gflops", gflops},        {"peak_share", gflops / (peak * threads)},
                             {"eval_images_per_second", median(eval_ips)},       {"peak_rss_mb", peak_rss_mb()},
                             {"threads", threads},    {"sgemm_peak_gflops_per_core", peak},
                             {"precision", a->precision}, {"cpu", cpu},   {"isa", isa},  {"kernels", path},
                             {"onednn_version", kernels::onednn_version()},   {"tailor_version", tailor_version()}};
          rows.push_back(row);
          if (!a->json)
            std::printf("%-12s %5lld %8lld %10.3f %10.1f %7.1f%% %12.0f %9.0f\n", label.c_str(),
                        static_cast<long long>(batch), static_cast<long long>(r.weights), sec, gflops,
                        100.0 * gflops / (peak * threads), median(eval_ips), peak_rss_mb());
          std::fflush(stdout);
    }
    std::filesystem::remove_all(tmp);
    if (!a->json)
      for (size_t i = 0; i < a->archs.size(); ++i)
        std::printf("arch%zu: %s\n", i + 1, a->archs[i].c_str());
    if (a->json) std::printf("%s\n", rows.dump(2).c_str());
    else std::printf("\n(median of %lld epochs, Adam, %s; RSS is this process's peak so far; the peak is fp32's in "
                     "either precision)\n",
                     static_cast<long long>(a->epochs), a->precision.c_str());
    return 0;
  };
}

}  // namespace tailor::cli
