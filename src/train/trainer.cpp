#include "yolo2/train/trainer.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>
#include <torch/serialize.h>
#include <torch/utils.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <optional>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "yolo2/data/loader.hpp"
#include "yolo2/data/voc.hpp"
#include "yolo2/error.hpp"
#include "yolo2/eval/evaluator.hpp"
#include "yolo2/loss/region_loss.hpp"
#include "yolo2/model/darknet_io.hpp"
#include "yolo2/model/yolov2.hpp"
#include "yolo2/train/checkpoint.hpp"
#include "yolo2/train/distributed.hpp"
#include "yolo2/train/schedule.hpp"
#include "yolo2/util/atomic_file.hpp"
#include "yolo2/util/build_info.hpp"
#include "yolo2/util/plot.hpp"
#include "yolo2/util/runtime.hpp"
#include "yolo2/util/signals.hpp"

namespace yolo2::train {

namespace fs = std::filesystem;

int64_t total_iterations(const TrainConfig& t, int64_t train_images) {
  if (t.epochs > 0) return t.epochs * ((train_images + t.batch - 1) / t.batch);
  return t.max_batches;
}

namespace {

const std::vector<std::string> kMetricColumns{
    "iteration", "epoch", "images_seen", "lr",        "gamma",     "size",      "loss",
    "coord",     "object", "noobject",   "class",     "warmup",    "avg_iou",   "avg_class",
    "avg_obj",   "avg_noobj", "recall50", "recall75", "count",     "images_per_s"};

std::string fmt_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  std::ostringstream os;
  os << s / 3600 << ":" << std::setw(2) << std::setfill('0') << (s / 60) % 60 << ":" << std::setw(2) << s % 60;
  return os.str();
}

// CSV rows of a run, kept in memory for the plots and rewritten atomically.
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<double>> rows;

  void load(const std::string& path, int64_t max_iteration) {
    rows.clear();
    std::ifstream in(path);
    if (!in) return;
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::vector<double> row;
      std::stringstream ss(line);
      for (std::string cell; std::getline(ss, cell, ',');) row.push_back(std::strtod(cell.c_str(), nullptr));
      if (row.size() == header.size() && row[0] <= static_cast<double>(max_iteration)) rows.push_back(row);
    }
  }
  void save(const std::string& path) const {
    std::ostringstream os;
    for (std::size_t i = 0; i < header.size(); ++i) os << (i ? "," : "") << header[i];
    os << "\n" << std::setprecision(8);
    for (const auto& r : rows) {
      for (std::size_t i = 0; i < r.size(); ++i) os << (i ? "," : "") << r[i];
      os << "\n";
    }
    util::write_file_atomic(path, os.str());
  }
  std::vector<double> column(const std::string& name) const {
    const auto it = std::find(header.begin(), header.end(), name);
    std::vector<double> v;
    if (it == header.end()) return v;
    const auto k = static_cast<std::size_t>(it - header.begin());
    for (const auto& r : rows) v.push_back(r[k]);
    return v;
  }
};

