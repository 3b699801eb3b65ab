// One row of metrics.csv: its columns and a step's values, shared by the metrics hook (the CSV and
// loss.png) and the TensorBoard hook (the same values as scalars).
#pragma once

#include <string>
#include <vector>

#include "yolo2/train/trainer.hpp"

namespace yolo2::train {

std::vector<std::string> metrics_columns(Trainer& t);
std::vector<double> metrics_row(Trainer& t, const StepRecord& s);

}  // namespace yolo2::train
