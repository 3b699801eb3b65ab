#include "csv_table.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "yolo2/util/atomic_file.hpp"

namespace yolo2::train {

void CsvTable::load(const std::string& path, int64_t max_iteration) {
  rows.clear();
  std::ifstream in(path);
  if (!in) return;
  std::string line;
  std::getline(in, line);
  // The file's columns by name: a file written by another yolo2 (fewer or more columns) keeps its
  // rows; a column the file lacks reads as NaN.
  std::vector<std::string> names;
  std::stringstream hs(line);
  for (std::string cell; std::getline(hs, cell, ',');) names.push_back(cell);
  std::vector<long> where(header.size(), -1);
  for (std::size_t k = 0; k < header.size(); ++k) {
    const auto it = std::find(names.begin(), names.end(), header[k]);
    if (it != names.end()) where[k] = static_cast<long>(it - names.begin());
  }
  while (std::getline(in, line)) {
    std::vector<double> cells;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) cells.push_back(std::strtod(cell.c_str(), nullptr));
    if (cells.size() != names.size() || cells.empty() || cells[0] > static_cast<double>(max_iteration)) continue;
    std::vector<double> row(header.size(), std::nan(""));
    for (std::size_t k = 0; k < header.size(); ++k)
      if (where[k] >= 0) row[k] = cells[static_cast<std::size_t>(where[k])];
    rows.push_back(std::move(row));
  }
}

void CsvTable::save(const std::string& path) const {
  std::ostringstream os;
  for (std::size_t i = 0; i < header.size(); ++i) os << (i ? "," : "") << header[i];
  os << "\n" << std::setprecision(8);
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size(); ++i) os << (i ? "," : "") << r[i];
    os << "\n";
  }
  util::write_file_atomic(path, os.str());
}

std::vector<double> CsvTable::column(const std::string& name) const {
  const auto it = std::find(header.begin(), header.end(), name);
  std::vector<double> v;
  if (it == header.end()) return v;
  const auto k = static_cast<std::size_t>(it - header.begin());
  for (const auto& r : rows) v.push_back(r[k]);
  return v;
}

}  // namespace yolo2::train
