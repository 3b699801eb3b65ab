#include "csv_table.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "yolo2/error.hpp"
#include "yolo2/util/atomic_file.hpp"

namespace yolo2::train {

namespace {

constexpr int kCsvDigits = 8;

std::string format_rows(const std::vector<std::vector<double>>& rows, std::size_t from) {
  std::ostringstream os;
  os << std::setprecision(kCsvDigits);
  for (std::size_t k = from; k < rows.size(); ++k) {
    for (std::size_t i = 0; i < rows[k].size(); ++i) os << (i ? "," : "") << rows[k][i];
    os << "\n";
  }
  return os.str();
}

}  // namespace

double csv_value(double v) {
  if (!std::isfinite(v)) return v;
  std::ostringstream os;
  os << std::setprecision(kCsvDigits) << v;
  return std::strtod(os.str().c_str(), nullptr);
}

void CsvTable::load(const std::string& path, int64_t max_iteration) {
  rows.clear();
  saved_ = 0;  // the file may hold rows past max_iteration: the next save rewrites it
  std::ifstream in(path);
  if (!in) return;
  std::string line;
  std::getline(in, line);
  // The file's columns by name: a file written by another yolo2 (fewer or more columns) keeps its
  // rows; a column the file lacks reads as NaN.
  std::vector<std::string> names;
  std::stringstream hs(line);
  for (std::string cell; std::getline(hs, cell, ',');) names.push_back(cell);
  if (header.empty()) header = names;  // a reader of the file as it is (the TensorBoard hook)
  std::vector<long> where(header.size(), -1);
  for (std::size_t k = 0; k < header.size(); ++k) {
    const auto it = std::find(names.begin(), names.end(), header[k]);
    if (it != names.end()) where[k] = static_cast<long>(it - names.begin());
  }
  while (std::getline(in, line)) {
    if (in.eof()) break;  // a last line without its newline: an append cut short
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

void CsvTable::save(const std::string& path) {
  if (saved_ > 0 && saved_ <= rows.size() && std::filesystem::exists(path)) {
    if (saved_ == rows.size()) return;
    const std::string tail = format_rows(rows, saved_);
    std::FILE* f = std::fopen(path.c_str(), "ab");
    if (!f) throw Error(path + ": cannot open for appending: " + std::strerror(errno));
    const bool ok =
        std::fwrite(tail.data(), 1, tail.size(), f) == tail.size() && std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
    const std::string reason = std::strerror(errno);
    std::fclose(f);
    if (!ok) throw Error(path + ": append failed (disk full?): " + reason);
    saved_ = rows.size();
    return;
  }
  std::ostringstream os;
  for (std::size_t i = 0; i < header.size(); ++i) os << (i ? "," : "") << header[i];
  os << "\n" << format_rows(rows, 0);
  util::write_file_atomic(path, os.str());
  saved_ = rows.size();
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
