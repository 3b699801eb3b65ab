// Issue 15, "never lose a user's files or a run": one test per numbered problem (the number is in the
// test's comment). Library-level where the library decides, through the program where the exit status
// or the command line is the behaviour.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <zlib.h>
#include <nlohmann/json.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

#include "test_util.hpp"
#include "train_fixtures.hpp"
#include "yolo2/data/dataset.hpp"
#include "yolo2/data/image_io.hpp"
#include "yolo2/data/synth.hpp"
#include "yolo2/eval/results_io.hpp"
#include "yolo2/eval/voc_ap.hpp"
#include "yolo2/io/checkpoint.hpp"
#include "yolo2/io/darknet.hpp"
#include "yolo2/options.hpp"
#include "yolo2/train/run_folder.hpp"
#include "yolo2/train/trainer.hpp"
#include "yolo2/util/background_writer.hpp"
#include "yolo2/util/rng.hpp"

namespace yolo2 {
namespace {

namespace fs = std::filesystem;
using testing::error_of;
using testing::make_dataset;
using testing::read_text;
using testing::run_status;
using testing::TempDir;
using testing::tiny_config;
using testing::write_text;

Config short_run(const TempDir& dir, const std::string& out) {
  Config c = tiny_config(make_dataset(dir, 8, 96, 11), out);
  c.train.max_batches = 2;
  c.train.checkpoint_every = 1;
  c.model.width = 0.125;
  c.runtime.threads = 1;
  return c;
}

train::TrainOptions no_eval() {
  train::TrainOptions o;
  o.evaluate = false;
  return o;
}

// 1. A folder yolo2 did not write is refused, --overwrite deletes only yolo2's files, run names are names.
TEST(RunFolderSafety, ForeignFoldersAreRefusedAndOverwriteDeletesOnlyYolo2Files) {
  TempDir dir;
  const std::string out = dir.file("out");
  write_text(out + "/notes.txt", "mine");
  Config c = short_run(dir, out);
  EXPECT_CONTAINS(error_of([&] { train::run_training(c, no_eval()); }), "not a yolo2 run folder");
  train::TrainOptions ow = no_eval();
  ow.overwrite = true;
  EXPECT_CONTAINS(error_of([&] { train::run_training(c, ow); }), "not a yolo2 run folder");
  EXPECT_EQ(read_text(out + "/notes.txt"), "mine");

  const std::string run = dir.file("run");
  c.train.output = run;
  train::run_training(c, no_eval());
  write_text(run + "/notes.txt", "mine");
  write_text(run + "/.env.tmpl", "mine");
  fs::remove(run + "/last.ckpt");  // the user keeps only what they want: still a run
  EXPECT_CONTAINS(error_of([&] { train::run_training(c, no_eval()); }), "already holds a run");
  EXPECT_TRUE(fs::exists(run + "/metrics.csv"));
  train::run_training(c, ow);
  EXPECT_EQ(read_text(run + "/notes.txt"), "mine");
  EXPECT_EQ(read_text(run + "/.env.tmpl"), "mine");
  EXPECT_TRUE(fs::exists(run + "/last.ckpt"));

  c.train.name = "../../x";
  EXPECT_CONTAINS(error_of([&] { validate(c); }), "train.name");
}

// The error of `write` under a 64 KiB file size limit (a full disk, for a checkpoint), with SIGXFSZ
// ignored so that the write fails instead of the process; both restored afterwards.
template <class Write>
std::string error_on_a_full_disk(Write write) {
  struct rlimit old {};
  getrlimit(RLIMIT_FSIZE, &old);
  const auto prev = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = 64 * 1024;
  setrlimit(RLIMIT_FSIZE, &small);
  const std::string e = error_of(write);
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, prev);
  return e;
}

model::YoloV2 small_detector() {
  ModelOptions mc = default_config().model;
  mc.width = 0.25;
  return model::YoloV2(model::yolov2_spec(mc, 20));
}

// 2. A full disk (here: the file size limit) while writing a checkpoint is an error naming the path
// and the reason; the previous checkpoint is intact and no temporary is left.
TEST(RunFolderSafety, WriteFailureIsAnErrorAndKeepsThePreviousCheckpoint) {
  TempDir dir;
  model::YoloV2 net = small_detector();
  const Config c = default_config();
  const std::string path = dir.file("last.ckpt");
  io::save_checkpoint(path, *net, c);
  const std::string before = read_text(path);
  const std::string e = error_on_a_full_disk([&] { io::save_checkpoint(path, *net, c); });
  EXPECT_CONTAINS(e, path);
  EXPECT_CONTAINS(e, "File too large");
  EXPECT_EQ(read_text(path), before);
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) files += entry.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, 1);  // no temporary left
}

// 2b. The same through the background writer the trainer saves with: the failure surfaces at the
// next wait (or save) as the same named error, and the previous checkpoint is intact.
TEST(RunFolderSafety, BackgroundWriteFailureSurfacesAndKeepsThePreviousCheckpoint) {
  TempDir dir;
  model::YoloV2 net = small_detector();
  const Config c = default_config();
  const std::string path = dir.file("last.ckpt");
  util::BackgroundWriter writer;
  writer.write(path, io::checkpoint_bytes(*net, c));
  writer.wait();
  const std::string before = read_text(path);
  const std::string e = error_on_a_full_disk([&] {
    writer.write(path, io::checkpoint_bytes(*net, c));
    writer.wait();
  });
  EXPECT_CONTAINS(e, path);
  EXPECT_CONTAINS(e, "File too large");
  EXPECT_EQ(read_text(path), before);
  EXPECT_NO_THROW(writer.wait()) << "a failure is reported once";
}

