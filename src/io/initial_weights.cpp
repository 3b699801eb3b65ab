#include "yolo2/io/initial_weights.hpp"

#include <spdlog/spdlog.h>
#include <torch/utils.h>

#include <filesystem>
#include <fstream>

#include "yolo2/error.hpp"
#include "yolo2/io/checkpoint.hpp"
#include "yolo2/io/darknet.hpp"

namespace yolo2::io {
namespace {

void copy_from_checkpoint(model::YoloV2Impl& m, const std::string& path) {
  auto ck = load_checkpoint(path);
  const auto ours = m.named_parameters(), theirs = ck.model->named_parameters();
  if (ours.size() != theirs.size())
    throw Error(path + ": the checkpoint's network does not match this config's (layers or classes differ)");
  torch::NoGradGuard g;
  for (const auto& kv : ours) {
    const at::Tensor& src = theirs[kv.key()];
    if (src.sizes() != kv.value().sizes())
      throw Error(path + ": parameter " + kv.key() + " has shape " + c10::str(src.sizes()) + ", this network " +
                  c10::str(kv.value().sizes()));
    kv.value().copy_(src);
  }
  auto bufs = m.named_buffers();
  for (const auto& kv : ck.model->named_buffers()) bufs[kv.key()].copy_(kv.value());
  spdlog::info("init: weights from yolo2 checkpoint {}", path);
}

}  // namespace

void load_initial_weights(model::YoloV2Impl& m, const std::string& path) {
  if (path.empty()) return;
  if (!std::filesystem::exists(path)) throw Error(path + ": train.init_weights file not found");
  if (std::filesystem::is_directory(path))
    throw Error(path +
                ": train.init_weights is a folder; give a darknet .weights file (a full model or a prefix such "
                "as darknet19_448.conv.23) or a yolo2 checkpoint");
  // A yolo2 checkpoint is a zip archive ("PK"); anything else is read as darknet weights.
  std::ifstream in(path, std::ios::binary);
  char magic[2] = {0, 0};
  in.read(magic, 2);
  if (magic[0] == 'P' && magic[1] == 'K') return copy_from_checkpoint(m, path);
  const auto r = io::load_darknet_weights(m, path, /*allow_prefix=*/true);
  spdlog::info("init: darknet weights {} (v{}.{}, seen {}): {} of {} convolutions", path, r.header.major,
               r.header.minor, r.header.seen, r.conv_layers_loaded, r.conv_layers_total);
}

}  // namespace yolo2::io
