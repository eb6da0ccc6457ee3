#pragma once
// How a search ranks trials and proposes the next: non-dominated sorting with crowding distance
// (Deb et al., NSGA-II) for several objectives, and the tree-structured Parzen estimator
// (Bergstra et al. 2011) over the space's distributions, one option at a time.
#include <cstddef>
#include <vector>

#include "search/space.hpp"
#include "util/rng.hpp"

namespace tailor {

// Objective vectors, every component to be minimised (a maximised one negated). The front of each
// point: 0 for the non-dominated, 1 for those dominated only by front 0, and so on.
std::vector<int> pareto_fronts(const std::vector<std::vector<double>>& points);
// Each point's crowding distance within its front (infinite at a front's ends, and for fronts of
// one or two points): larger is lonelier, and better kept.
std::vector<double> crowding_distances(const std::vector<std::vector<double>>& points, const std::vector<int>& fronts);
// Indices best first: by front, then by crowding distance (larger first), then by index (older
// first). With one objective: by its value, then by index.
std::vector<size_t> rank_order(const std::vector<std::vector<double>>& points);

// A point drawn uniformly from the space (each option's own distribution; an option whose `when`
// does not hold is left out). One draw from `rng` per option that applies and is not in `fixed`;
// an option in `fixed` (the space's stratified choices) takes that value.
Point sample_random(const SearchSpace& space, Rng& rng, const Point& fixed = {});

// A point from the tree-structured Parzen estimator: `history` holds the points tried so far, best
// first. The best `good_fraction` of them (at least one, at most 25) make l(x), the rest g(x);
// each option takes, of `candidates` draws from l, the one with the largest l(x)/g(x). Options
// are drawn in the space's order, so a `when` sees its parent's value; an option in `fixed`
// takes that value. Deterministic for a given stream and history.
Point sample_tpe(const SearchSpace& space, const std::vector<Point>& history, Rng& rng, const Point& fixed = {},
                 double good_fraction = 0.15, int candidates = 24);

// The values the space's stratified choices take in the next trial, given the points sampled so
// far: for each, the choice the fewest of them had (the first in the space's order on a tie).
Point stratified_values(const SearchSpace& space, const std::vector<Point>& sampled);

}  // namespace tailor
