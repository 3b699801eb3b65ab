// A run's CSV log (metrics.csv, eval.csv) kept in memory for the plots. The first save writes the
// file atomically; later saves append the new rows (a long run's log is not rewritten whole at every
// checkpoint). A save cut short by a crash leaves at most a partial last line, which load() drops.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace yolo2::train {

struct CsvTable {
  explicit CsvTable(std::vector<std::string> columns, std::vector<std::vector<double>> initial = {})
      : header(std::move(columns)), rows(std::move(initial)) {}

  std::vector<std::string> header;
  std::vector<std::vector<double>> rows;

  // Reads the rows of `path` whose first column (the iteration) is <= max_iteration: a resumed run
  // continues the log of the run it resumes and forgets what came after its checkpoint. Columns
  // are matched by name, so a log written with other columns keeps its rows (missing cells: NaN);
  // an empty header takes the file's columns.
  void load(const std::string& path, int64_t max_iteration);
  void save(const std::string& path);
  std::vector<double> column(const std::string& name) const;  // empty when there is no such column

 private:
  std::size_t saved_ = 0;  // rows in the file since this table last wrote it whole (0: rewrite it)
};

// A value as a CSV row holds it (8 significant digits), read back: what a reader of the file sees.
double csv_value(double v);

}  // namespace yolo2::train
