// Cooperative stop on Ctrl-C / SIGTERM: the first signal sets a flag that long-running work polls
// (the trainer finishes its iteration, saves, and returns); a second one ends the process at once.
#pragma once

namespace yolo2::util {

void install_stop_handler();
bool stop_requested();
void request_stop();  // what the handler does; also for tests
void clear_stop();
// The signal that asked to stop (SIGINT, SIGTERM), 0 when none did: an interrupted command exits
// 128 + it (130, 143), as a shell reports a process the signal ended.
int stop_signal();

}  // namespace yolo2::util
