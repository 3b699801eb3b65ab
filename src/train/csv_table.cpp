#include "csv_table.hpp"

#include <algorithm>
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
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<double> row;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) row.push_back(std::strtod(cell.c_str(), nullptr));
    if (row.size() == header.size() && row[0] <= static_cast<double>(max_iteration)) rows.push_back(row);
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
