// A run's CSV log (metrics.csv, eval.csv) kept in memory for the plots and rewritten atomically.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace yolo2::train {

struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<double>> rows;

  // Reads the rows of `path` whose first column (the iteration) is <= max_iteration: a resumed run
  // continues the log of the run it resumes and forgets what came after its checkpoint. Columns
  // are matched by name, so a log written with other columns keeps its rows (missing cells: NaN).
  void load(const std::string& path, int64_t max_iteration);
  void save(const std::string& path) const;
  std::vector<double> column(const std::string& name) const;  // empty when there is no such column
};

}  // namespace yolo2::train
