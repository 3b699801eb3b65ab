// libFuzzer targets for every parser a user feeds yolo2 (issue 29): VOC XML, ImageSets lists,
// darknet label files, COCO JSON, classes.txt, the YAML config with --set overrides, VOC and COCO
// results files, checkpoint archives (the zip directory and records yolo2 checks itself, not
// LibTorch's reader), darknet .weights (header, layout and floats, against a small network) and
// image headers with the JPEG decoder. A parser may refuse its input with
// yolo2::Error (a named error, the expected outcome for bad input); anything else (another
// exception, a crash, a sanitizer report, a hang, a huge allocation) is a finding.
//
// Built twice: with clang's -fsanitize=fuzzer,address,undefined as `yolo2_fuzz` by scripts/fuzz.sh
// (tests/fuzz/CMakeLists.txt; YOLO2_FUZZ_TARGET picks the target), and with the project's compiler
// as `yolo2_fuzz_replay` (replay.cpp), which ctest runs over the committed corpus and regressions.
#include "targets.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>

#include "yolo2/config.hpp"
#include "yolo2/data/image_io.hpp"
#include "yolo2/data/voc.hpp"
#include "yolo2/error.hpp"
#include "yolo2/eval/coco_json.hpp"
#include "yolo2/eval/results_io.hpp"
#include "yolo2/io/darknet_weights.hpp"
#include "yolo2/util/zip_check.hpp"

namespace yolo2::fuzz {
namespace {

namespace fs = std::filesystem;

// A private folder for the parsers that read files; removed at exit.
const fs::path& scratch() {
  // Never destroyed: a static path's destructor would run before an atexit handler registered while
  // the path was being made, and the handler would read a destroyed path.
  static const fs::path* dir = [] {
    std::string pattern = (fs::temp_directory_path() / "yolo2-fuzz-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) std::abort();
    return new fs::path(pattern);
  }();
  static const bool cleanup = [] {
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(*dir, ec);
    });
    return true;
  }();
  (void)cleanup;
  return *dir;
}

std::string put(const std::string& name, const uint8_t* data, std::size_t size) {
  const fs::path p = scratch() / name;
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return p.string();
}

const std::vector<std::string> kClasses{"person", "car", "dog", "square"};

data::ParseOptions parse_options() {
  data::ParseOptions o;
  o.class_names = kClasses;
  return o;
}

void voc_xml(const uint8_t* d, std::size_t n) {
  std::vector<data::ParseIssue> issues;
  data::parse_voc_xml(put("a.xml", d, n), parse_options(), &issues);
}

// A split list naming images of a small VOC root (two of its ids exist, with annotations and images).
void split_list(const uint8_t* d, std::size_t n) {
  static const bool once = [] {
    const std::string xml =
        "<annotation><size><width>8</width><height>8</height></size><object><name>dog</name><bndbox><xmin>1</xmin>"
        "<ymin>1</ymin><xmax>6</xmax><ymax>6</ymax></bndbox></object></annotation>";
    for (const char* id : {"000001", "000002"}) {
      put(std::string("voc/Annotations/") + id + ".xml", reinterpret_cast<const uint8_t*>(xml.data()), xml.size());
      put(std::string("voc/JPEGImages/") + id + ".png", nullptr, 0);  // empty: skipped by the options below
    }
    return true;
  }();
  (void)once;
  put("voc/ImageSets/Main/s.txt", d, n);
  data::ParseOptions o = parse_options();
  o.skip_bad_images = true;
  data::load_dataset({{(scratch() / "voc").string(), "s"}}, o);
}

// A tiny PNG for the dataset forms whose boxes scale by the image's own size.
void put_png(const std::string& name) {
  std::vector<uint8_t> png;
  cv::imencode(".png", cv::Mat(6, 10, CV_8UC3, cv::Scalar(9, 9, 9)), png);
  put(name, png.data(), png.size());
}

// A darknet label file of one listed 10 x 6 image (darknet_labels.cpp: `class cx cy w h` lines).
void darknet_labels(const uint8_t* d, std::size_t n) {
  static const bool once = [] {
    put_png("dk/images/a.png");
    const std::string list = "images/a.png\n";
    put("dk/list.txt", reinterpret_cast<const uint8_t*>(list.data()), list.size());
    return true;
  }();
  (void)once;
  put("dk/labels/a.txt", d, n);
  data::load_dataset({{(scratch() / "dk" / "list.txt").string(), ""}}, parse_options());
}

// A COCO instances JSON whose images may name x.png (a 10 x 6 image beside it).
void coco_json(const uint8_t* d, std::size_t n) {
  static const bool once = [] {
    put_png("coco/x.png");
    return true;
  }();
  (void)once;
  data::load_dataset({{put("coco/c.json", d, n), ""}}, parse_options());
}

void classes_txt(const uint8_t* d, std::size_t n) { data::read_class_names(put("classes.txt", d, n)); }

// The first line holds --set overrides separated by ';', the rest is the YAML file.
void config(const uint8_t* d, std::size_t n) {
  const std::string text(reinterpret_cast<const char*>(d), n);
  const auto eol = text.find('\n');
  std::vector<std::string> overrides;
  const std::string first = text.substr(0, eol);
  for (std::size_t at = 0; at <= first.size() && !first.empty();) {
    const auto semi = first.find(';', at);
    overrides.push_back(first.substr(at, semi == std::string::npos ? std::string::npos : semi - at));
    if (semi == std::string::npos) break;
    at = semi + 1;
  }
  parse_config(eol == std::string::npos ? std::string() : text.substr(eol + 1), "fuzz.yaml", overrides);
}

// The results file of class "dog" (the others' are empty) for images 000001, 000002, 2008_000003.
void results(const uint8_t* d, std::size_t n) {
  for (const auto& c : kClasses)
    if (c != "dog") put("res/" + eval::results_file_name("test", c), nullptr, 0);
  put("res/" + eval::results_file_name("test", "dog"), d, n);
  eval::read_voc_results((scratch() / "res").string(), "test", kClasses, {"000001", "000002", "2008_000003"});
}

// A COCO results JSON against a two-image VOC-form dataset (string image ids, category = label + 1),
// scored with COCO's evaluation when it reads.
void coco_results(const uint8_t* d, std::size_t n) {
  data::Dataset ds;
  ds.class_names = kClasses;
  for (const char* id : {"000001", "2008_000003"}) {
    data::ImageRecord rec;
    rec.id = id, rec.width = 64, rec.height = 48;
    data::Object o;
    o.label = 1, o.x1 = 4, o.y1 = 4, o.x2 = 30, o.y2 = 20;
    rec.objects.push_back(o);
    ds.images.push_back(rec);
  }
  const auto dets = eval::read_coco_results(put("r.json", d, n), ds);
  eval::evaluate_coco(eval::coco_ground_truth(ds), dets, 2, static_cast<int>(kClasses.size()));
}

void checkpoint_zip(const uint8_t* d, std::size_t n) { util::verify_zip_checksums(put("c.ckpt", d, n)); }

// A .weights file for a two-convolution network: 4 filters 3x3 on 1 channel with batch norm
// (4 * 4 + 4 * 9 = 52 floats), then 2 filters 1x1 on 4 channels with biases (2 + 8 = 10), read as a
// full file and as a prefix (what load_darknet_weights checks before it writes any tensor).
void darknet_weights(const uint8_t* d, std::size_t n) {
  static const std::vector<io::WeightsConv> convs{{0, 52, "layer 0 (conv 4 3x3)"}, {2, 10, "layer 2 (conv 2 1x1)"}};
  const std::string bytes(reinterpret_cast<const char*>(d), n);
  try {
    io::check_darknet_weights(bytes, "fuzz.weights", convs, false);
  } catch (const Error&) {}
  io::check_darknet_weights(bytes, "fuzz.weights", convs, true);
}

void image(const uint8_t* d, std::size_t n) {
  data::decode_image("fuzz-image", std::string(reinterpret_cast<const char*>(d), n));
}

}  // namespace