// 3. One writer per run folder: a second claim (a second train, a resume of a live run, an
// --overwrite) fails at once naming the holder's PID, and deletes nothing.
TEST(RunFolderSafety, ALiveRunIsLockedAgainstASecondWriter) {
  TempDir dir;
  const train::RunFolder folder{dir.file("run")};
  const auto lock = train::claim_run_folder(folder, false, false);
  write_text(folder.file("last.ckpt"), "live");
  for (const bool resuming : {false, true})
    for (const bool overwrite : {false, true}) {
      const std::string e = error_of([&] { train::claim_run_folder(folder, resuming, overwrite); });
      EXPECT_CONTAINS(e, "in use by another yolo2 process (PID " + std::to_string(::getpid()));
    }
  EXPECT_EQ(read_text(folder.file("last.ckpt")), "live");
}

// 4 and 8. Resume refuses overrides that change the network, the classes or the optimizer (and
// rewrites nothing); --overwrite with bad data leaves the earlier run as it was.
TEST(RunFolderSafety, ResumeRefusesNetworkOverridesAndBadDataLeavesTheRunAlone) {
  TempDir dir;
  Config c = short_run(dir, dir.file("run"));
  train::run_training(c, no_eval());
  const std::string config_before = read_text(dir.file("run/config.yaml"));
  for (const char* o : {"model.width=0.5", "train.optimizer=adam", "data.classes=[a, b]"}) {
    train::TrainOptions r = no_eval();
    r.resume = dir.file("run/last.ckpt");
    r.resume_overrides = {o};
    EXPECT_CONTAINS(error_of([&] { train::run_training(c, r); }), std::string(o).substr(0, std::string(o).find('=')));
  }
  EXPECT_EQ(read_text(dir.file("run/config.yaml")), config_before);
  c.data.train = {{dir.file("nowhere"), "trainval"}};
  train::TrainOptions ow = no_eval();
  ow.overwrite = true;
  EXPECT_THROW(train::run_training(c, ow), Error);
  EXPECT_EQ(read_text(dir.file("run/config.yaml")), config_before);
  EXPECT_TRUE(fs::exists(dir.file("run/metrics.csv")));
  EXPECT_NO_THROW(io::load_checkpoint(dir.file("run/last.ckpt")));
}

// Issue 29's serious cases, on the library: a resume never writes into a folder yolo2 did not make
// (a checkpoint copied out of its run folder continues with a branch), a branch leaves the resumed
// run as it was and continues in the new folder with the history so far, and --overwrite checks the
// batch against the data before it deletes anything.
TEST(RunFolderSafety, ResumeBranchesAndNeverWritesIntoAForeignFolder) {
  TempDir dir;
  Config c = short_run(dir, dir.file("run"));
  train::run_training(c, no_eval());
  // A folder of the user's that happens to hold a last.ckpt and yolo2-like file names.
  write_text(dir.file("mine/config.yaml"), "user: settings\n");
  write_text(dir.file("mine/metrics.csv"), "user,numbers\n1,2\n");
  fs::copy_file(dir.file("run/last.ckpt"), dir.file("mine/last.ckpt"));
  train::TrainOptions r = no_eval();
  r.resume = dir.file("mine/last.ckpt");
  r.resume_overrides = {"train.max_batches=4"};
  const std::string e = error_of([&] { train::run_training(c, r); });
  EXPECT_CONTAINS(e, "not a yolo2 run folder");
  EXPECT_CONTAINS(e, "--output");
  EXPECT_EQ(read_text(dir.file("mine/config.yaml")), "user: settings\n");
  EXPECT_EQ(read_text(dir.file("mine/metrics.csv")), "user,numbers\n1,2\n");
  // The same checkpoint as a branch into a new folder: the run goes on there.
  r.branch = dir.file("branch");
  const train::TrainSummary s = train::run_training(c, r);
  EXPECT_EQ(s.iterations, 4);
  EXPECT_EQ(io::load_checkpoint(dir.file("branch/last.ckpt")).state->iteration, 4);
  EXPECT_EQ(read_text(dir.file("mine/metrics.csv")), "user,numbers\n1,2\n");
  EXPECT_EQ(read_text(dir.file("branch/metrics.csv")).find("user"), std::string::npos)
      << "no history from a user's folder";
  // A branch of the real run: the run folder is left exactly as it was; the branch's log continues it.
  const std::string before = read_text(dir.file("run/last.ckpt")), log = read_text(dir.file("run/metrics.csv"));
  r.resume = dir.file("run/last.ckpt");
  r.branch = dir.file("branch2");
  train::run_training(c, r);
  EXPECT_EQ(read_text(dir.file("run/last.ckpt")), before);
  EXPECT_EQ(read_text(dir.file("run/metrics.csv")), log);
  EXPECT_EQ(testing::csv_rows(dir.file("branch2/metrics.csv")).size(), 4u);
  EXPECT_CONTAINS(read_text(dir.file("branch2/config.yaml")), dir.file("branch2"));
  // A branch into a folder that holds a run is refused like any other run folder.
  EXPECT_CONTAINS(error_of([&] { train::run_training(c, r); }), "already holds a run");
  // --overwrite with a batch larger than the training set: refused before anything is deleted.
  Config big = c;
  big.train.batch = 32;
  train::TrainOptions ow = no_eval();
  ow.overwrite = true;
  EXPECT_CONTAINS(error_of([&] { train::run_training(big, ow); }), "fewer than one batch");
  EXPECT_EQ(read_text(dir.file("run/last.ckpt")), before);
  EXPECT_EQ(read_text(dir.file("run/metrics.csv")), log);
  // --output naming the checkpoint's own folder, even with --overwrite, continues the run in place:
  // its history is kept (as a branch, --overwrite had deleted the metrics.csv it was to copy).
  const std::size_t rows = testing::csv_rows(dir.file("run/metrics.csv")).size();
  ASSERT_LT(rows, 4u);
  train::TrainOptions self = r;
  self.resume = dir.file("run/last.ckpt");
  self.branch = dir.file("run") + "/.";
  self.overwrite = true;
  train::run_training(c, self);
  EXPECT_EQ(testing::csv_rows(dir.file("run/metrics.csv")).size(), 4u);
  EXPECT_EQ(io::load_checkpoint(dir.file("run/last.ckpt")).state->iteration, 4);
  EXPECT_EQ(read_text(dir.file("run/metrics.csv")).substr(0, log.size()), log);
}

