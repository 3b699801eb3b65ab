// The YAML word of a config enum value, from config.cpp's own name tables (one spelling, used by
// the config codec and by messages elsewhere).
#pragma once

#include "yolo2/model/choices.hpp"
#include "yolo2/runtime/choices.hpp"

namespace yolo2 {

const char* config_word(runtime::Precision value);  // "fp32", "tf32", "bf16" or "fp16"
const char* config_word(model::Head value);         // "region" or "classifier"

}  // namespace yolo2