const std::vector<Target>& targets() {
  static const std::vector<Target> all{
      {"voc_xml", voc_xml},
      {"split_list", split_list},
      {"classes_txt", classes_txt},
      {"config", config},
      {"results", results},
      {"checkpoint_zip", checkpoint_zip},
      {"darknet_weights", darknet_weights},
      {"image", image},
      {"darknet_labels", darknet_labels},
      {"coco_json", coco_json},
      {"coco_results", coco_results},
  };
  return all;
}

const Target* find_target(const std::string& name) {
  for (const Target& t : targets())
    if (name == t.name) return &t;
  return nullptr;
}

bool run_one(const Target& t, const uint8_t* data, std::size_t size) {
  try {
    t.run(data, size);
    return true;
  } catch (const Error&) {
    return false;  // refused with a named error: what bad input should get
  }
}

}  // namespace yolo2::fuzz

#ifdef YOLO2_LIBFUZZER
namespace {
const yolo2::fuzz::Target* chosen = nullptr;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* name = std::getenv("YOLO2_FUZZ_TARGET");
  chosen = name ? yolo2::fuzz::find_target(name) : nullptr;
  if (!chosen) {
    std::fprintf(stderr, "set YOLO2_FUZZ_TARGET to one of:");
    for (const auto& t : yolo2::fuzz::targets()) std::fprintf(stderr, " %s", t.name);
    std::fprintf(stderr, "\n");
    std::exit(2);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  yolo2::fuzz::run_one(*chosen, data, size);
  return 0;
}
#endif
