// Report files of an evaluation that need drawing: precision-recall curves as PNG.
#pragma once

#include <string>
#include <vector>

#include "yolo2/eval/voc_ap.hpp"

namespace yolo2::eval {

// Writes into `dir` (created if missing) one pr_<class>.png per class with an AP (the AP, metric
// and IoU threshold in the title) and pr_summary.png with every such class, its AP in the
// legend and the mAP in the title. Classes with NaN AP (no non-difficult ground truth) have no
// curve and get no file. Class names are sanitised for file names (characters other than
// letters, digits, '-', '_' and '.' become '_'). Returns the paths written, summary last.
// Throws yolo2::Error on I/O failure.
std::vector<std::string> save_pr_plots(const MapResult& result, const std::string& dir);
// The summary plot alone (pr_summary.png's drawing) at `path`: a training run's pr.png.
void save_pr_summary(const MapResult& result, const std::string& path);

}  // namespace yolo2::eval
