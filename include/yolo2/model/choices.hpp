// The network's choices (config: model.head) and its options (the config's `model` section is
// this struct).
#pragma once

#include <vector>

namespace yolo2::model {

// region: the YOLOv2 detector (yolov2-voc.cfg); classifier: the Darknet19 classifier
// (darknet19.cfg: the detector's first 23 layers, a 1x1 linear convolution to the classes, global
// average pooling and softmax), what `yolo2 pretrain` trains.
enum class Head { Region, Classifier };

struct ModelOptions {
  Head head = Head::Region;     // region (the detector) or classifier (Darknet19, `yolo2 pretrain`)
  double width = 1.0;           // channel multiplier (channels scaled, at least 8)
  std::vector<double> anchors;  // w,h pairs in grid cells
  double bn_momentum = 0.01;    // darknet: rolling = .99 rolling + .01 batch
  double objectness_prior = 0;  // > 0: objectness bias starts at -log((1 - p) / p) (RetinaNet §3.3)
};

}  // namespace yolo2::model