// An export writes its .cfg and .weights as a pair: a full disk during the second leaves the earlier
// pair as it was (both files), and no temporary behind.
TEST(RunFolderSafety, ExportWritesItsPairOrNothing) {
  TempDir dir;
  model::YoloV2 net = small_detector();
  const Config c = default_config();
  io::export_darknet(*net, c, dir.file("m"), 7);
  const std::string cfg = read_text(dir.file("m.cfg")), weights = read_text(dir.file("m.weights"));
  ASSERT_GT(weights.size(), 64u * 1024) << "the limit must fall inside the .weights file";
  Config wider = c;
  wider.model.width = 0.5;
  model::YoloV2 big(model::yolov2_spec(wider.model, 20));
  const std::string e = error_on_a_full_disk([&] { io::export_darknet(*big, wider, dir.file("m"), 9); });
  // The message begins with the file the user asked for, not its temporary (".m.weights.tmp-...").
  EXPECT_EQ(e.rfind(dir.file("m.weights") + ": write failed (disk full?): File too large", 0), 0u) << e;
  EXPECT_EQ(read_text(dir.file("m.cfg")), cfg) << "the .cfg of the failed export was not put in place";
  EXPECT_EQ(read_text(dir.file("m.weights")), weights);
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) files += entry.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, 2);
}

// 5. synth refuses a non-empty folder; --overwrite replaces only a dataset synth wrote.
TEST(RunFolderSafety, SynthRefusesANonEmptyFolderAndOverwritesOnlyItsOwn) {
  TempDir dir;
  data::SynthOptions so;
  so.out_dir = dir.file("voc");
  so.train = 6;
  so.test = 0;
  so.size = 64;
  so.threads = 1;
  data::write_synth(so);
  EXPECT_CONTAINS(error_of([&] { data::write_synth(so); }), "not empty");
  so.overwrite = true;
  so.train = 3;
  data::write_synth(so);
  EXPECT_FALSE(fs::exists(dir.file("voc/JPEGImages/000006.jpg")));  // no stale image of the first set
  EXPECT_TRUE(fs::exists(dir.file("voc/JPEGImages/000003.jpg")));
  write_text(dir.file("mine/a.txt"), "mine");
  so.out_dir = dir.file("mine");
  EXPECT_CONTAINS(error_of([&] { data::write_synth(so); }), "did not write");
  EXPECT_EQ(read_text(dir.file("mine/a.txt")), "mine");
  // A hand-made VOC dataset with exactly synth's top level (and no marker) is not synth's: refused,
  // every file kept.
  for (const char* f : {"hand/Annotations/000000.xml", "hand/JPEGImages/000000.jpg", "hand/ImageSets/Main/trainval.txt",
                        "hand/classes.txt"})
    write_text(dir.file(f), "user's");
  so.out_dir = dir.file("hand");
  EXPECT_CONTAINS(error_of([&] { data::write_synth(so); }), "no .yolo2-synth marker");
  for (const char* f : {"hand/Annotations/000000.xml", "hand/JPEGImages/000000.jpg", "hand/ImageSets/Main/trainval.txt",
                        "hand/classes.txt"})
    EXPECT_EQ(read_text(dir.file(f)), "user's") << f;
  // In a synth folder, what the user added stays through --overwrite: a split file of their own and
  // an image; synth's own files are replaced (the marker lists them), also when the earlier run did
  // not finish (its marker has no list: synth's names only).
  for (const bool finished : {true, false}) {
    so.out_dir = dir.file("voc");
    write_text(dir.file("voc/ImageSets/Main/my_split.txt"), "000001\n");
    write_text(dir.file("voc/JPEGImages/holiday.jpg"), "a photo");
    if (!finished) write_text(dir.file("voc/.yolo2-synth"), "written by yolo2 synth\nincomplete\n");
    data::write_synth(so);
    EXPECT_EQ(read_text(dir.file("voc/ImageSets/Main/my_split.txt")), "000001\n") << finished;
    EXPECT_EQ(read_text(dir.file("voc/JPEGImages/holiday.jpg")), "a photo") << finished;
    EXPECT_TRUE(fs::exists(dir.file("voc/ImageSets/Main/trainval.txt"))) << finished;
  }
  EXPECT_CONTAINS(read_text(dir.file("voc/.yolo2-synth")), "JPEGImages/000001.jpg");
}

// A JPEG with an APP1 Exif segment right after SOI whose IFD0 holds one Orientation entry.
std::string jpeg_with_orientation(const std::string& jpeg, int orientation, bool little_endian) {
  std::string tiff = little_endian ? std::string("II*\0\x08\0\0\0", 8) : std::string("MM\0*\0\0\0\x08", 8);
  const auto put = [&](unsigned v, int n) {
    for (int k = 0; k < n; ++k) tiff.push_back(static_cast<char>((v >> (8 * (little_endian ? k : n - 1 - k))) & 0xFF));
  };
  put(1, 2);                             // one entry
  put(0x0112, 2), put(3, 2), put(1, 4);  // Orientation, SHORT, count 1
  put(static_cast<unsigned>(orientation), 2), put(0, 2);
  put(0, 4);  // no next IFD
  const std::string payload = std::string("Exif\0\0", 6) + tiff;
  const std::size_t len = payload.size() + 2;
  std::string app1{'\xFF', '\xE1', static_cast<char>(len >> 8), static_cast<char>(len & 0xFF)};
  return jpeg.substr(0, 2) + app1 + payload + jpeg.substr(2);
}