// Convolution weights decay; biases and batch-norm parameters do not (darknet).
std::unique_ptr<torch::optim::Optimizer> make_optimizer(model::YoloV2Impl& m, const TrainConfig& t) {
  std::vector<at::Tensor> decay, no_decay;
  for (std::size_t k = 0; k < m.convs().size(); ++k) {
    decay.push_back(m.convs()[k]->weight);
    if (m.convs()[k]->bias.defined()) no_decay.push_back(m.convs()[k]->bias);
    if (!m.norms()[k].is_empty()) {
      no_decay.push_back(m.norms()[k]->weight);
      no_decay.push_back(m.norms()[k]->bias);
    }
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (t.optimizer == OptimizerKind::Sgd) {
    using torch::optim::SGDOptions;
    groups.emplace_back(decay, std::make_unique<SGDOptions>(SGDOptions(t.lr).momentum(t.momentum).weight_decay(t.decay)));
    groups.emplace_back(no_decay, std::make_unique<SGDOptions>(SGDOptions(t.lr).momentum(t.momentum).weight_decay(0)));
    return std::make_unique<torch::optim::SGD>(std::move(groups), SGDOptions(t.lr).momentum(t.momentum));
  }
  // Adam: train.momentum is beta1; weight decay as L2 on the convolution weights.
  using torch::optim::AdamOptions;
  const auto betas = std::make_tuple(t.momentum, 0.999);
  groups.emplace_back(decay, std::make_unique<AdamOptions>(AdamOptions(t.lr).betas(betas).weight_decay(t.decay)));
  groups.emplace_back(no_decay, std::make_unique<AdamOptions>(AdamOptions(t.lr).betas(betas).weight_decay(0)));
  return std::make_unique<torch::optim::Adam>(std::move(groups), AdamOptions(t.lr).betas(betas));
}

void set_lr(torch::optim::Optimizer& opt, double lr) {
  for (auto& g : opt.param_groups()) g.options().set_lr(lr);
}

data::VocDataset load_split(const Config& c, const std::vector<DatasetSplit>& splits, bool train) {
  data::ParseOptions po;
  po.class_names = c.data.classes;
  po.keep_difficult = train ? c.data.train_difficult : true;
  po.skip_unknown_classes = c.data.skip_unknown_classes;
  return data::load_voc(splits, po);
}

void init_weights(model::YoloV2Impl& m, const std::string& path) {
  if (path.empty()) return;
  if (!fs::exists(path)) throw Error(path + ": train.init_weights file not found");
  // A yolo2 checkpoint is a zip archive ("PK"); anything else is read as darknet weights.
  std::ifstream in(path, std::ios::binary);
  char magic[2] = {0, 0};
  in.read(magic, 2);
  if (magic[0] == 'P' && magic[1] == 'K') {
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
    return;
  }
  const auto r = model::load_darknet_weights(m, path, /*allow_prefix=*/true);
  spdlog::info("init: darknet weights {} (v{}.{}, seen {}): {} of {} convolutions", path, r.header.major,
               r.header.minor, r.header.seen, r.conv_layers_loaded, r.conv_layers_total);
}

// Evaluation spread over the ranks: rank r runs the network on test images r, r + w, r + 2w, ...;
// the detections are gathered and rank 0 scores the whole split (the others get no metrics).
eval::EvalRun evaluate_sharded(const model::FusedYoloV2& net, const data::VocDataset& test, const Config& config,
                               const c10::Device& device, Distributed& dist) {
  const auto t0 = std::chrono::steady_clock::now();
  data::VocDataset shard;
  shard.class_names = test.class_names;
  std::vector<int> global;  // shard index -> test index
  for (std::size_t i = static_cast<std::size_t>(dist.rank()); i < test.images.size();
       i += static_cast<std::size_t>(dist.world_size())) {
    shard.images.push_back(test.images[i]);
    global.push_back(static_cast<int>(i));
  }
  std::vector<eval::Detection> local;
  if (!shard.images.empty()) local = eval::evaluate_model(net, shard, config, device).detections;
  // Rows of doubles: image index, label, score, box (exact for any realistic split).
  at::Tensor rows = at::empty({static_cast<int64_t>(local.size()), 7}, at::kDouble);
  auto* r = rows.data_ptr<double>();
  for (const auto& d : local) {
    *r++ = global[static_cast<std::size_t>(d.image)], *r++ = d.label, *r++ = d.score;
    *r++ = d.box.x1, *r++ = d.box.y1, *r++ = d.box.x2, *r++ = d.box.y2;
  }
  const at::Tensor all = dist.all_gather_rows(rows, "gathering evaluation detections").contiguous();
  eval::EvalRun run;
  if (!dist.is_main()) return run;
  const double* a = all.data_ptr<double>();
  for (int64_t k = 0; k < all.size(0); ++k, a += 7) {
    eval::Detection d;
    d.image = static_cast<int>(a[0]), d.label = static_cast<int>(a[1]), d.score = static_cast<float>(a[2]);
    d.box = {static_cast<float>(a[3]), static_cast<float>(a[4]), static_cast<float>(a[5]), static_cast<float>(a[6])};
    run.detections.push_back(d);
  }
  run.metrics = eval::evaluate_voc(eval::ground_truth(test), run.detections, test.class_names,
                                   eval::voc_options(config.eval));
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  run.images_per_second = run.seconds > 0 ? static_cast<double>(test.images.size()) / run.seconds : 0;
  return run;
}

// One small all-reduce per micro-batch: every rank learns whether any rank's loss is non-finite
// (all skip or stop together: a rank that skipped its backward pass alone would leave the others
// waiting in the gradient all-reduce) and `r` becomes the global diagnostics.
void exchange_loss(Distributed& dist, loss::RegionLossResult& r, bool& finite, std::string& bad_term) {
  const double n = static_cast<double>(r.count);
  at::Tensor st = at::tensor(std::vector<double>{finite ? 0.0 : 1.0, r.coord, r.object, r.noobject, r.cls, r.warmup,
                                                 r.avg_noobj, r.avg_iou * n, r.avg_class * n, r.avg_obj * n,
                                                 r.recall50 * n, r.recall75 * n, n},
                             at::kDouble);
  dist.all_reduce_sum({st}, "exchanging the loss");
  const std::vector<double> v(st.data_ptr<double>(), st.data_ptr<double>() + st.numel());
  if (v[0] > 0 && finite) finite = false, bad_term = "(on another rank)";
  const double w = dist.world_size(), total = v[12];
  r.coord = v[1] / w, r.object = v[2] / w, r.noobject = v[3] / w, r.cls = v[4] / w, r.warmup = v[5] / w;
  r.avg_noobj = v[6] / w;
  r.count = static_cast<int64_t>(total);
  const double inv = total > 0 ? 1.0 / total : 0.0;
  r.avg_iou = v[7] * inv, r.avg_class = v[8] * inv, r.avg_obj = v[9] * inv, r.recall50 = v[10] * inv,
  r.recall75 = v[11] * inv;
}

std::string rng_state_bytes() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  const at::Tensor s = gen.get_state();
  return std::string(reinterpret_cast<const char*>(s.data_ptr<uint8_t>()), static_cast<std::size_t>(s.numel()));
}

