// `yolo2 detect` on files: which images an input names, the checks made before any work (nothing of
// the user's is replaced), the drawn copies and the JSON report. The verb only parses its flags and
// runs a Detector over list_detect_images().
#pragma once

#include <opencv2/core/mat.hpp>

#include <string>
#include <vector>

#include "yolo2/eval/voc_ap.hpp"

namespace yolo2::eval {

// An image file, or a folder's .jpg/.jpeg/.png/.bmp files (any case), sorted. Throws naming the input
// when it does not exist or the folder holds none.
std::vector<std::string> list_detect_images(const std::string& input);

// Throws before any work when a result could not be written at the end (the JSON's folder missing
// or not writable, the JSON a folder) or would replace an input (--output the input folder, or the
// folder of one of `files`: a drawn copy keeps its image's name). Empty `json` / `output`: not
// written.
void check_detect_outputs(const std::string& json, const std::string& output, const std::string& input,
                          const std::vector<std::string>& files);

// The drawn copy of `file` in `output`, under the input's file name, encoded in its format (.jpeg as
// .jpg), written atomically.
void write_drawn_image(const std::string& output, const std::string& file, const cv::Mat& drawn);

// One image's outcome: its size and detections, or why it could not be read.
struct ImageDetections {
  std::string file;
  int width = 0, height = 0;
  std::vector<Detection> detections;
  std::string error;  // non-empty: not read (no size, no detections)
};

// The JSON report, an array with one object per image in order: {"image", "width", "height",
// "detections": [{"class", "label", "score", "box": [x1, y1, x2, y2]}]} (0-based pixels of the
// original image), or {"image", "error"}.
std::string detections_json(const std::vector<ImageDetections>& images, const std::vector<std::string>& class_names);

}  // namespace yolo2::eval
