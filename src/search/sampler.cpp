#include "search/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace tailor {

std::vector<int> pareto_fronts(const std::vector<std::vector<double>>& pts) {
  const size_t n = pts.size();
  auto dominates = [&](size_t a, size_t b) {
    bool better = false;
    for (size_t k = 0; k < pts[a].size(); ++k) {
      if (pts[a][k] > pts[b][k]) return false;
      better = better || pts[a][k] < pts[b][k];
    }
    return better;
  };
  std::vector<int> front(n, -1), count(n, 0);
  std::vector<std::vector<size_t>> beats(n);
  for (size_t a = 0; a < n; ++a)
    for (size_t b = 0; b < n; ++b)
      if (a != b && dominates(a, b)) {
        beats[a].push_back(b);
        ++count[b];
      }
  std::vector<size_t> current;
  for (size_t a = 0; a < n; ++a)
    if (count[a] == 0) current.push_back(a);
  for (int f = 0; !current.empty(); ++f) {
    std::vector<size_t> next;
    for (size_t a : current) {
      front[a] = f;
      for (size_t b : beats[a])
        if (--count[b] == 0) next.push_back(b);
    }
    current = std::move(next);
  }
  return front;
}

std::vector<double> crowding_distances(const std::vector<std::vector<double>>& pts, const std::vector<int>& fronts) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> d(pts.size(), 0.0);
  const int last = fronts.empty() ? -1 : *std::max_element(fronts.begin(), fronts.end());
  for (int f = 0; f <= last; ++f) {
    std::vector<size_t> members;
    for (size_t i = 0; i < pts.size(); ++i)
      if (fronts[i] == f) members.push_back(i);
    if (members.size() <= 2) {
      for (size_t i : members) d[i] = inf;
      continue;
    }
    for (size_t k = 0; k < pts[members[0]].size(); ++k) {
      std::vector<size_t> by = members;
      std::stable_sort(by.begin(), by.end(), [&](size_t a, size_t b) { return pts[a][k] < pts[b][k]; });
      const double span = pts[by.back()][k] - pts[by.front()][k];
      d[by.front()] = d[by.back()] = inf;
      if (span <= 0) continue;
      for (size_t j = 1; j + 1 < by.size(); ++j) d[by[j]] += (pts[by[j + 1]][k] - pts[by[j - 1]][k]) / span;
    }
  }
  return d;
}

std::vector<size_t> rank_order(const std::vector<std::vector<double>>& pts) {
  std::vector<size_t> order(pts.size());
  std::iota(order.begin(), order.end(), size_t{0});
  if (!pts.empty() && pts[0].size() == 1) {
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return pts[a][0] < pts[b][0]; });
    return order;
  }
  const std::vector<int> fronts = pareto_fronts(pts);
  const std::vector<double> crowd = crowding_distances(pts, fronts);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (fronts[a] != fronts[b]) return fronts[a] < fronts[b];
    return crowd[a] > crowd[b];
  });
  return order;
}

Point sample_random(const SearchSpace& space, Rng& rng, const Point& fixed) {
  Point p;
  for (const SpaceParam& q : space.params) {
    if (!q.applies(p, space.base)) continue;
    const auto f = fixed.find(q.key);
    p[q.key] = f != fixed.end() ? f->second : q.dist.draw(rng);
  }
  return p;
}

Point stratified_values(const SearchSpace& space, const std::vector<Point>& sampled) {
  Point out;
  for (const std::string& key : space.stratify) {
    const SpaceParam* q = space.param(key);
    if (!q || q->dist.choices.empty()) continue;
    const std::vector<std::string>& choices = q->dist.choices;
    std::vector<size_t> count(choices.size(), 0);
    for (const Point& p : sampled) {
      const auto it = p.find(key);
      if (it == p.end()) continue;
      const auto c = std::find(choices.begin(), choices.end(), it->second);
      if (c != choices.end()) ++count[static_cast<size_t>(c - choices.begin())];
    }
    out[key] = choices[static_cast<size_t>(std::min_element(count.begin(), count.end()) - count.begin())];
  }
  return out;
}

