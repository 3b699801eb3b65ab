// The registry of training tasks: one line per task.
#include "yolo2/train/tasks.hpp"

#include "yolo2/error.hpp"

namespace yolo2::train {

const std::vector<TaskFactory>& registered_tasks() {
  static const std::vector<TaskFactory> tasks{detection_task, classification_task};
  return tasks;
}

std::unique_ptr<Task> make_task(const std::string& verb) {
  for (TaskFactory make : registered_tasks())
    if (auto task = make(); task->info().verb == verb) return task;
  throw Error("no training task is called '" + verb + "'");
}

// What a task leaves open.
const std::vector<std::string>& Task::settings() const {
  static const std::vector<std::string> none;
  return none;
}
std::vector<double> Task::begin_step(const Trainer&) { return {}; }

}  // namespace yolo2::train
