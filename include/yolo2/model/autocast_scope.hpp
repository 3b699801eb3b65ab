// The network's forward pass under autocast (mixed precision), as a scope: the previous autocast
// state comes back at the end, and autocast's cache of lower-precision weight copies is dropped with
// the outermost scope (the weights change at every training step). In the model room so that both
// training (runtime.precision) and evaluation during training can use it.
#pragma once

#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

namespace yolo2::model {

class AutocastScope {
 public:
  // dtype: the lower-precision type (kBFloat16, kHalf); kFloat: no autocast (the scope does nothing).
  AutocastScope(at::ScalarType dtype, c10::DeviceType device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType device_;
  bool was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kFloat;
};

}  // namespace yolo2::model