namespace {

constexpr double kPi = 3.14159265358979323846;

// A standard normal variate (Box-Muller, one of the pair).
double normal(Rng& rng) {
  const double u1 = (static_cast<double>(rng.uniform()) + 0x1p-25), u2 = rng.uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
}

double phi(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

// A Parzen estimator on [0, 1]: one truncated normal per observation plus a wide prior, equal weights.
struct Parzen {
  std::vector<double> mu, sigma;

  explicit Parzen(std::vector<double> obs) {
    std::sort(obs.begin(), obs.end());
    const double min_bw = 1.0 / std::min(100.0, 1.0 + static_cast<double>(obs.size()));
    for (size_t i = 0; i < obs.size(); ++i) {
      const double left = obs[i] - (i > 0 ? obs[i - 1] : 0.0), right = (i + 1 < obs.size() ? obs[i + 1] : 1.0) - obs[i];
      mu.push_back(obs[i]);
      sigma.push_back(std::clamp(std::max(left, right), min_bw, 1.0));
    }
    mu.push_back(0.5);  // the prior: as wide as the range
    sigma.push_back(1.0);
  }
  double log_density(double u) const {
    double sum = 0;
    for (size_t i = 0; i < mu.size(); ++i) {
      const double z = (u - mu[i]) / sigma[i];
      const double mass = phi((1.0 - mu[i]) / sigma[i]) - phi(-mu[i] / sigma[i]);
      sum += std::exp(-0.5 * z * z) / (sigma[i] * std::sqrt(2.0 * kPi) * std::max(mass, 1e-12));
    }
    return std::log(sum / static_cast<double>(mu.size()) + 1e-300);
  }
  double draw(Rng& rng) const {
    const size_t i = rng.below(mu.size());
    for (int tries = 0; tries < 64; ++tries) {
      const double u = mu[i] + sigma[i] * normal(rng);
      if (u >= 0.0 && u <= 1.0) return u;
    }
    return std::clamp(mu[i], 0.0, 1.0);
  }
};

// Where a value (command-line text) of a numeric distribution lies in [0, 1]; an integer range
// [lo, hi] is cut into hi - lo + 1 equal cells, each value at its cell's middle.
double unit_of(const Distribution& d, const std::string& text) {
  const double x = float_of_text(text);
  if (d.kind == DistKind::int_uniform) return (x - d.lo + 0.5) / (d.hi - d.lo + 1.0);
  return std::clamp(d.to_unit(x), 0.0, 1.0);
}

std::string text_of(const Distribution& d, double u) {
  if (d.kind == DistKind::int_uniform) {
    const double x = std::floor(d.lo + u * (d.hi - d.lo + 1.0));
    return std::to_string(static_cast<int64_t>(std::clamp(x, d.lo, d.hi)));
  }
  return float_text(std::clamp(d.from_unit(u), d.lo, d.hi));
}

}  // namespace

Point sample_tpe(const SearchSpace& space, const std::vector<Point>& history, Rng& rng, const Point& fixed,
                 double good_fraction, int candidates) {
  const size_t n_good = std::clamp<size_t>(static_cast<size_t>(std::ceil(good_fraction * static_cast<double>(history.size()))),
                                           1, 25);
  Point p;
  for (const SpaceParam& q : space.params) {
    if (!q.applies(p, space.base)) continue;
    if (const auto f = fixed.find(q.key); f != fixed.end()) {
      p[q.key] = f->second;
      continue;
    }
    std::vector<std::string> good, bad;
    for (size_t i = 0; i < history.size(); ++i) {
      auto it = history[i].find(q.key);
      if (it == history[i].end()) continue;
      (i < n_good ? good : bad).push_back(it->second);
    }
    if (good.empty()) {  // nothing known where this option applied: its own distribution
      p[q.key] = q.dist.draw(rng);
      continue;
    }
    if (q.dist.kind == DistKind::choice) {
      const size_t k = q.dist.choices.size();
      std::vector<double> l(k, 1.0), g(k, 1.0);  // one pseudo-count each: the prior
      for (size_t c = 0; c < k; ++c) {
        l[c] += static_cast<double>(std::count(good.begin(), good.end(), q.dist.choices[c]));
        g[c] += static_cast<double>(std::count(bad.begin(), bad.end(), q.dist.choices[c]));
      }
      const double lsum = std::accumulate(l.begin(), l.end(), 0.0), gsum = std::accumulate(g.begin(), g.end(), 0.0);
      size_t best = 0;
      double best_score = -std::numeric_limits<double>::infinity();
      for (int c = 0; c < candidates; ++c) {
        double u = rng.uniform() * lsum;
        size_t pick = 0;
        while (pick + 1 < k && u >= l[pick]) u -= l[pick++];
        const double score = std::log(l[pick] / lsum) - std::log(g[pick] / gsum);
        if (score > best_score) {
          best_score = score;
          best = pick;
        }
      }
      p[q.key] = q.dist.choices[best];
      continue;
    }
    std::vector<double> gu, bu;
    for (const auto& t : good) gu.push_back(unit_of(q.dist, t));
    for (const auto& t : bad) bu.push_back(unit_of(q.dist, t));
    const Parzen l(gu), g(bu);
    std::string best;
    double best_score = -std::numeric_limits<double>::infinity();
    for (int c = 0; c < candidates; ++c) {
      const std::string text = text_of(q.dist, l.draw(rng));
      const double u = unit_of(q.dist, text);
      const double score = l.log_density(u) - g.log_density(u);
      if (score > best_score) {
        best_score = score;
        best = text;
      }
    }
    p[q.key] = best;
  }
  return p;
}

}  // namespace tailor
