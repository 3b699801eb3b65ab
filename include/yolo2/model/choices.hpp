// The network's choices (config: model.head).
#pragma once

namespace yolo2::model {

// region: the YOLOv2 detector (yolov2-voc.cfg); classifier: the Darknet19 classifier
// (darknet19.cfg: the detector's first 23 layers, a 1x1 linear convolution to the classes, global
// average pooling and softmax), what `yolo2 pretrain` trains.
enum class Head { Region, Classifier };

}  // namespace yolo2::model