// An EXIF-rotated JPEG (the camera's orientation flag) is refused with a message that names EXIF,
// in either byte order; orientation 1 (as stored) reads as before; stats --check-images finds it too.
TEST(RunFolderSafety, ExifRotatedImagesAreRefusedNamingExif) {
  TempDir dir;
  std::vector<uchar> buf;
  cv::imencode(".jpg", cv::Mat(48, 64, CV_8UC3, cv::Scalar(10, 200, 90)), buf);
  const std::string jpeg(buf.begin(), buf.end());
  for (const bool le : {true, false}) {
    write_text(dir.file("r.jpg"), jpeg_with_orientation(jpeg, 6, le));
    const std::string e = error_of([&] { data::read_image_file(dir.file("r.jpg")); });
    EXPECT_CONTAINS(e, dir.file("r.jpg"));
    EXPECT_CONTAINS(e, "EXIF orientation 6");
    EXPECT_TRUE(data::check_image_file(dir.file("r.jpg")).has_value());
    write_text(dir.file("u.jpg"), jpeg_with_orientation(jpeg, 1, le));
    const cv::Mat upright = data::read_image_file(dir.file("u.jpg"));
    EXPECT_EQ(upright.cols, 64);
    EXPECT_EQ(upright.rows, 48);
  }
}

// 6. Truncated or empty images are errors naming the file, or skipped and counted with the key.
TEST(RunFolderSafety, BrokenImagesAreNamedOrSkippedAndCounted) {
  TempDir dir;
  const std::string root = make_dataset(dir, 6, 96, 12);
  const std::string jpg = root + "/JPEGImages/000002.jpg";
  const std::string bytes = read_text(jpg);
  write_text(jpg, bytes.substr(0, bytes.size() / 2));
  write_text(root + "/JPEGImages/000003.jpg", "");
  Config c = tiny_config(root, dir.file("run"));
  EXPECT_CONTAINS(error_of([&] { data::load_dataset(c.data.train, parse_options(c, true)); }),
                  "000002.jpg: truncated JPEG");
  EXPECT_CONTAINS(error_of([&] { data::read_image_file(root + "/JPEGImages/000003.jpg"); }), "empty file");
  c.data.skip_bad_images = true;
  const data::Dataset ds = data::load_dataset(c.data.train, parse_options(c, true));
  EXPECT_EQ(ds.images.size(), 4u);
  int bad = 0;
  for (const auto& i : ds.issues) bad += i.kind == data::ParseIssue::Kind::BadImage ? 1 : 0;
  EXPECT_EQ(bad, 2);
}

// 9. A checkpoint damaged after it was written (one flipped byte in its tensors) is an error naming it.
TEST(RunFolderSafety, AFlippedByteInACheckpointIsDetected) {
  TempDir dir;
  ModelOptions mc = default_config().model;
  mc.width = 0.25;
  model::YoloV2 net(model::yolov2_spec(mc, 20));
  const std::string path = dir.file("c.ckpt");
  io::save_checkpoint(path, *net, default_config());
  std::string bytes = read_text(path);
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x40);
  write_text(path, bytes);
  const std::string e = error_of([&] { io::load_checkpoint(path); });
  EXPECT_CONTAINS(e, path);
  EXPECT_CONTAINS(e, "checksum");
}

// 12. Scoring the written comp4 files gives exactly the mAP of the detections they came from.
TEST(RunFolderSafety, ResultsFilesReproduceTheMapExactly) {
  TempDir dir;
  util::Rng rng(5);
  const std::vector<std::string> names{"a", "b"};
  std::vector<std::vector<eval::GroundTruthBox>> gt(40);
  std::vector<eval::Detection> dets;
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) {
    ids.push_back("im" + std::to_string(i));
    const auto x = static_cast<float>(rng.uniform(0, 200)), y = static_cast<float>(rng.uniform(0, 200));
    gt[static_cast<std::size_t>(i)].push_back({i % 2, {x, y, x + 40, y + 40}, false});
    for (int k = 0; k < 3; ++k) {  // near the IoU threshold, with sub-0.1-pixel offsets
      const auto j = static_cast<float>(rng.uniform(7.5, 9.5));
      dets.push_back({i, i % 2, static_cast<float>(rng.uniform()), {x + j, y + j, x + 40 + j, y + 40 + j}});
    }
  }
  const auto direct = eval::evaluate_voc(gt, dets, names);
  eval::write_voc_results(dir.file("r"), "test", names, ids, dets);
  const auto reread = eval::evaluate_voc(gt, eval::read_voc_results(dir.file("r"), "test", names, ids), names);
  EXPECT_EQ(reread.map, direct.map);
}

// 13. A model evaluated with letterbox is exported with letter_box=1, and OpenCV still reads it.
TEST(RunFolderSafety, LetterboxModelsExportLetterBox) {
  TempDir dir;
  Config c = default_config();
  c.model.width = 0.125;
  model::YoloV2 net(model::yolov2_spec(c.model, 20));
  for (const auto t : {EvalTransform::Letterbox, EvalTransform::Resize}) {
    c.data.eval_transform = t;
    io::export_darknet(*net, c, dir.file("m"), 0);
    EXPECT_EQ(read_text(dir.file("m.cfg")).find("letter_box=1") != std::string::npos, t == EvalTransform::Letterbox);
    EXPECT_NO_THROW(cv::dnn::readNetFromDarknet(dir.file("m.cfg"), dir.file("m.weights")));
  }
}

