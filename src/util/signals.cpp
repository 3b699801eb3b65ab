#include "yolo2/util/signals.hpp"

#include <atomic>
#include <csignal>

namespace yolo2::util {

namespace {
std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};  // the first stop signal

extern "C" void on_stop_signal(int sig) {
  int none = 0;
  g_signal.compare_exchange_strong(none, sig);
  if (g_stop.exchange(true)) {
    // Second signal: give up on the graceful path.
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}
}  // namespace

void install_stop_handler() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

bool stop_requested() { return g_stop.load(std::memory_order_relaxed); }
void request_stop() { g_stop.store(true); }
void clear_stop() {
  g_stop.store(false);
  g_signal.store(0);
}
int stop_signal() { return g_signal.load(); }

}  // namespace yolo2::util
