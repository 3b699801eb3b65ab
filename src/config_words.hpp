// The YAML word of each config enum value, from config.cpp's one name table per enum (the same
// spelling the config codec reads and writes, for messages and reports elsewhere).
#pragma once

#include "yolo2/data/choices.hpp"
#include "yolo2/loss/choices.hpp"
#include "yolo2/model/choices.hpp"
#include "yolo2/runtime/choices.hpp"
#include "yolo2/train/choices.hpp"

namespace yolo2 {

const char* config_word(data::DatasetFormat value);  // "auto", "voc", "darknet" or "coco"
const char* config_word(data::EvalTransform value);  // "letterbox" or "resize"
const char* config_word(data::JitterMode value);
const char* config_word(data::HsvMode value);
const char* config_word(data::SampleMode value);
const char* config_word(data::CacheMode value);
const char* config_word(loss::ClassLoss value);
const char* config_word(model::Head value);         // "region" or "classifier"
const char* config_word(runtime::Precision value);  // "fp32", "tf32", "bf16" or "fp16"
const char* config_word(train::GammaScheduleType value);
const char* config_word(train::LrPolicy value);
const char* config_word(train::OptimizerKind value);

}  // namespace yolo2