// 11. Errors name their cause: a key's range (not "expects an integer"), a duplicate key, a 'base:'
// that is a folder (with the including file), the --set behind a cross-key error, an overflowing
// length; darknet weights that are NaN are refused.
TEST(RunFolderSafety, ConfigAndWeightsErrorsNameTheirCause) {
  TempDir dir;
  EXPECT_CONTAINS(error_of([] { parse_config("train:\n  batch: -3\n", "c.yaml"); }), "must be in [1,");
  EXPECT_CONTAINS(error_of([] { parse_config("train:\n  batch: 64\n  batch: 32\n", "c.yaml"); }),
                  "c.yaml:3: config key 'train.batch' is given twice");
  write_text(dir.file("c.yaml"), "base: " + dir.str() + "\n");
  const std::string base = error_of([&] { load_config(dir.file("c.yaml")); });
  EXPECT_CONTAINS(base, dir.file("c.yaml") + ":1");
  EXPECT_CONTAINS(base, "not a file");
  EXPECT_CONTAINS(error_of([] { parse_config("", "defaults", {"train.subdivisions=7"}); }),
                  "--set train.subdivisions=7");
  EXPECT_CONTAINS(error_of([] { parse_config("", "d", {"train.max_batches=4611686018427387904"}); }), "overflows");
  Config c = default_config();
  c.model.width = 0.125;
  model::YoloV2 net(model::yolov2_spec(c.model, 20));
  io::export_darknet(*net, c, dir.file("m"), 0);
  std::string w = read_text(dir.file("m.weights"));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(&w[w.size() - 4], &nan, 4);
  write_text(dir.file("m.weights"), w);
  EXPECT_CONTAINS(error_of([&] { io::load_darknet_weights(*net, dir.file("m.weights"), false); }), "m.weights: float ");
  // A header whose version words say 0.1 (a 4-byte `seen`) over an 8-byte one: named as the header.
  io::export_darknet(*net, c, dir.file("v"), 0);
  std::string v = read_text(dir.file("v.weights"));
  const int32_t minor = 1;
  std::memcpy(&v[4], &minor, 4);
  write_text(dir.file("v.weights"), v);
  EXPECT_CONTAINS(error_of([&] { io::load_darknet_weights(*net, dir.file("v.weights"), false); }),
                  "the header says version 0.1");
}

// Smaller faults of issue 29, each message naming its cause: an image id listed twice in a split
// file (file, line, first line); --weights given a folder; synth's --size beyond what fits memory;
// the images data.skip_bad_images leaves out, named.
TEST(RunFolderSafety, SplitListsWeightsFoldersAndSkippedImagesAreNamed) {
  TempDir dir;
  const std::string root = make_dataset(dir, 6, 96, 16);
  const std::string split = root + "/ImageSets/Main/trainval.txt";
  const std::string ids = read_text(split);
  write_text(split, ids + ids.substr(0, ids.find('\n') + 1));  // the first id again, at the end
  Config c = tiny_config(root, dir.file("run"));
  c.train.max_batches = 2;
  c.model.width = 0.125;
  const std::string dup = error_of([&] { data::load_dataset(c.data.train, parse_options(c, true)); });
  EXPECT_CONTAINS(dup, split + ":7: image id '");
  EXPECT_CONTAINS(dup, "(first at line 1)");
  write_text(split, ids);

  c.train.init_weights = root;  // a folder
  const std::string folder = error_of([&] { train::run_training(c, no_eval()); });
  EXPECT_CONTAINS(folder, root + ": train.init_weights is a folder");
  EXPECT_FALSE(fs::exists(dir.file("run/config.yaml")));  // the run folder holds only its lock

  data::SynthOptions so;
  so.out_dir = dir.file("big");
  so.size = 100000;
  EXPECT_CONTAINS(error_of([&] { data::write_synth(so); }), "size: 100000 (need 32..8192)");

  write_text(root + "/JPEGImages/000002.jpg", "");
  c.data.skip_bad_images = true;
  const data::Dataset ds = data::load_dataset(c.data.train, parse_options(c, true));
  const std::string skipped = data::skipped_images_summary(ds);
  EXPECT_CONTAINS(skipped, "1 image(s) skipped (data.skip_bad_images): ");
  EXPECT_CONTAINS(skipped, "000002.jpg: empty file");
}

#ifdef YOLO2_EXE

// 7. SIGTERM during training saves and exits 143 (SIGINT's 130 is in test_train.cpp).
TEST(RunFolderSafety, SigtermSavesAndExits143) {
  TempDir dir;
  Config c = short_run(dir, dir.file("run"));
  c.train.max_batches = 100000;
  write_text(dir.file("c.yaml"), to_yaml(c));
  const pid_t pid = testing::spawn_yolo2({"train", "--config", dir.file("c.yaml"), "--no-eval"}, dir.file("log"));
  testing::wait_for_file(dir.file("run/last.ckpt"));
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  const std::string out = read_text(dir.file("log"));
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 143) << out;
  EXPECT_CONTAINS(out, "yolo2 train --resume");
}

// With data.skip_bad_images, `train` names every image it leaves out, in its log (the smaller fault:
// they were skipped without a name).
TEST(RunFolderSafety, TrainNamesTheImagesItSkips) {
  TempDir dir;
  Config c = short_run(dir, dir.file("run"));
  c.data.skip_bad_images = true;
  c.train.batch = 4;  // 7 images are left
  write_text(dir.file("voc/JPEGImages/000002.jpg"), "");
  write_text(dir.file("c.yaml"), to_yaml(c));
  const std::string log = dir.file("log");
  EXPECT_EQ(run_status(std::string(YOLO2_EXE) + " train --config " + dir.file("c.yaml") +
                       " --no-eval --stop-after 1 > " + log + " 2>&1"),
            0)
      << read_text(log);
  const std::string out = read_text(log);
  EXPECT_CONTAINS(out, "data (training): 1 image(s) skipped (data.skip_bad_images): ");
  EXPECT_CONTAINS(out, "000002.jpg: empty file");
}

