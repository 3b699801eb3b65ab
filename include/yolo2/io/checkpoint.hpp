// yolo2 checkpoints: one file with the model weights, the resolved config and (for training runs)
// the optimizer and loop state, written atomically. `eval`, `detect` and `export` need only this
// file. The io room (checkpoints, darknet files, initial weights, inference load) sits above
// runtime/ (shared/design.md lists it below): a training state carries fp16's loss scale.
#pragma once

#include <torch/serialize/input-archive.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "yolo2/config.hpp"
#include "yolo2/model/yolov2.hpp"
#include "yolo2/runtime/precision.hpp"

namespace torch::optim {
class Optimizer;
}

namespace yolo2::io {

// Where a training run stands; a resumed run continues from exactly here.
struct TrainState {
  int64_t iteration = 0;    // optimizer steps done
  int64_t images_seen = 0;  // darknet's `seen`
  double best_map = -1;     // best test mAP so far (-1: none yet)
  int64_t best_iteration = -1;
  std::string rng_state;          // LibTorch CPU generator state (bytes)
  runtime::LossScale loss_scale;  // fp16's dynamic loss scale (runtime.precision)
};

struct Checkpoint {
  Config config;
  model::YoloV2 model{nullptr};
  std::optional<TrainState> state;
  // Present when the file holds optimizer state; restore with Optimizer::load.
  std::optional<torch::serialize::InputArchive> optimizer;
};

// The checkpoint's file content, serialised in memory: a snapshot of the weights (copied to the host)
// and state, which a background writer can put on disk while training changes the weights.
std::string checkpoint_bytes(model::YoloV2Impl& model, const Config& config, const TrainState* state = nullptr,
                             torch::optim::Optimizer* optimizer = nullptr);

// Writes the checkpoint atomically (temp file, flush, fsync, rename).
void save_checkpoint(const std::string& path, model::YoloV2Impl& model, const Config& config,
                     const TrainState* state = nullptr, torch::optim::Optimizer* optimizer = nullptr);

// `--set key=value` overrides a checkpoint's stored config must not take because its weights or
// state fix them: keys equal to one of `fixed` or under it ("model" covers model.width). Throws
// yolo2::Error naming the key, the checkpoint and `why`.
void reject_overrides(const std::string& checkpoint, const std::vector<std::string>& overrides,
                      const std::vector<std::string>& fixed, const std::string& why);

// Reads a checkpoint; the model is rebuilt from the stored config and placed on `device`.
// A missing, truncated or foreign file is a yolo2::Error naming it.
Checkpoint load_checkpoint(const std::string& path, const c10::Device& device = c10::Device(c10::kCPU));

}  // namespace yolo2::io
