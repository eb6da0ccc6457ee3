#pragma once
// The results table of a sweep: one row per configuration (trials that differ only by seed are
// one row, with mean and standard deviation), and the study's Table 1 figures beside the rows
// that match one of its rows.
#include <string>

namespace tailor {

// Reads SWEEP_DIR/sweep.json and every finished trial, writes SWEEP_DIR/table.csv and table.md
// (atomically) and returns the Markdown. `study_csv` is the text of a table like
// experiments/study_table1.csv (empty: no comparison columns).
std::string write_results_table(const std::string& sweep_dir, const std::string& study_csv);

// The study's Table 1 (experiments/study_table1.csv, built into the binary).
const std::string& study_table1_csv();

}  // namespace tailor
