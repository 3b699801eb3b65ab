// `yolo2 export`: a checkpoint as darknet .cfg + .weights, or its first N layers as a prefix file
// (darknet's `partial`, e.g. darknet19_448.conv.23 from a pretrained classifier), or as an ONNX model
// (--format onnx; io/onnx_export.hpp).
#include <spdlog/spdlog.h>

#include <filesystem>
#include <string>
#include <vector>

#include "verbs.hpp"
#include "yolo2/error.hpp"
#include "yolo2/io/darknet.hpp"
#include "yolo2/io/inference.hpp"
#include "yolo2/io/onnx_export.hpp"

namespace yolo2::cli {

namespace {

struct ExportFlags {
  std::string checkpoint, format = "darknet", prefix, output;
  int layers = 0;
  io::OnnxExportOptions onnx;
  bool keep_bn = false;
  double conf = -1, iou = -1;
};

// Before anything is read or written: the outputs are files, and none of them is the input.
void check_outputs(const std::vector<std::string>& outputs, const std::string& ckpt, const std::string& flag) {
  for (const auto& out : outputs) {
    if (out.empty() || out.back() == '/' || std::filesystem::is_directory(out))
      throw Error("export " + flag + " " + out + ": a file name is needed (e.g. " +
                  (std::filesystem::path(out) / "yolov2").string() + "), not a folder");
    std::error_code ec;
    if (std::filesystem::exists(out, ec) && std::filesystem::equivalent(out, ckpt, ec))
      throw Error("export: " + out + " is the input checkpoint " + ckpt +
                  ": writing it would destroy the checkpoint; " + "pick another " + flag + " (nothing was written)");
  }
}

// The checkpoint's network on the CPU; a pretrained classifier exports too.
io::InferenceModel load_checkpoint(const std::string& checkpoint) {
  io::InferenceSource src;
  src.checkpoint = checkpoint;
  src.to_device = false;
  src.detector = false;
  return io::load_for_inference(src);
}

void export_onnx_file(const ExportFlags& f) {
  check_outputs({f.output}, f.checkpoint, "--output");
  io::InferenceModel im = load_checkpoint(f.checkpoint);
  io::OnnxExportOptions o = f.onnx;
  o.fold_bn = !f.keep_bn;
  o.score_threshold = static_cast<float>(f.conf >= 0 ? f.conf : im.config.eval.detect_thresh);
  o.iou_threshold = static_cast<float>(f.iou >= 0 ? f.iou : im.config.eval.nms);
  const io::OnnxExportSummary s = io::export_onnx(*im.model, im.config, f.output, o);
  std::string outs;
  for (const auto& x : s.outputs) outs += (outs.empty() ? "" : ", ") + x;
  spdlog::info(
      "export: wrote {} (ONNX opset 11, {} nodes, {:.1f} MB, input images [batch, 3, {}, {}], batch norm {}; "
      "outputs {})",
      f.output, s.nodes, static_cast<double>(s.bytes) / 1e6, s.size, s.size, f.keep_bn ? "kept" : "folded", outs);
}

void export_darknet_files(const ExportFlags& f) {
  const std::vector<std::string> outputs = f.layers > 0
                                               ? std::vector<std::string>{f.prefix}
                                               : std::vector<std::string>{f.prefix + ".cfg", f.prefix + ".weights"};
  if (f.prefix.empty() || f.prefix.back() == '/' || std::filesystem::is_directory(f.prefix))
    throw Error("export --darknet " + f.prefix + ": a file name prefix is needed (e.g. " +
                (std::filesystem::path(f.prefix) / "yolov2").string() + "), not a folder");
  check_outputs(outputs, f.checkpoint, "--darknet");
  io::InferenceModel im = load_checkpoint(f.checkpoint);
  if (f.layers > 0) {
    const int total = static_cast<int>(im.model->spec().layers.size());
    if (f.layers > total)
      throw Error("export --prefix " + std::to_string(f.layers) + ": " + f.checkpoint + "'s network has only " +
                  std::to_string(total) + " layers");
    io::save_darknet_weights(*im.model, f.prefix, 0, f.layers);
    spdlog::info("export: wrote {} (layers 0-{}, {} floats, seen = 0)", f.prefix, f.layers - 1,
                 io::darknet_weight_floats(im.model->spec(), f.layers));
    return;
  }
  io::export_darknet(*im.model, im.config, f.prefix, im.seen);
  spdlog::info("export: wrote {}.cfg and {}.weights (seen = {})", f.prefix, f.prefix, im.seen);
}

void run_export(const ExportFlags& f) {
  if (f.format == "onnx") {
    if (f.output.empty()) throw Error("export --format onnx: give --output FILE.onnx");
    if (!f.prefix.empty() || f.layers > 0) throw Error("export --format onnx: --darknet and --prefix are darknet's");
    if (f.onnx.nms && !f.onnx.decode) throw Error("export --nms: needs --decode (NMS runs on the decoded boxes)");
    export_onnx_file(f);
    return;
  }
  if (f.prefix.empty()) throw Error("export: give --darknet PREFIX (or --format onnx --output FILE.onnx)");
  if (!f.output.empty() || f.onnx.decode || f.onnx.nms || f.keep_bn || f.onnx.size > 0 || f.conf >= 0 || f.iou >= 0)
    throw Error("export: --output, --size, --keep-bn, --decode, --nms, --conf and --iou are options of --format onnx");
  export_darknet_files(f);
}

}  // namespace

void add_export(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "export",
      "Write a checkpoint as darknet PREFIX.cfg + PREFIX.weights (v0.2), or as an ONNX model (--format onnx)");
  auto f = std::make_shared<ExportFlags>();
  cmd->add_option("--checkpoint", f->checkpoint, "yolo2 checkpoint")->required()->check(CLI::ExistingFile);
  cmd->add_option("--format", f->format, "darknet (default) or onnx")->check(CLI::IsMember({"darknet", "onnx"}));
  cmd->add_option("--darknet", f->prefix,
                  "Output prefix (writes PREFIX.cfg and PREFIX.weights; with --prefix, the file)");
  cmd->add_option("--prefix", f->layers,
                  "Write only the weights of the first N layers to the file --darknet names, as darknet's `partial` "
                  "(seen = 0): `--prefix 23` of a pretrained classifier is the darknet19_448.conv.23 that "
                  "train.init_weights takes")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("-o,--output", f->output, "ONNX: the model file to write");
  cmd->add_option("--size", f->onnx.size,
                  "ONNX: input side, a multiple of 32 (default data.input_size); the batch "
                  "axis is dynamic")
      ->check(input_side());
  cmd->add_flag("--keep-bn", f->keep_bn, "ONNX: BatchNormalization nodes instead of batch norm folded into the convs");
  cmd->add_flag("--decode", f->onnx.decode,
                "ONNX: the region decode in the graph (outputs boxes in input pixels and scores; input window)");
  cmd->add_flag("--nms", f->onnx.nms, "ONNX: also NonMaxSuppression (output selected_indices); needs --decode");
  cmd->add_option("--conf", f->conf, "ONNX --nms: score threshold (default eval.detect_thresh)")
      ->check(number_in(0, 1));
  cmd->add_option("--iou", f->iou, "ONNX --nms: per-class IoU threshold (default eval.nms)")->check(number_in(0, 1));
  cmd->callback([f] { run_export(*f); });
}

}  // namespace yolo2::cli
