// The key of a parameter's entry in torch::optim::Optimizer::state_ across LibTorch lines: 1.13
// keys the map by the text of the TensorImpl's address (c10::guts::to_string, an ostringstream's
// `<<` of the pointer), 2.x by the address itself. Chosen from the map's own key type, so no
// version test can go stale.
//
// Included by src/train/optimizer.cpp only.
#pragma once

#include <ATen/core/Tensor.h>
#include <sstream>
#include <string>
#include <type_traits>

namespace yolo2::compat {

template <class StateMap>
typename StateMap::key_type optimizer_state_key(const StateMap&, const at::Tensor& param) {
  if constexpr (std::is_same_v<typename StateMap::key_type, std::string>) {
    std::ostringstream os;
    os << param.unsafeGetTensorImpl();
    return os.str();
  } else {
    return param.unsafeGetTensorImpl();
  }
}

}  // namespace yolo2::compat