// 10. detect: inputs that share a stem stay apart, a broken image does not stop the others (exit 1,
// JSON for all), and an unwritable --json fails before any work.
// export and detect never write over their own inputs: the checkpoint as --darknet (with --prefix,
// the exact file), an input image as its own drawn copy (a single file into its folder); a folder
// as the --darknet prefix is refused too. Nothing is written and the inputs stay byte for byte.
TEST(RunFolderSafety, ExportAndDetectNeverReplaceTheirInputs) {
  TempDir dir;
  Config c = short_run(dir, dir.file("run"));
  train::run_training(c, no_eval());
  fs::copy_file(dir.file("run/last.ckpt"), dir.file("e.ckpt"));
  const std::string ckpt = read_text(dir.file("e.ckpt"));
  const std::string exe = std::string(YOLO2_EXE);
  EXPECT_EQ(run_status(exe + " export --checkpoint " + dir.file("e.ckpt") + " --darknet " + dir.file("e.ckpt") +
                       " --prefix 23 > " + dir.file("log1") + " 2>&1"),
            1);
  EXPECT_CONTAINS(read_text(dir.file("log1")), "is the input checkpoint");
  EXPECT_EQ(read_text(dir.file("e.ckpt")), ckpt);
  EXPECT_EQ(run_status(exe + " export --checkpoint " + dir.file("e.ckpt") + " --darknet " + dir.path().string() +
                       "/ > " + dir.file("log2") + " 2>&1"),
            1);
  EXPECT_CONTAINS(read_text(dir.file("log2")), "not a folder");
  EXPECT_FALSE(fs::exists(dir.file(".cfg")));
  const cv::Mat img(64, 64, CV_8UC3, cv::Scalar(30, 90, 200));
  fs::create_directories(dir.file("one"));
  cv::imwrite(dir.file("one/000001.jpg"), img);
  const std::string photo = read_text(dir.file("one/000001.jpg"));
  EXPECT_EQ(run_status(exe + " detect --checkpoint " + dir.file("e.ckpt") + " -i " + dir.file("one/000001.jpg") +
                       " -o " + dir.file("one") + " > " + dir.file("log3") + " 2>&1"),
            1);
  EXPECT_CONTAINS(read_text(dir.file("log3")), "would replace that image itself");
  EXPECT_EQ(read_text(dir.file("one/000001.jpg")), photo);
}

TEST(RunFolderSafety, DetectKeepsGoingPastABrokenImageAndKeepsNamesApart) {
  TempDir dir;
  Config c = short_run(dir, dir.file("run"));
  c.train.max_batches = 1;
  train::run_training(c, no_eval());
  const cv::Mat img(64, 64, CV_8UC3, cv::Scalar(30, 90, 200));
  fs::create_directories(dir.file("in"));
  cv::imwrite(dir.file("in/a.jpg"), img);
  cv::imwrite(dir.file("in/a.png"), img);
  write_text(dir.file("in/b.jpg"), "");
  const std::string base =
      std::string(YOLO2_EXE) + " detect --checkpoint " + dir.file("run/last.ckpt") + " -i " + dir.file("in") + " ";
  EXPECT_EQ(
      run_status(base + "-o " + dir.file("out") + " --json " + dir.file("d.json") + " > " + dir.file("log") + " 2>&1"),
      1)
      << read_text(dir.file("log"));
  EXPECT_TRUE(fs::exists(dir.file("out/a.jpg")));
  EXPECT_TRUE(fs::exists(dir.file("out/a.png")));
  const auto j = nlohmann::json::parse(read_text(dir.file("d.json")));
  ASSERT_EQ(j.size(), 3u);
  EXPECT_CONTAINS(j[2]["error"].get<std::string>(), "b.jpg: empty file");
  EXPECT_NE(run_status(base + "--json " + dir.file("nowhere/d.json") + " > " + dir.file("log2") + " 2>&1"), 0);
  EXPECT_CONTAINS(read_text(dir.file("log2")), "cannot write the JSON");
}

// 6. stats --check-images decodes every image and lists the bad ones (exit 1).
TEST(RunFolderSafety, StatsCheckImagesListsBadImages) {
  TempDir dir;
  const std::string root = make_dataset(dir, 6, 96, 13);
  write_text(root + "/JPEGImages/000004.jpg", "");
  const std::string cmd = std::string(YOLO2_EXE) + " stats --data " + root + " --split trainval --check-images > " +
                          dir.file("log") + " 2>&1";
  EXPECT_EQ(run_status(cmd), 1) << read_text(dir.file("log"));
  EXPECT_CONTAINS(read_text(dir.file("log")), "000004.jpg: empty file");
}

// yolo2 decodes JPEGs with libjpeg itself (to hear its warnings): the pixels are OpenCV's imdecode's,
// bit for bit, for baseline at two qualities, progressive, restart markers, grayscale (expanded to
// BGR) and odd sizes.
TEST(RunFolderSafety, JpegDecodeEqualsOpenCv) {
  TempDir dir;
  cv::Mat colour(37, 53, CV_8UC3), grey(29, 31, CV_8UC1);
  cv::randu(colour, cv::Scalar::all(0), cv::Scalar::all(256));
  cv::GaussianBlur(colour, colour, cv::Size(5, 5), 0);  // JPEG-like content, not only noise
  cv::randu(grey, cv::Scalar::all(0), cv::Scalar::all(256));
  const std::vector<std::pair<cv::Mat, std::vector<int>>> cases{
      {colour, {cv::IMWRITE_JPEG_QUALITY, 90}},
      {colour, {cv::IMWRITE_JPEG_QUALITY, 100}},
      {colour, {cv::IMWRITE_JPEG_QUALITY, 75, cv::IMWRITE_JPEG_PROGRESSIVE, 1}},
      {colour, {cv::IMWRITE_JPEG_QUALITY, 85, cv::IMWRITE_JPEG_RST_INTERVAL, 2}},
      {grey, {cv::IMWRITE_JPEG_QUALITY, 90}},
  };
  for (std::size_t k = 0; k < cases.size(); ++k) {
    std::vector<uchar> buf;
    ASSERT_TRUE(cv::imencode(".jpg", cases[k].first, buf, cases[k].second));
    const std::string path = dir.file("c" + std::to_string(k) + ".jpg");
    write_text(path, std::string(buf.begin(), buf.end()));
    const cv::Mat ours = data::read_image_file(path), theirs = cv::imdecode(buf, cv::IMREAD_COLOR);
    ASSERT_EQ(ours.type(), CV_8UC3) << k;
    ASSERT_EQ(ours.size(), theirs.size()) << k;
    EXPECT_EQ(cv::norm(ours, theirs, cv::NORM_INF), 0.0) << "case " << k;
  }
}

