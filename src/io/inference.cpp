#include "yolo2/io/inference.hpp"

#include <spdlog/spdlog.h>

#include "yolo2/error.hpp"
#include "yolo2/io/checkpoint.hpp"
#include "yolo2/io/darknet.hpp"
#include "yolo2/runtime/setup.hpp"

namespace yolo2::io {
namespace {

InferenceModel from_checkpoint(const InferenceSource& s) {
  Checkpoint ck = load_checkpoint(s.checkpoint);
  InferenceModel m;
  if (s.config) {
    m.config = *s.config;
    if (m.config.data.classes != ck.config.data.classes)
      throw Error(s.config->source + ": data.classes differ from those of " + s.checkpoint + " (" +
                  std::to_string(ck.config.data.classes.size()) + " classes)");
  } else {
    reject_overrides(s.checkpoint, s.overrides, {"model", "data.classes"}, "its weights fix the network and classes");
    m.config = ck.config;
    for (const auto& o : s.overrides) apply_override(m.config, o);
  }
  m.config.model = ck.config.model;
  validate(m.config);
  m.model = ck.model;
  m.seen = ck.state ? static_cast<uint64_t>(ck.state->images_seen) : 0;
  return m;
}

InferenceModel from_darknet(const InferenceSource& s) {
  if (!s.config) throw Error(s.darknet_weights + ": darknet weights need a config (--config FILE) for the network");
  InferenceModel m;
  m.config = *s.config;
  m.model = model::YoloV2(model::network_spec(m.config.model, static_cast<int>(m.config.data.classes.size())));
  const auto r = io::load_darknet_weights(*m.model, s.darknet_weights, false);
  m.seen = r.header.seen;
  spdlog::info("darknet weights {} (v{}.{}, seen {})", s.darknet_weights, r.header.major, r.header.minor,
               r.header.seen);
  return m;
}

}  // namespace

InferenceModel load_for_inference(const InferenceSource& s) {
  if (s.checkpoint.empty() == s.darknet_weights.empty())
    throw Error("load_for_inference: give a checkpoint or darknet weights (one of them)");
  InferenceModel m = s.checkpoint.empty() ? from_darknet(s) : from_checkpoint(s);
  if (s.detector && m.model->spec().head == Head::Classifier)
    throw Error((s.checkpoint.empty() ? s.darknet_weights : s.checkpoint) +
                ": this is a Darknet19 classifier (model.head: classifier), not a detector; its top-1 / top-5 are "
                "in its run's eval.csv, and `yolo2 export --prefix 23` makes the backbone for train.init_weights");
  if (s.to_device) {
    runtime::setup_runtime(m.config.runtime);
    m.device = runtime::resolve_device(m.config.runtime.device);
    // Inference in fp32 with TF32 off (LibTorch's default would leave TF32 on in cuDNN), so that an
    // fp32 run's checkpoint scores in `yolo2 eval` as during its training.
    runtime::setup_precision(Precision::Fp32, m.device);
    m.model->to(m.device);
  }
  m.model->eval();
  return m;
}

}  // namespace yolo2::io
