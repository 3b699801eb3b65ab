// The region loss's class term (config: loss.classification).
#pragma once

namespace yolo2::loss {

enum class ClassLoss { CrossEntropy, Focal, SigmoidFocal };

}  // namespace yolo2::loss
