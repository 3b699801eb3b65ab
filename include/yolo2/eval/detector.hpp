// Single-image detection (`yolo2 detect`) and drawing.
#pragma once

#include <opencv2/core.hpp>

#include <string>
#include <vector>

#include "yolo2/data/choices.hpp"
#include "yolo2/eval/decode.hpp"
#include "yolo2/model/yolov2.hpp"

namespace yolo2::eval {

struct DetectorOptions {
  int input_size = 416;
  data::EvalTransform eval_transform = data::EvalTransform::Letterbox;  // as the network was evaluated
};

class Detector {
 public:
  Detector(model::YoloV2Impl& model, const DetectorOptions& options, const c10::Device& device);
  // bgr: an 8-bit BGR image. Boxes in its pixel coordinates (Detection::image is 0).
  std::vector<Detection> detect(const cv::Mat& bgr, const DetectOptions& options) const;

 private:
  model::FusedYoloV2 net_;
  DetectorOptions options_;
  c10::Device device_;
};

// The image with each box drawn in its class colour, labelled "name score".
cv::Mat draw_detections(const cv::Mat& bgr, const std::vector<Detection>& detections,
                        const std::vector<std::string>& class_names);

}  // namespace yolo2::eval