void restore_rng_state(const std::string& bytes) {
  if (bytes.empty()) return;
  at::Tensor s = at::empty({static_cast<int64_t>(bytes.size())}, at::kByte);
  std::memcpy(s.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(s);
}

}  // namespace

TrainSummary run_training(Config config, const TrainOptions& options) {
  const auto t_start = std::chrono::steady_clock::now();
  std::optional<Checkpoint> resumed;
  if (!options.resume.empty()) {
    resumed = load_checkpoint(options.resume);
    if (!resumed->state) throw Error(options.resume + ": this checkpoint holds no training state (not a last.ckpt?)");
    if (!resumed->optimizer) throw Error(options.resume + ": this checkpoint holds no optimizer state");
    // The stored config rules; --set overrides apply on top of it (the training length, say).
    config = resumed->config;
    for (const auto& o : options.resume_overrides) apply_override(config, o);
    validate(config);
    if (!options.resume_overrides.empty())
      spdlog::info("resume: applied {} override(s) to the stored config", options.resume_overrides.size());
  }
  util::setup_runtime(config.runtime);
  c10::Device device = util::resolve_device(config.runtime.device);
  std::unique_ptr<Distributed> dist;
  if (options.dist.enabled()) {
    if (device.is_cuda()) device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(options.dist.local_rank));
    dist = std::make_unique<Distributed>(options.dist, config.distributed, device);
    if (!dist->is_main()) spdlog::set_level(spdlog::level::warn);  // rank 0 reports; the others warn and fail
    local_batch_size(config.train.batch / config.train.subdivisions, dist->world_size());
  }
  const bool main_rank = !dist || dist->is_main();
  // The optimizer state must be read onto the device of the parameters it belongs to.
  if (resumed && !device.is_cpu()) {
    Checkpoint on_device = load_checkpoint(options.resume, device);
    resumed->model = on_device.model;
    resumed->optimizer = std::move(on_device.optimizer);
  }

  const std::string run_dir = !options.resume.empty() ? fs::path(options.resume).parent_path().string()
                              : !config.train.output.empty() ? config.train.output
                                                             : (fs::path("runs") / config.train.name).string();
  const fs::path dir(run_dir.empty() ? "." : run_dir);
  const std::string last_path = (dir / "last.ckpt").string(), best_path = (dir / "best.ckpt").string();
  if (main_rank && options.resume.empty() && fs::exists(last_path) && !options.overwrite)
    throw Error(run_dir + " already holds a run (last.ckpt): resume it with --resume " + last_path +
                ", or start afresh with --overwrite, or pick another --output");
  if (main_rank) {  // only rank 0 writes the run folder
    fs::create_directories(dir);
    if (const int n = util::remove_stale_temporaries(dir.string()))
      spdlog::info("removed {} temporary file(s) left by an interrupted write in {}", n, dir.string());
    if (options.resume.empty()) {
      for (const char* f : {"best.ckpt", "metrics.csv", "eval.csv", "loss.png", "map.png"}) fs::remove(dir / f);
    }
    // The resolved config, headed by what the run was trained with (comments: parsers skip them).
    util::write_file_atomic((dir / "config.yaml").string(),
                            "# yolo2 run configuration; built with:\n" + util::to_text(util::build_info(), "#   ") +
                                to_yaml(config));
  }

  // Data.
  auto train_set = std::make_shared<const data::VocDataset>(load_split(config, config.data.train, true));
  std::optional<data::VocDataset> test_set;
  if (options.evaluate) test_set = load_split(config, config.data.test, false);
  const data::DatasetStats train_stats = data::dataset_stats(*train_set);
  spdlog::info("data: {} training images ({} objects), {} test images", train_set->images.size(), train_stats.objects,
               test_set ? test_set->images.size() : 0);
  const int64_t max_batches = total_iterations(config.train, static_cast<int64_t>(train_set->images.size()));
  const int sub = config.train.subdivisions, mini = config.train.batch / sub;

  // Model, optimizer, state.
  if (!resumed) torch::manual_seed(config.runtime.seed);
  model::YoloV2 net = resumed ? resumed->model
                              : model::YoloV2(model::yolov2_spec(config.model, static_cast<int>(config.data.classes.size())));
  if (!resumed) init_weights(*net, config.train.init_weights);
  net->to(device);
  const auto memory_format = config.runtime.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  model::set_weight_memory_format(*net, memory_format);
  // train.freeze_bn: batch norm stays in evaluation mode with fixed gamma/beta.
  if (config.train.freeze_bn)
    for (auto& bn : net->norms())
      if (!bn.is_empty()) bn->weight.requires_grad_(false), bn->bias.requires_grad_(false);
  auto set_train_mode = [&] {
    net->train();
    if (config.train.freeze_bn)
      for (auto& bn : net->norms())
        if (!bn.is_empty()) bn->eval();
  };
  set_train_mode();
  if (dist) {
    dist->sync_model(*net);  // every rank starts from rank 0's weights (fresh or resumed)
    if (config.distributed.sync_bn) dist->use_sync_batch_norm(*net);
    dist->attach_reducer(*net);
  }
  const std::unique_ptr<torch::optim::Optimizer> optimizer_ptr = make_optimizer(*net, config.train);
  torch::optim::Optimizer& optimizer = *optimizer_ptr;
  TrainState state;
  if (resumed) {
    state = *resumed->state;
    optimizer.load(*resumed->optimizer);
    restore_rng_state(state.rng_state);
    spdlog::info("resume: {} at iteration {} ({} images seen)", options.resume, state.iteration, state.images_seen);
  }

  loss::RegionLossOptions lopt = loss::RegionLossOptions::from_config(config);
  if (config.loss.focal.alpha.kind == AlphaSpec::Kind::Auto) {
    const auto a = loss::inverse_frequency_alpha(train_stats.objects_per_class);
    lopt.alpha = at::tensor(a, at::kFloat);
    std::ostringstream os;
    for (std::size_t c = 0; c < a.size(); ++c) os << (c ? ", " : "") << config.data.classes[c] << " " << std::setprecision(3) << a[c];
    spdlog::info("focal alpha (auto, inverse class frequency, mean 1): {}", os.str());
  }
  if (lopt.alpha.defined()) lopt.alpha = lopt.alpha.to(device);

  // Logs.
  Table metrics{kMetricColumns, {}};
  Table evals{{"iteration", "epoch", "map"}, {}};
  for (const auto& n : config.data.classes) evals.header.push_back("ap_" + n);
  if (resumed) {
    metrics.load((dir / "metrics.csv").string(), state.iteration);
    evals.load((dir / "eval.csv").string(), state.iteration);
  }

  data::LoaderOptions lo = data::loader_options(config, true);
  if (dist) lo.shard_rank = dist->rank(), lo.shard_count = dist->world_size();
  const DataConfig data_cfg = config.data;
  const uint64_t seed = config.runtime.seed;
  lo.size_for_batch = [data_cfg, max_batches, sub, seed](int64_t b) {
    return multiscale_size(data_cfg, b / sub, max_batches, seed);
  };
  lo.start_batch = state.iteration * sub;
  lo.num_batches = std::max<int64_t>(0, (max_batches - state.iteration) * sub);

  const double train_images = static_cast<double>(train_set->images.size());
  auto save_last = [&] {
    if (!main_rank) return;
    state.rng_state = rng_state_bytes();
    save_checkpoint(last_path, *net, config, &state, &optimizer);
  };
  auto write_plots = [&] {
    if (!main_rank) return;
    const auto it = metrics.column("iteration");
    if (!it.empty()) {
      std::vector<util::Series> s;
      for (const char* term : {"loss", "coord", "object", "noobject", "class"}) s.push_back({term, it, metrics.column(term), {}, 2});
      util::PlotOptions po;
      po.title = "training loss (per image)";
      po.x_label = "iteration";
      po.y_label = "loss";
      po.log_y = true;
      util::save_line_plot((dir / "loss.png").string(), s, po);
    }
    const auto eit = evals.column("iteration");
    if (!eit.empty()) {
      util::PlotOptions po;
      po.title = "test mAP (" + config.eval.metric + ")";
      po.x_label = "iteration";
      po.y_label = "mAP";
      po.y_range = util::AxisRange{0, 1};
      util::save_line_plot((dir / "map.png").string(), {{"mAP", eit, evals.column("map"), {}, 2}}, po);
    }
  };
  TrainSummary summary;
  summary.run_dir = dir.string();
  auto evaluate = [&] {
    if (!test_set) return;
    net->eval();
    const model::FusedYoloV2 fused(*net);
    eval::EvalRun run;
    if (!dist) {
      run = eval::evaluate_model(fused, *test_set, config, device);
    } else {
      // Sharded: rank r scores images r, r + w, ...; rank 0 gathers the detections and scores them.
      run = evaluate_sharded(fused, *test_set, config, device, *dist);
    }
    set_train_mode();
    if (!main_rank) return;
    const double m = run.metrics.map;
    std::vector<double> row{static_cast<double>(state.iteration), state.images_seen / train_images, m};
    for (const auto& c : run.metrics.per_class) row.push_back(c.ap);
    evals.rows.push_back(row);
    evals.save((dir / "eval.csv").string());
    summary.final_map = m;
    std::cout << "\nevaluation at iteration " << state.iteration << " on " << test_set->images.size()
              << " test images (" << std::fixed << std::setprecision(1) << run.images_per_second << " images/s):\n"
              << eval::format_map_table(run.metrics) << std::flush;
    if (std::isfinite(m) && m > state.best_map) {
      state.best_map = m;
      state.best_iteration = state.iteration;
      state.rng_state = rng_state_bytes();
      save_checkpoint(best_path, *net, config, &state, nullptr);
      spdlog::info("new best mAP {:.4f} at iteration {}: {}", m, state.iteration, best_path);
    }
    write_plots();
  };

  spdlog::info("train: {} iterations of {} images ({} x {}), {} -> {}, device {}, run folder {}", max_batches,
               config.train.batch, sub, mini, state.iteration, max_batches, device.str(), dir.string());
  data::Loader loader(train_set, lo);
  const auto t_loop = std::chrono::steady_clock::now();
  const int64_t first_iteration = state.iteration;
  int64_t images_this_run = 0;
  double ema_loss = -1;
  while (state.iteration < max_batches) {
    const auto t_it = std::chrono::steady_clock::now();
    // darknet counts the update being made from 1 (schedule.hpp).
    const double lr = learning_rate(config.train, state.iteration + 1, max_batches);
    const double gamma = focal_gamma(config.loss.focal, static_cast<double>(state.iteration) / max_batches);
    set_lr(optimizer, lr);
    optimizer.zero_grad();
    loss::RegionLossResult acc;
    double total = 0;
    int size = 0;
    bool finite = true;
    std::string bad_term;
    for (int s = 0; s < sub; ++s) {
      std::optional<data::Batch> batch = loader.next();
      if (!batch) throw Error("the data loader ended early (internal error)");
      size = batch->size;
      const at::Tensor raw = net->forward(batch->images.to(device).contiguous(memory_format));
      const int64_t seen = state.images_seen + static_cast<int64_t>(s + 1) * mini;
      loss::RegionLossResult r = loss::region_loss(raw, batch->boxes, batch->labels, batch->counts, seen, gamma, lopt);
      const std::pair<const char*, double> terms[] = {{"coord", r.coord}, {"object", r.object}, {"noobject", r.noobject},
                                                      {"class", r.cls}, {"warmup", r.warmup}};
      for (const auto& [name, v] : terms)
        if (!std::isfinite(v) && finite) finite = false, bad_term = name;
      if (dist) exchange_loss(*dist, r, finite, bad_term);
      if (!finite) {
        for (int rest = s + 1; rest < sub; ++rest) loader.next();  // keep the stream aligned with iterations
        break;
      }
      // The last micro-batch of a step averages the gradients over the ranks (bucketed all-reduce
      // during its backward pass); the others accumulate locally, as DDP's no_sync().
      if (dist && s == sub - 1) dist->prepare_backward(r.total);
      try {
        (r.total / sub).backward();
      } catch (const Error&) {
        throw;
      } catch (const std::exception& e) {  // c10::Error, or Gloo's IoException from the reducer's all-reduce
        if (dist) throw Error(dist->failure_message("the backward pass (gradient all-reduce)", e.what()));
        throw;
      }
      const double w = 1.0 / sub;
      total += (r.coord + r.object + r.noobject + r.cls + r.warmup) * w;
      acc.coord += r.coord * w, acc.object += r.object * w, acc.noobject += r.noobject * w, acc.cls += r.cls * w;
      acc.warmup += r.warmup * w, acc.avg_noobj += r.avg_noobj * w;
      acc.avg_iou += r.avg_iou * static_cast<double>(r.count), acc.avg_class += r.avg_class * static_cast<double>(r.count);
      acc.avg_obj += r.avg_obj * static_cast<double>(r.count), acc.recall50 += r.recall50 * static_cast<double>(r.count);
      acc.recall75 += r.recall75 * static_cast<double>(r.count);
      acc.count += r.count;
    }
    if (!finite) {
      if (config.train.skip_nonfinite) {
        spdlog::warn("iteration {}: loss term '{}' is not finite; batch skipped (train.skip_nonfinite)", state.iteration + 1,
                     bad_term);
        optimizer.zero_grad();
        state.iteration += 1;
        state.images_seen += config.train.batch;
        continue;
      }
      throw Error("iteration " + std::to_string(state.iteration + 1) + ": loss term '" + bad_term +
                  "' is not finite (NaN or inf); stopping. The last good state is in " + last_path +
                  " (lower train.lr, or set train.skip_nonfinite to skip such batches)");
    }
    optimizer.step();
    state.iteration += 1;
    state.images_seen += config.train.batch;
    images_this_run += config.train.batch;
    if (acc.count > 0) {
      const double n = static_cast<double>(acc.count);
      acc.avg_iou /= n, acc.avg_class /= n, acc.avg_obj /= n, acc.recall50 /= n, acc.recall75 /= n;
    }
    ema_loss = ema_loss < 0 ? total : 0.9 * ema_loss + 0.1 * total;
    const double it_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_it).count();
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_loop).count();
    const double ips = images_this_run / std::max(elapsed, 1e-9);
    const double epoch = state.images_seen / train_images;
    metrics.rows.push_back({static_cast<double>(state.iteration), epoch, static_cast<double>(state.images_seen), lr, gamma,
                            static_cast<double>(size), total, acc.coord, acc.object, acc.noobject, acc.cls, acc.warmup,
                            acc.avg_iou, acc.avg_class, acc.avg_obj, acc.avg_noobj, acc.recall50, acc.recall75,
                            static_cast<double>(acc.count), config.train.batch / it_s});
    if (state.iteration % config.train.log_every == 0 || state.iteration == max_batches) {
      const double eta = (max_batches - state.iteration) * (elapsed / static_cast<double>(state.iteration - first_iteration));
      spdlog::info("it {}/{} ep {:.2f} | loss {:.3f} avg {:.3f} (coord {:.3f} obj {:.3f} noobj {:.3f} cls {:.3f} warm {:.3f}) "
                   "| iou {:.3f} cls {:.3f} obj {:.3f} noobj {:.4f} rec {:.2f} n {} | lr {:.2e} gamma {:.2f} | {}px "
                   "| {:.1f} img/s | eta {}",
                   state.iteration, max_batches, epoch, total, ema_loss, acc.coord, acc.object, acc.noobject, acc.cls,
                   acc.warmup, acc.avg_iou, acc.avg_class, acc.avg_obj, acc.avg_noobj, acc.recall50, acc.count, lr, gamma,
                   size, ips, fmt_duration(eta));
    }
    bool stop = util::stop_requested() ||
                (options.stop_after >= 0 && state.iteration - first_iteration >= options.stop_after);
    if (dist) {  // a signal may reach one rank only: all stop at the same iteration
      at::Tensor flag = at::full({1}, stop ? 1.0 : 0.0, at::kDouble);
      dist->all_reduce_sum({flag}, "agreeing on a stop");
      stop = flag.item<double>() > 0;
    }
    const bool last = state.iteration == max_batches;
    if (main_rank && (state.iteration % config.train.checkpoint_every == 0 || stop || last)) {
      metrics.save((dir / "metrics.csv").string());
      save_last();
    }
    if (stop) {
      summary.interrupted = true;
      write_plots();
      spdlog::warn("stopped at iteration {}: state saved to {}; resume with: yolo2 train --resume {}", state.iteration,
                   last_path, last_path);
      break;
    }
    if (!last && config.eval.every > 0 && state.iteration % config.eval.every == 0) {
      evaluate();
      save_last();  // keep best_map in last.ckpt
    }
  }
  if (!summary.interrupted) {
    if (state.iteration == max_batches && (evals.rows.empty() || evals.rows.back()[0] != state.iteration)) {
      evaluate();
      save_last();
    }
    if (main_rank) metrics.save((dir / "metrics.csv").string());
    write_plots();
  }
  summary.iterations = state.iteration;
  summary.images_seen = state.images_seen;
  summary.best_map = state.best_map;
  summary.best_iteration = state.best_iteration;
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  const double loop_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_loop).count();
  summary.images_per_second = images_this_run / std::max(loop_s, 1e-9);
  return summary;
}

}  // namespace yolo2::train
