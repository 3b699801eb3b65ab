// The training tasks yolo2 knows, each in its own file: the detector (`yolo2 train`,
// detection_task.cpp) and the Darknet19 classifier (`yolo2 pretrain`, classification_task.cpp).
// The CLI makes one verb per registered task; a new task is its file plus one line in tasks.cpp.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "yolo2/data/loader.hpp"
#include "yolo2/train/task.hpp"

namespace yolo2::train {

using TaskFactory = std::unique_ptr<Task> (*)();
const std::vector<TaskFactory>& registered_tasks();
// The task of `yolo2 <verb>`; throws yolo2::Error for an unknown verb.
std::unique_ptr<Task> make_task(const std::string& verb);

std::unique_ptr<Task> detection_task();
std::unique_ptr<Task> classification_task();

// The detector's task on a stream of `images` images made by `make` instead of data.train (the
// bench's fixed batch): no data is read, no test set is evaluated; focal alpha `auto` is not
// resolved (all ones).
std::unique_ptr<Task> detection_task_on(data::BatchMaker make, int64_t images);

}  // namespace yolo2::train
