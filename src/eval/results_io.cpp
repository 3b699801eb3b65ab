// VOC comp4 results files: writing (atomic, 1-based) and strict reading (0-based).
#include "yolo2/eval/results_io.hpp"

#include <charconv>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "yolo2/error.hpp"
#include "yolo2/util/atomic_file.hpp"

namespace yolo2::eval {
namespace {

namespace fs = std::filesystem;

constexpr int kFieldsPerLine = 6;  // image_id score xmin ymin xmax ymax

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

void check_name_part(const std::string& value, const char* what) {
  if (value.empty() || value.find('/') != std::string::npos || value.find('\0') != std::string::npos) {
    throw Error(std::string("VOC results: ") + what + " '" + value +
                "' cannot be part of a file name (empty or contains '/')");
  }
}

// The shortest decimal that reads back as exactly `value`, locale-independent (printf would follow
// LC_NUMERIC): scoring a run's own results files then gives exactly the mAP it printed, where a
// fixed 0.1 px could move an IoU across the threshold.
void append_exact(std::string& out, double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  if (result.ec != std::errc()) throw Error("VOC results: cannot format number");
  out.append(buffer, result.ptr);
}

std::string where(const std::string& file, std::size_t line) { return file + ":" + std::to_string(line) + ": "; }

double parse_number(std::string_view field, const std::string& file, std::size_t line, const char* name) {
  double value = 0;
  const auto result = std::from_chars(field.data(), field.data() + field.size(), value);
  if (result.ec != std::errc() || result.ptr != field.data() + field.size() || !std::isfinite(value)) {
    throw Error(where(file, line) + name + " '" + std::string(field) + "' is not a finite number");
  }
  return value;
}

}  // namespace

std::string results_file_name(const std::string& split, const std::string& class_name, const std::string& comp_id) {
  return comp_id + "_det_" + split + "_" + class_name + ".txt";
}

std::vector<std::string> write_voc_results(const std::string& dir, const std::string& split,
                                           const std::vector<std::string>& class_names,
                                           const std::vector<std::string>& image_ids,
                                           const std::vector<Detection>& detections, const std::string& comp_id) {
  check_name_part(comp_id, "comp id");
  check_name_part(split, "split");
  for (const std::string& name : class_names) check_name_part(name, "class name");
  for (const std::string& id : image_ids) {
    for (char c : id) {
      if (is_space(c)) throw Error("VOC results: image id '" + id + "' contains whitespace");
    }
    if (id.empty()) throw Error("VOC results: empty image id");
  }

  std::vector<std::string> content(class_names.size());
  for (std::size_t i = 0; i < detections.size(); ++i) {
    const Detection& d = detections[i];
    if (d.image < 0 || static_cast<std::size_t>(d.image) >= image_ids.size()) {
      throw Error("VOC results: detection " + std::to_string(i) + " refers to image " + std::to_string(d.image) +
                  ", outside [0, " + std::to_string(image_ids.size()) + ")");
    }
    if (d.label < 0 || static_cast<std::size_t>(d.label) >= class_names.size()) {
      throw Error("VOC results: detection " + std::to_string(i) + " has label " + std::to_string(d.label) +
                  ", outside [0, " + std::to_string(class_names.size()) + ")");
    }
    const float values[5] = {d.score, d.box.x1, d.box.y1, d.box.x2, d.box.y2};
    for (float v : values) {
      if (!std::isfinite(v)) {
        throw Error("VOC results: detection " + std::to_string(i) + " (image " + image_ids[d.image] +
                    ") has a non-finite score or coordinate");
      }
    }
    std::string& out = content[static_cast<std::size_t>(d.label)];
    out += image_ids[static_cast<std::size_t>(d.image)];
    out += ' ';
    append_exact(out, d.score);
    for (int k = 1; k < 5; ++k) {
      out += ' ';
      append_exact(out, static_cast<double>(values[k]) + 1.0);  // 1-based; exact in double
    }
    out += '\n';
  }

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create results folder " + dir + ": " + ec.message());
  std::vector<std::string> written;
  written.reserve(class_names.size());
  for (std::size_t c = 0; c < class_names.size(); ++c) {
    const fs::path path = fs::path(dir) / results_file_name(split, class_names[c], comp_id);
    util::write_file_atomic(path.string(), content[c]);  // readers never see half a file
    written.push_back(path.string());
  }
  return written;
}

namespace {

// One results file's lines (image_id score xmin ymin xmax ymax, 1-based pixels) as class `label`'s
// detections; errors name the file and line.
void read_results_file(const std::string& file, int label, const std::string& split,
                       const std::unordered_map<std::string_view, int>& index_of, std::vector<Detection>& detections) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error("cannot open VOC results file " + file);
  std::size_t line_number = 0;
  for (std::string text; std::getline(in, text);) {
    ++line_number;
    std::string_view fields[kFieldsPerLine];
    int count = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
      while (pos < text.size() && is_space(text[pos])) ++pos;
      if (pos == text.size()) break;
      const std::size_t start = pos;
      while (pos < text.size() && !is_space(text[pos])) ++pos;
      if (count < kFieldsPerLine) fields[count] = std::string_view(text).substr(start, pos - start);
      ++count;
    }
    if (count == 0) continue;
    if (count != kFieldsPerLine)
      throw Error(where(file, line_number) + "expected " + std::to_string(kFieldsPerLine) +
                  " fields (image_id score xmin ymin xmax ymax), found " + std::to_string(count));
    const auto found = index_of.find(fields[0]);
    if (found == index_of.end())
      throw Error(where(file, line_number) + "unknown image id '" + std::string(fields[0]) + "' (not in the " + split +
                  " image list)");
    Detection d;
    d.image = found->second;
    d.label = label;
    d.score = static_cast<float>(parse_number(fields[1], file, line_number, "score"));
    d.box.x1 = static_cast<float>(parse_number(fields[2], file, line_number, "xmin") - 1.0);
    d.box.y1 = static_cast<float>(parse_number(fields[3], file, line_number, "ymin") - 1.0);
    d.box.x2 = static_cast<float>(parse_number(fields[4], file, line_number, "xmax") - 1.0);
    d.box.y2 = static_cast<float>(parse_number(fields[5], file, line_number, "ymax") - 1.0);
    detections.push_back(d);
  }
  if (in.bad()) throw Error("error reading VOC results file " + file);
}

}  // namespace

