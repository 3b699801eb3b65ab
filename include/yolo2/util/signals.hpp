// Cooperative stop on Ctrl-C / SIGTERM: the first signal sets a flag that long-running work polls
// (the trainer finishes its iteration, saves, and returns); a second one ends the process at once.
#pragma once

namespace yolo2::util {

void install_stop_handler();
bool stop_requested();
void request_stop();  // what the handler does; also for tests
void clear_stop();

}  // namespace yolo2::util
