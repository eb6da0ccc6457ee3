#include "sweep/run_data.hpp"

#include <cmath>
#include <filesystem>
#include <sstream>

#include "util/atomic_file.hpp"
#include "util/error.hpp"

namespace tailor {

std::vector<EpochRow> read_metrics(const std::string& path) {
  std::istringstream csv(read_file(path));
  std::string line;
  std::getline(csv, line);  // header
  std::vector<EpochRow> rows;
  while (std::getline(csv, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, ',');) f.push_back(c);
    if (f.size() < 6) throw Error(path + ": a row has fewer than 6 columns");
    try {
      rows.push_back({std::stoi(f[0]), std::stod(f[1]), f[4].empty() ? NAN : std::stod(f[4]), std::stod(f[5])});
    } catch (const std::exception&) {
      throw Error(path + ": unreadable row '" + line + "'");
    }
  }
  return rows;
}

static nlohmann::json manifest(const std::string& dir) {
  if (!std::filesystem::exists(dir + "/sweep.json"))
    throw Error(dir + " is not a sweep directory (it has no sweep.json; `tailor sweep FILE` makes one)");
  try {
    return nlohmann::json::parse(read_file(dir + "/sweep.json"));
  } catch (const nlohmann::json::exception& e) {
    throw Error(dir + "/sweep.json is not a sweep manifest: " + e.what());
  }
}

std::string sweep_name(const std::string& dir) { return manifest(dir).value("name", std::string("sweep")); }

std::vector<TrialRecord> read_trials(const std::string& dir) {
  std::vector<TrialRecord> out;
  const nlohmann::json m = manifest(dir);  // kept alive for the loop (a temporary's member would dangle)
  try {
    for (const auto& t : m.at("trials")) {
      TrialRecord r;
      r.id = t.at("id").get<std::string>();
      r.row = t.at("row").get<std::string>();
      r.group = t.at("group").get<std::string>();
      r.seed = t.at("seed").get<uint64_t>();
      r.dir = dir + "/trials/" + r.id;
      r.finished = std::filesystem::exists(r.dir + "/summary.json");
      if (r.finished) r.summary = nlohmann::json::parse(read_file(r.dir + "/summary.json"));
      out.push_back(std::move(r));
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(dir + ": a trial's record is malformed: " + e.what());
  }
  return out;
}

}  // namespace tailor
