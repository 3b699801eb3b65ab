// VOC results files ("comp4" detection files), the format the VOC devkit and py-faster-rcnn's
// voc_eval.py read (yolov2-reference.md §6.1): one file per class, named
// <comp_id>_det_<split>_<class>.txt, one line per detection:
//     image_id score xmin ymin xmax ymax
// with 1-based pixel coordinates. Inside the program boxes are 0-based (design.md), so writing
// adds 1 and reading subtracts 1.
#pragma once

#include <string>
#include <vector>

#include "yolo2/eval/voc_ap.hpp"

namespace yolo2::eval {

inline constexpr const char* kDefaultCompId = "comp4";

// "<comp_id>_det_<split>_<class_name>.txt" (no folder).
std::string results_file_name(const std::string& split, const std::string& class_name,
                              const std::string& comp_id = kDefaultCompId);

// Writes one file per class into `dir` (created if missing), every class included so that an
// undetected class reads back as "no detections" rather than "missing". Lines keep the input
// order of `detections`; the score has 6 decimals, coordinates 1 decimal (x + 1). Each file is
// written to a temporary name in `dir` and renamed over the target, so a reader never sees a
// half-written file. Detection::image indexes image_ids, Detection::label indexes class_names.
// Returns the paths written, in class order. Throws yolo2::Error for an out-of-range image or
// label, a non-finite score or coordinate, an image id containing whitespace, a class name or
// split that cannot be part of a file name, or an I/O failure.
std::vector<std::string> write_voc_results(const std::string& dir, const std::string& split,
                                           const std::vector<std::string>& class_names,
                                           const std::vector<std::string>& image_ids,
                                           const std::vector<Detection>& detections,
                                           const std::string& comp_id = kDefaultCompId);

struct ReadResultsOptions {
  std::string comp_id = kDefaultCompId;
  // A missing class file is an error by default (a wrong folder, split or class list would
  // otherwise score as AP 0 silently). When true it means "no detections for that class" and
  // its path is reported through `missing_files`.
  bool allow_missing_files = false;
};

// Reads the files written by write_voc_results (or by darknet / py-faster-rcnn) for every class
// of class_names. image_ids maps each image id to its index (the Detection::image of the
// result); labels are class indices. Coordinates come back 0-based. Detections are returned
// class by class, in file order. Lines holding only whitespace are skipped. Throws yolo2::Error
// naming file and line for a wrong field count, a non-numeric or non-finite field, or an unknown
// image id; naming the file for a missing (unless allowed) or unreadable file; and for a
// duplicated id in image_ids.
std::vector<Detection> read_voc_results(const std::string& dir, const std::string& split,
                                        const std::vector<std::string>& class_names,
                                        const std::vector<std::string>& image_ids,
                                        const ReadResultsOptions& options = {},
                                        std::vector<std::string>* missing_files = nullptr);

}  // namespace yolo2::eval
