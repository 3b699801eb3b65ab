#include "measure.hpp"

#include <ATen/ATen.h>
#include <sys/resource.h>
#include <torch/cuda.h>
#include <torch/optim/sgd.h>
#include <opencv2/imgcodecs.hpp>

#include <fstream>
#include <string>

#include "yolo2/data/augment.hpp"
#include "yolo2/data/image_io.hpp"
#include "yolo2/data/loader.hpp"
#include "yolo2/data/voc.hpp"
#include "yolo2/error.hpp"
#include "yolo2/eval/voc_ap.hpp"
#include "yolo2/loss/region_loss.hpp"
#include "yolo2/model/yolov2.hpp"
#include "yolo2/options.hpp"
#include "yolo2/train/schedule.hpp"
#include "yolo2/util/atomic_file.hpp"
#include "yolo2/util/cuda_memory.hpp"
#include "yolo2/util/rng.hpp"

namespace yolo2::bench {

void Target::sync() const {
  if (cuda()) torch::cuda::synchronize(device.index());
}

// On a GPU the convolution runs in the precision's type (autocast), as the network's do; on the CPU
// in fp32, as the inference plan does.
ConvReference reference_conv(int repeats, bool channels_last, const Target& target) {
  const train::PrecisionPlan plan = target.cuda() ? target.plan : train::PrecisionPlan{};
  const auto fmt = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  const auto on = at::TensorOptions().device(target.device);
  at::Tensor x = at::rand({8, 256, 52, 52}, on).contiguous(fmt).requires_grad_(true);
  at::Tensor w = (at::randn({256, 256, 3, 3}, on) * 0.02).contiguous(fmt).requires_grad_(true);
  const double flop = 2.0 * 8 * 256 * 256 * 9 * 52 * 52 / 1e9;
  at::Tensor y;
  const double tf = median_seconds(1, repeats, [&] {
    at::NoGradGuard g;
    train::AutocastScope autocast(plan, target.device.type());
    y = at::conv2d(x, w, {}, 1, 1);
    target.sync();
  });
  const at::Tensor gy = at::rand_like(y);
  const double tb = median_seconds(1, repeats, [&] {
    at::Tensor out;
    {
      train::AutocastScope autocast(plan, target.device.type());
      out = at::conv2d(x, w, {}, 1, 1);
    }
    x.mutable_grad() = at::Tensor();
    w.mutable_grad() = at::Tensor();
    out.backward(gy);
    target.sync();
  });
  // tb timed forward + backward; the backward alone is the difference.
  ConvReference r;
  r.forward = flop / tf;
  r.backward = 2 * flop / std::max(tb - tf, 1e-9);
  r.both = 3 * flop / tb;
  return r;
}

void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

double peak_rss_mib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

namespace {

// b images of m random boxes each, as the loader would give them.
struct Targets {
  at::Tensor boxes, labels, counts;
};
Targets random_targets(int b, int m, int classes) {
  util::Rng rng(3);
  Targets t{at::zeros({b, m, 4}), at::full({b, m}, -1, at::kLong), at::full({b}, m, at::kLong)};
  for (int i = 0; i < b; ++i)
    for (int k = 0; k < m; ++k) {
      const double cx = rng.uniform(0.1, 0.9), cy = rng.uniform(0.1, 0.9), w = rng.uniform(0.05, 0.4),
                   h = rng.uniform(0.05, 0.4);
      t.boxes[i][k] = at::tensor({cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2}, at::kFloat).clamp(0, 1);
      t.labels[i][k] = rng.uniform_int(0, classes - 1);
    }
  return t;
}

double median_without_warmup(std::vector<double> v) {
  v.erase(v.begin());
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

TrainStep train_step(const Config& config, int repeats, bool channels_last, const Target& target) {
  model::YoloV2 net(model::yolov2_spec(config.model, static_cast<int>(config.data.classes.size())));
  net->to(target.device);
  net->train();
  const auto fmt = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  model::set_weight_memory_format(*net, fmt);
  torch::optim::SGD sgd(
      net->parameters(),
      torch::optim::SGDOptions(1e-4).momentum(config.train.momentum).weight_decay(config.train.decay));
  std::vector<at::Tensor> params = net->parameters();
  const int b = config.train.batch / config.train.subdivisions, s = config.data.input_size;
  const at::Tensor x = at::rand({b, 3, s, s}, at::TensorOptions().device(target.device)).contiguous(fmt);
  // On the host, as the loader gives them (the region loss builds its targets there).
  const Targets t = random_targets(b, 6, static_cast<int>(config.data.classes.size()));
  loss::RegionLossOptions lopt = region_loss_options(config);
  lopt.host_scalars = false;  // as the trainer runs it: the figures stay on the device
  if (lopt.alpha.defined()) lopt.alpha = lopt.alpha.to(target.device);  // as the trainer puts it
  const double gamma = train::focal_gamma(config.loss.focal, 0.0);
  train::LossScale ls;  // fp16: the trainer's dynamic loss scale, updated as it would be
  std::vector<double> phase[4];
  auto ms_since = [](Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  };
  // One iteration; with `phases`, timed phase by phase (synchronised after each phase).
  const auto iteration = [&](bool phases) {
    const auto mark = [&](int k, Clock::time_point& t0) {
      if (!phases) return;
      target.sync();
      phase[k].push_back(ms_since(t0));
      t0 = Clock::now();
    };
    auto t0 = Clock::now();
    sgd.zero_grad();
    at::Tensor raw;
    {
      train::AutocastScope autocast(target.plan, target.device.type());
      raw = net->forward(x).to(at::kFloat);
    }
    mark(0, t0);
    const at::Tensor loss = loss::region_loss(raw, t.boxes, t.labels, t.counts, 1 << 30, gamma, lopt).total;
    mark(1, t0);
    (target.plan.loss_scaling ? loss * ls.scale : loss).backward();
    mark(2, t0);
    if (!target.plan.loss_scaling) {
      sgd.step();
    } else {  // the trainer's unscaling and overflow check (one read of a flag), then the step
      const bool finite = train::unscale_gradients(params, ls.scale);
      if (finite) sgd.step();
      train::update_loss_scale(ls, finite);
    }
    if (!phases) return;
    target.sync();
    phase[3].push_back(ms_since(t0));
  };
  TrainStep r;
  iteration(true);  // warm-up (cuDNN's algorithm searches); its phases are left out of the medians
  if (target.cuda()) util::reset_cuda_peak_memory(target.device.index());
  double secs = 0;
  if (!target.cuda()) {  // the CPU runs the phases synchronously: the same iterations give both figures
    secs = median_seconds(0, repeats, [&] { iteration(true); });
  } else {  // back to back with one wait at the end, as a training loop runs them; then phase by phase
    const auto t0 = Clock::now();
    for (int i = 0; i < repeats; ++i) iteration(false);
    target.sync();
    secs = std::chrono::duration<double>(Clock::now() - t0).count() / repeats;
    for (int i = 0; i < repeats; ++i) iteration(true);
  }
  r.images_per_s = b / secs;
  r.forward_ms = median_without_warmup(phase[0]), r.loss_ms = median_without_warmup(phase[1]);
  r.backward_ms = median_without_warmup(phase[2]), r.step_ms = median_without_warmup(phase[3]);
  if (target.cuda()) r.peak_gpu_mib = util::cuda_peak_memory_mib(target.device.index());
  return r;
}

double loader_rate(const Config& config, int batches, bool cached) {
  auto ds = std::make_shared<const data::VocDataset>(data::load_voc(config.data.train, parse_options(config, true)));
  data::LoaderOptions lo = loader_options(config, true);
  if (cached) {  // fill the cache with one pass over the set (the first epoch's decoding is not timed)
    lo.cache = std::make_shared<data::ImageCache>(ds->images.size());
    data::LoaderOptions fill = lo;
    fill.train = false;
    fill.batch_size = 1;
    data::Loader all(ds, fill);
    while (all.next()) {}
  }
  lo.num_batches = batches + 2;
  data::Loader loader(ds, lo);
  for (int i = 0; i < 2; ++i) loader.next();  // warm-up: threads started, caches filled
  const auto t0 = Clock::now();
  int64_t images = 0;
  while (auto b = loader.next()) images += b->images.size(0);
  return static_cast<double>(images) / std::chrono::duration<double>(Clock::now() - t0).count();
}

LoaderStages loader_stages(const Config& config) {
  const data::VocDataset ds = data::load_voc(config.data.train, parse_options(config, true));
  const int n = std::min<int>(64, static_cast<int>(ds.images.size()));
  const int s = config.data.input_size;
  std::vector<double> passes[6];
  for (int pass = 0; pass < 3; ++pass) {
    double t[6] = {0, 0, 0, 0, 0, 0};
    std::vector<float> f(static_cast<std::size_t>(3 * s * s));
    std::vector<uint8_t> b(static_cast<std::size_t>(3 * s * s));
    for (int i = 0; i < n; ++i) {
      const data::ImageRecord& rec = ds.images[static_cast<std::size_t>(i)];
      auto t0 = Clock::now();
      const auto lap = [&](int k) {
        const auto now = Clock::now();
        t[k] += std::chrono::duration<double, std::milli>(now - t0).count();
        t0 = now;
      };
      const std::string bytes = util::read_file(rec.image_path);
      lap(0);
      const cv::Mat image = data::decode_image(rec.image_path, bytes);  // the loader's decode, checks included
      lap(1);
      util::Rng rng(static_cast<uint64_t>(i + 1000 * pass));
      const data::AugmentDraw d = data::draw_augment(image.cols, image.rows, s, config.data.augment, rng);
      cv::Mat sized = data::warp_image(image, d.affine, s, config.data.augment.jitter_mode == JitterMode::Crop);
      lap(2);
      data::distort_hsv(sized, d.dhue, d.dsat, d.dexp, config.data.augment.hsv);
      lap(3);
      data::pack_image(sized, f.data());
      lap(4);
      data::pack_image_bytes(sized, b.data());
      lap(5);
    }
    for (int k = 0; k < 6; ++k) passes[k].push_back(t[k] / n);
  }
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  LoaderStages r;
  r.images = n;
  r.read = median(passes[0]), r.decode = median(passes[1]), r.warp = median(passes[2]);
  r.colour = median(passes[3]), r.pack_float = median(passes[4]), r.pack_bytes = median(passes[5]);
  return r;
}

double voc_scoring_seconds(const Config& config, int repeats) {
  util::Rng rng(7);
  const int images = 5000, classes = static_cast<int>(config.data.classes.size());
  std::vector<std::vector<eval::GroundTruthBox>> gt(images);
  std::vector<eval::Detection> dets;
  for (int i = 0; i < images; ++i)
    for (int k = 0; k < 3; ++k) {
      const auto x = static_cast<float>(rng.uniform(0, 400)), y = static_cast<float>(rng.uniform(0, 300));
      gt[static_cast<std::size_t>(i)].push_back(
          {static_cast<int>(rng.uniform_int(0, classes - 1)), {x, y, x + 60, y + 60}, rng.bernoulli(0.1)});
    }
  for (int d = 0; d < 100000; ++d) {
    const auto& g = gt[static_cast<std::size_t>(rng.uniform_int(0, images - 1))];
    const auto& t = g[static_cast<std::size_t>(rng.uniform_int(0, 2))];
    const auto j = static_cast<float>(rng.uniform(-15, 15));
    eval::Detection det;
    det.image = static_cast<int>(&g - gt.data());
    det.label = rng.bernoulli(0.7) ? t.label : static_cast<int>(rng.uniform_int(0, classes - 1));
    det.score = static_cast<float>(rng.uniform());
    det.box = {t.box.x1 + j, t.box.y1 - j, t.box.x2 + j, t.box.y2 + j};
    dets.push_back(det);
  }
  return median_seconds(1, repeats, [&] { eval::evaluate_voc(gt, dets, config.data.classes); });
}

}  // namespace yolo2::bench