// A header claiming a huge image (a few damaged bytes, or a hostile file) is refused before anything
// is allocated: JPEG (its frame header), PNG (IHDR); a format yolo2 does not read is named.
TEST(RunFolderSafety, HugeImageHeadersAreRefusedBeforeDecoding) {
  TempDir dir;
  const cv::Mat img(16, 24, CV_8UC3, cv::Scalar(40, 80, 120));
  std::vector<uchar> jpg, png;
  cv::imencode(".jpg", img, jpg);
  cv::imencode(".png", img, png);
  std::string j(jpg.begin(), jpg.end()), p(png.begin(), png.end());
  const auto sof = j.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  j[sof + 5] = j[sof + 7] = '\xFD', j[sof + 6] = j[sof + 8] = '\xE8';                                // 65000 x 65000
  p[16] = p[20] = 0, p[17] = p[21] = 1, p[18] = p[22] = 0, p[19] = p[23] = 0;                        // 65536 x 65536
  const uLong crc = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(p.data() + 12), 17);  // IHDR's
  for (int k = 0; k < 4; ++k) p[29 + k] = static_cast<char>((crc >> (24 - 8 * k)) & 0xFF);
  write_text(dir.file("big.jpg"), j);
  write_text(dir.file("big.png"), p);
  EXPECT_CONTAINS(error_of([&] { data::read_image_file(dir.file("big.jpg")); }),
                  dir.file("big.jpg") + ": the image header says 65000 x 65000 pixels");
  EXPECT_CONTAINS(error_of([&] { data::read_image_file(dir.file("big.png")); }),
                  dir.file("big.png") + ": the image header says 65536 x 65536 pixels");
  EXPECT_TRUE(data::check_image_file(dir.file("big.png")).has_value());  // found at load time too
  // Under 100 megapixels but taller than OpenCV's 2^20 a side (its decoder would throw): the BMP the
  // image fuzzer found, a damaged header that reads as 54 x 1,048,616.
  const std::string bmp =
      read_text(std::string(YOLO2_SOURCE_DIR) + "/tests/fuzz/regressions/image/bmp_header_opencv_throws.bmp");
  write_text(dir.file("tall.bmp"), bmp);
  EXPECT_CONTAINS(error_of([&] { data::read_image_file(dir.file("tall.bmp")); }),
                  dir.file("tall.bmp") +
                      ": the image header says 54 x 1048616 pixels (yolo2 reads images of 1 to 100 "
                      "megapixels, at most 1048576 pixels a side)");
  EXPECT_TRUE(data::check_image_file(dir.file("tall.bmp")).has_value());
  write_text(dir.file("x.jpg"), "GIF89a and more bytes");
  EXPECT_CONTAINS(error_of([&] { data::read_image_file(dir.file("x.jpg")); }), "not a JPEG, PNG or BMP image");
  cv::imwrite(dir.file("ok.png"), img);
  EXPECT_EQ(data::read_image_file(dir.file("ok.png")).cols, 24);
}

// 7. A JPEG damaged in the middle (bytes overwritten in its compressed data: libjpeg decodes on, with
// grey or smeared blocks, and only warns) is an error naming the file and libjpeg's complaint, in
// training's reader and in `stats --check-images`.
TEST(RunFolderSafety, CorruptJpegDataIsAnErrorNamingTheFile) {
  TempDir dir;
  const std::string root = make_dataset(dir, 6, 96, 15);
  const std::string jpg = root + "/JPEGImages/000003.jpg";
  std::string bytes = read_text(jpg);
  ASSERT_NO_THROW(data::read_image_file(jpg));
  for (std::size_t i = bytes.size() / 2; i < bytes.size() / 2 + 24; ++i) bytes[i] = static_cast<char>(0x5A ^ i);
  write_text(jpg, bytes);
  EXPECT_FALSE(cv::imread(jpg).empty());  // OpenCV alone would take it
  const std::string e = error_of([&] { data::read_image_file(jpg); });
  EXPECT_CONTAINS(e, jpg + ": corrupt JPEG data (libjpeg: ");
  const std::string cmd = std::string(YOLO2_EXE) + " stats --data " + root + " --split trainval --check-images > " +
                          dir.file("log") + " 2>&1";
  EXPECT_EQ(run_status(cmd), 1) << read_text(dir.file("log"));
  EXPECT_CONTAINS(read_text(dir.file("log")), "000003.jpg: corrupt JPEG data");
  // data.skip_bad_images decodes every image at load: the damaged one is left out and named.
  Config c = tiny_config(root, dir.file("run"));
  EXPECT_EQ(data::load_dataset(c.data.train, parse_options(c, true)).images.size(), 6u);  // found only when decoded
  c.data.skip_bad_images = true;
  const data::Dataset ds = data::load_dataset(c.data.train, parse_options(c, true));
  EXPECT_EQ(ds.images.size(), 5u);
  EXPECT_CONTAINS(data::skipped_images_summary(ds), "000003.jpg: corrupt JPEG data");
}