std::vector<Detection> read_voc_results(const std::string& dir, const std::string& split,
                                        const std::vector<std::string>& class_names,
                                        const std::vector<std::string>& image_ids, const ReadResultsOptions& options,
                                        std::vector<std::string>* missing_files) {
  std::unordered_map<std::string_view, int> index_of;
  index_of.reserve(image_ids.size());
  for (std::size_t i = 0; i < image_ids.size(); ++i)
    if (!index_of.emplace(image_ids[i], static_cast<int>(i)).second)
      throw Error("VOC results: image id '" + image_ids[i] + "' appears twice in the image list");
  std::vector<Detection> detections;
  for (std::size_t c = 0; c < class_names.size(); ++c) {
    const std::string file = (fs::path(dir) / results_file_name(split, class_names[c], options.comp_id)).string();
    std::error_code ec;
    if (fs::exists(file, ec)) {
      read_results_file(file, static_cast<int>(c), split, index_of, detections);
      continue;
    }
    if (!options.allow_missing_files)
      throw Error("missing VOC results file " + file + " (class '" + class_names[c] +
                  "'): --detections takes the folder that holds comp4_det_<split>_<class>.txt for every class "
                  "(`yolo2 eval -o OUT` writes them to OUT/results; a class without detections has an empty file)");
    if (missing_files) missing_files->push_back(file);
  }
  return detections;
}

}  // namespace yolo2::eval
