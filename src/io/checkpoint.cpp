#include "yolo2/io/checkpoint.hpp"

#include <torch/optim/optimizer.h>
#include <torch/serialize/output-archive.h>

#include <filesystem>

#include "yolo2/error.hpp"
#include "yolo2/util/atomic_file.hpp"
#include "yolo2/util/zip_check.hpp"

namespace yolo2::io {

namespace {
constexpr const char* kFormatKey = "yolo2_format";
constexpr const char* kFormat = "yolo2-checkpoint-1";

void check_shapes(const std::string& path, model::YoloV2Impl& m,
                  const std::vector<std::pair<std::string, std::vector<int64_t>>>& expected) {
  auto params = m.named_parameters();
  auto buffers = m.named_buffers();
  for (const auto& [name, shape] : expected) {
    const at::Tensor* t = params.find(name);
    if (!t) t = buffers.find(name);
    if (!t || t->sizes().vec() != shape)
      throw Error(path + ": the stored tensor " + name + " has shape " + (t ? c10::str(t->sizes()) : "none") +
                  " but the stored config's network needs " + c10::str(at::IntArrayRef(shape)));
  }
}
}  // namespace

void reject_overrides(const std::string& checkpoint, const std::vector<std::string>& overrides,
                      const std::vector<std::string>& fixed, const std::string& why) {
  for (const auto& o : overrides) {
    const std::string key = o.substr(0, o.find('='));
    for (const auto& f : fixed)
      if (key == f || key.rfind(f + ".", 0) == 0)
        throw Error("--set " + o + ": '" + key + "' cannot change on " + checkpoint + " (" + why + ")");
  }
}

std::string checkpoint_bytes(model::YoloV2Impl& model, const Config& config, const TrainState* state,
                             torch::optim::Optimizer* optimizer) {
  torch::serialize::OutputArchive archive;
  archive.write(kFormatKey, c10::IValue(std::string(kFormat)));
  archive.write("config", c10::IValue(to_yaml(config)));
  torch::serialize::OutputArchive weights;
  model.save(weights);
  archive.write("model", weights);
  if (state) {
    archive.write("state/iteration", c10::IValue(state->iteration));
    archive.write("state/images_seen", c10::IValue(state->images_seen));
    archive.write("state/best_map", c10::IValue(state->best_map));
    archive.write("state/best_iteration", c10::IValue(state->best_iteration));
    archive.write("state/rng_state", c10::IValue(state->rng_state));
    archive.write("state/loss_scale", c10::IValue(state->loss_scale.scale));
    archive.write("state/loss_scale_good_steps", c10::IValue(state->loss_scale.good_steps));
    archive.write("state/overflow_skips", c10::IValue(state->loss_scale.skipped));
  }
  if (optimizer) {
    torch::serialize::OutputArchive opt;
    optimizer->save(opt);
    archive.write("optimizer", opt);
  }
  // Serialised in memory first: a write error (a full disk) then surfaces from write_file_atomic as
  // one clear error with the previous file intact, not from inside LibTorch's zip writer.
  std::string bytes;
  archive.save_to([&](const void* data, size_t size) -> size_t {
    bytes.append(static_cast<const char*>(data), size);
    return size;
  });
  return bytes;
}

void save_checkpoint(const std::string& path, model::YoloV2Impl& model, const Config& config, const TrainState* state,
                     torch::optim::Optimizer* optimizer) {
  util::write_file_atomic(path, checkpoint_bytes(model, config, state, optimizer));
}

Checkpoint load_checkpoint(const std::string& path, const c10::Device& device) {
  if (!std::filesystem::exists(path)) throw Error(path + ": checkpoint not found");
  util::verify_zip_checksums(path);
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path, device);
  } catch (const c10::Error& e) {
    throw Error(path +
                ": not a readable yolo2 checkpoint (truncated or another format): " + e.what_without_backtrace());
  }
  c10::IValue format;
  if (!archive.try_read(kFormatKey, format) || !format.isString() || format.toStringRef() != kFormat)
    throw Error(path + ": not a yolo2 checkpoint (no '" + std::string(kFormat) + "' marker)");
  Checkpoint ck;
  c10::IValue yaml;
  archive.read("config", yaml);
  ck.config = parse_config(yaml.toStringRef(), path + " (stored config)");
  ck.model = model::YoloV2(model::network_spec(ck.config.model, static_cast<int>(ck.config.data.classes.size())));
  // Module::load replaces each tensor by the stored one: every shape is compared afterwards.
  std::vector<std::pair<std::string, std::vector<int64_t>>> expected;
  for (const auto& kv : ck.model->named_parameters()) expected.emplace_back(kv.key(), kv.value().sizes().vec());
  for (const auto& kv : ck.model->named_buffers()) expected.emplace_back(kv.key(), kv.value().sizes().vec());
  try {
    torch::serialize::InputArchive weights;
    archive.read("model", weights);
    ck.model->load(weights);
  } catch (const c10::Error& e) {
    throw Error(path + ": the stored weights do not fit the stored config: " + e.what_without_backtrace());
  }
  check_shapes(path, *ck.model, expected);
  ck.model->to(device);
  c10::IValue v;
  if (archive.try_read("state/iteration", v)) {
    TrainState s;
    s.iteration = v.toInt();
    archive.read("state/images_seen", v);
    s.images_seen = v.toInt();
    archive.read("state/best_map", v);
    s.best_map = v.toDouble();
    archive.read("state/best_iteration", v);
    s.best_iteration = v.toInt();
    archive.read("state/rng_state", v);
    s.rng_state = v.toStringRef();
    // Checkpoints from before runtime.precision have no loss scale: the initial one.
    if (archive.try_read("state/loss_scale", v)) s.loss_scale.scale = v.toDouble();
    if (archive.try_read("state/loss_scale_good_steps", v)) s.loss_scale.good_steps = v.toInt();
    if (archive.try_read("state/overflow_skips", v)) s.loss_scale.skipped = v.toInt();
    ck.state = s;
  }
  torch::serialize::InputArchive opt;
  if (archive.try_read("optimizer", opt)) ck.optimizer = std::move(opt);
  return ck;
}

}  // namespace yolo2::io