// A PNG damaged in the middle (bytes overwritten in its image data) or cut short is an error naming
// the file, the chunk and its byte offset; a chunk whose CRC was recomputed over the changed bytes is
// libpng's to judge (here zlib's own check refuses it); a damaged ancillary chunk is skipped, as
// libpng skips it.
TEST(RunFolderSafety, DamagedPngIsAnErrorNamingTheChunk) {
  TempDir dir;
  cv::Mat img(48, 64, CV_8UC3);
  cv::randu(img, 0, 255);
  std::vector<uchar> enc;
  cv::imencode(".png", img, enc);
  std::string png(enc.begin(), enc.end());
  const auto be32 = [&](std::size_t i) {
    return (static_cast<uint32_t>(static_cast<unsigned char>(png[i])) << 24) |
           (static_cast<uint32_t>(static_cast<unsigned char>(png[i + 1])) << 16) |
           (static_cast<uint32_t>(static_cast<unsigned char>(png[i + 2])) << 8) |
           static_cast<uint32_t>(static_cast<unsigned char>(png[i + 3]));
  };
  const std::size_t idat = png.find("IDAT") - 4, idat_len = be32(idat);
  ASSERT_GT(idat_len, 100u);
  const std::string path = dir.file("a.png");
  write_text(path, png);
  EXPECT_EQ(cv::norm(data::read_image_file(path), img, cv::NORM_INF), 0.0);
  std::string bad = png;
  for (std::size_t i = idat + 8 + idat_len / 2; i < idat + 8 + idat_len / 2 + 8; ++i)
    bad[i] = static_cast<char>(~bad[i]);
  write_text(path, bad);
  EXPECT_CONTAINS(error_of([&] { data::read_image_file(path); }),
                  path + ": damaged PNG (chunk IDAT at byte " + std::to_string(idat) + " fails its CRC check");
  EXPECT_TRUE(data::check_image_file(path).has_value());
  // The same bytes with the chunk's CRC made to match: no longer ours to catch, and libpng/zlib refuse it.
  const uLong crc = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(bad.data() + idat + 4),
                          static_cast<uInt>(idat_len + 4));
  for (int k = 0; k < 4; ++k) bad[idat + 8 + idat_len + k] = static_cast<char>((crc >> (24 - 8 * k)) & 0xFF);
  write_text(path, bad);
  EXPECT_CONTAINS(error_of([&] { data::read_image_file(path); }), path + ": cannot decode image");
  // Cut inside IDAT, and cut after it (no IEND).
  write_text(path, png.substr(0, idat + 8 + idat_len / 2));
  EXPECT_CONTAINS(error_of([&] { data::read_image_file(path); }), path + ": truncated PNG (chunk IDAT at byte ");
  write_text(path, png.substr(0, png.size() - 12));
  EXPECT_CONTAINS(error_of([&] { data::read_image_file(path); }), path + ": truncated PNG (no IEND chunk");
  // An ancillary text chunk with a bad CRC before IDAT: the pixels are intact and read.
  const std::string text("\0\0\0\x07tEXtComment\x55\x55\x55\x55", 19);
  write_text(path, png.substr(0, idat) + text + png.substr(idat));
  EXPECT_EQ(cv::norm(data::read_image_file(path), img, cv::NORM_INF), 0.0);
}

// eval checks where --json and -o will write before it evaluates (not after the whole evaluation);
// a missing results file names the folder --detections expects.
TEST(RunFolderSafety, EvalChecksItsOutputsFirstAndNamesTheResultsFolder) {
  TempDir dir;
  Config c = short_run(dir, dir.file("run"));
  train::run_training(c, no_eval());
  const std::string root = c.data.train.front().root, exe = YOLO2_EXE;
  write_text(dir.file("file"), "x");
  const std::string base =
      exe + " eval --checkpoint " + dir.file("run/last.ckpt") + " --data " + root + " --split trainval ";
  EXPECT_EQ(run_status(base + "--json " + dir.file("file/m.json") + " > " + dir.file("log") + " 2>&1"), 1);
  const std::string log = read_text(dir.file("log"));
  EXPECT_CONTAINS(log, dir.file("file"));
  EXPECT_EQ(log.find("eval: 8 images"), std::string::npos) << log;  // refused before evaluating
  EXPECT_EQ(run_status(base + "-o " + dir.file("out") + " > " + dir.file("log2") + " 2>&1"), 0)
      << read_text(dir.file("log2"));
  EXPECT_NE(run_status(exe + " eval --detections " + dir.file("out") + " --data " + root + " --split trainval > " +
                       dir.file("log3") + " 2>&1"),
            0);
  EXPECT_CONTAINS(read_text(dir.file("log3")), "writes them to OUT/results");
}

// 11. A classes.txt with Windows line ends reads as the same classes; the summary of a --no-eval run
// lists only the files it wrote.
TEST(RunFolderSafety, CrlfClassesAndNoEvalSummary) {
  TempDir dir;
  const std::string root = make_dataset(dir, 6, 96, 14);
  std::string classes = read_text(root + "/classes.txt"), crlf;
  for (char ch : classes) crlf += ch == '\n' ? std::string("\r\n") : std::string(1, ch);
  write_text(root + "/classes.txt", crlf);
  EXPECT_EQ(
      run_status(std::string(YOLO2_EXE) + " stats --data " + root + " --split trainval > " + dir.file("log") + " 2>&1"),
      0)
      << read_text(dir.file("log"));
  TempDir other;  // a dataset of its own (synth writes only into an empty folder)
  Config c = short_run(other, dir.file("run"));
  write_text(dir.file("c.yaml"), to_yaml(c));
  ASSERT_EQ(run_status(std::string(YOLO2_EXE) + " train --config " + dir.file("c.yaml") + " --no-eval > " +
                       dir.file("log2") + " 2>&1"),
            0)
      << read_text(dir.file("log2"));
  const std::string out = read_text(dir.file("log2"));
  EXPECT_CONTAINS(out, "run folder: ");
  EXPECT_EQ(out.find("best.ckpt"), std::string::npos) << out;
}

#endif

}  // namespace
}  // namespace yolo2
