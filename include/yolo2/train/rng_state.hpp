// The state of LibTorch's default CPU generator as bytes, stored in checkpoints so that a resumed run
// draws what the uninterrupted run would have drawn.
#pragma once

#include <string>

namespace yolo2::train {

std::string rng_state_bytes();
// Restores a state from rng_state_bytes(); an empty string leaves the generator as it is.
void restore_rng_state(const std::string& bytes);

}  // namespace yolo2::train
