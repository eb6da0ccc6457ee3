// tailor from C++: train a small classifier on pictures in memory, then classify pictures.
//   embed [DATA_DIR [RUN_DIR [PICTURE...]]]   (default: Debian's Fashion-MNIST, runs/embed)
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <tailor/tailor.hpp>

// The first n pictures of a set: any bytes laid out as tailor::Images describes will do.
tailor::Images first(const tailor::Images& all, int64_t n) {
  tailor::Images out = all;
  out.count = n;
  out.pixels.resize(static_cast<size_t>(n * all.pixels_per_image()));
  out.labels.resize(static_cast<size_t>(n));
  return out;
}

int main(int argc, char** argv) {
  const std::string data_dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
  const std::string run_dir = argc > 2 ? argv[2] : "runs/embed";
  try {
    const tailor::Data all = tailor::read_data(data_dir);
    const tailor::Data data = tailor::Data::from_memory(first(all.train, 10000), first(all.test, 2000), all.classes);

    tailor::Hooks hooks;
    hooks.on_epoch = [](const tailor::Epoch& e) {
      std::printf("epoch %lld/%lld: validation accuracy %.2f%%\n", static_cast<long long>(e.epoch),
                  static_cast<long long>(e.epochs), e.val_acc);
      return true;  // false would stop the run here
    };
    // Any `tailor train` option, by its command-line name without the dashes.
    const tailor::Run run = tailor::train(
        data, {{"model", "fcn"}, {"hidden", "128"}, {"epochs", "3"}, {"val", "1000"}, {"seed", "7"}, {"out", run_dir}},
        hooks);
    const tailor::Evaluation test = run.evaluate(data.test);
    std::printf("test accuracy %.2f%% on %lld pictures; run in %s\n", test.accuracy,
                static_cast<long long>(test.count), run.dir().c_str());

    // Classify the first five test pictures.
    const int n = 5;
    const std::vector<int> labels = run.predict(data.test.pixels.data(), n);
    const std::vector<float> p = run.predict_proba(data.test.pixels.data(), n);
    const size_t k = run.classes().size();
    for (int i = 0; i < n; ++i)
      std::printf("picture %d: %s %.1f%%\n", i, run.classes()[labels[i]].c_str(), 100.0 * p[i * k + labels[i]]);

    // Classify picture files (PNG, JPEG, PGM), converted as `tailor predict` converts them.
    for (int a = 3; a < argc; ++a) {
      std::ifstream f(argv[a], std::ios::binary);
      std::stringstream bytes;
      bytes << f.rdbuf();
      const std::vector<float> q = run.predict_picture(bytes.str(), argv[a]);
      size_t best = 0;
      for (size_t c = 1; c < q.size(); ++c)
        if (q[c] > q[best]) best = c;
      std::printf("%s: %s %.1f%%\n", argv[a], run.classes()[best].c_str(), 100.0 * q[best]);
    }
  } catch (const tailor::Error& e) {
    std::fprintf(stderr, "embed: %s\n", e.what());
    return 1;
  }
  return 0;
}
