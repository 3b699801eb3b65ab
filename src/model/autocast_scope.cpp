#include "yolo2/model/autocast_scope.hpp"

#include "../compat/autocast.hpp"

namespace yolo2::model {

AutocastScope::AutocastScope(at::ScalarType dtype, c10::DeviceType device) : device_(device) {
  if (dtype == at::kFloat) return;
  active_ = true;
  was_enabled_ = compat::autocast_enabled(device);
  was_dtype_ = compat::autocast_dtype(device);
  compat::set_autocast(device, true, dtype);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  compat::set_autocast(device_, was_enabled_, was_dtype_);
}

}  // namespace yolo2::model
