// The three dataset forms (data/dataset.hpp): the same generated data written as VOC XML, darknet
// labels and COCO JSON gives identical records, identical training batches and identical VOC mAP;
// each form's own files (obj.data, data.yaml, a list, categories) and each bad input named.
#include "yolo2/data/dataset.hpp"

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "yolo2/data/loader.hpp"
#include "yolo2/data/synth.hpp"
#include "yolo2/error.hpp"
#include "yolo2/eval/evaluator.hpp"
#include "yolo2/eval/voc_ap.hpp"
#include "yolo2/util/rng.hpp"

namespace yolo2::data {
namespace {

namespace fs = std::filesystem;
using yolo2::testing::error_of;
using yolo2::testing::TempDir;
using yolo2::testing::write_text;

SynthOptions synth_options(const std::string& out, DatasetFormat format, bool difficult) {
  SynthOptions o;
  o.out_dir = out;
  o.train = 12;
  o.test = 6;
  o.size = 96;
  o.seed = 3;
  o.min_object = 8;
  o.max_objects = 5;
  o.threads = 1;
  o.format = format;
  o.difficult = difficult;
  return o;
}

ParseOptions parse_options(const SynthResult& r, bool train) {
  ParseOptions po;
  po.class_names = r.class_names;
  po.keep_difficult = !train;
  return po;
}

void expect_same_records(const Dataset& a, const Dataset& b, const std::string& what) {
  ASSERT_EQ(a.images.size(), b.images.size()) << what;
  for (std::size_t i = 0; i < a.images.size(); ++i) {
    const ImageRecord &x = a.images[i], &y = b.images[i];
    EXPECT_EQ(x.id, y.id) << what;
    EXPECT_EQ(x.width, y.width) << what;
    EXPECT_EQ(x.height, y.height) << what;
    ASSERT_EQ(x.objects.size(), y.objects.size()) << what << " image " << x.id;
    for (std::size_t k = 0; k < x.objects.size(); ++k) {
      const Object &p = x.objects[k], &q = y.objects[k];
      EXPECT_EQ(p.label, q.label) << what << " " << x.id;
      // Exactly the same floats: the writers keep every bit.
      EXPECT_EQ(p.x1, q.x1) << what << " " << x.id;
      EXPECT_EQ(p.y1, q.y1) << what << " " << x.id;
      EXPECT_EQ(p.x2, q.x2) << what << " " << x.id;
      EXPECT_EQ(p.y2, q.y2) << what << " " << x.id;
      EXPECT_EQ(p.difficult, q.difficult) << what << " " << x.id;
    }
  }
}

void expect_same_batches(const Dataset& a, const Dataset& b, const std::string& what) {
  LoaderOptions o;
  o.batch_size = 4;
  o.workers = 0;
  o.seed = 9;
  o.train = true;
  o.max_boxes = 8;
  o.input_size = 64;
  for (int64_t index = 0; index < 3; ++index) {
    const Batch x = make_batch(a, o, index), y = make_batch(b, o, index);
    EXPECT_TRUE(x.images.equal(y.images)) << what << " batch " << index;
    EXPECT_TRUE(x.boxes.equal(y.boxes)) << what << " batch " << index;
    EXPECT_TRUE(x.labels.equal(y.labels)) << what << " batch " << index;
    EXPECT_TRUE(x.counts.equal(y.counts)) << what << " batch " << index;
  }
}

// Detections made from the ground truth (shifted, some dropped, some spurious), the same for both.
eval::MapResult map_of(const Dataset& test) {
  std::vector<eval::Detection> dets;
  util::Rng rng(17);
  for (std::size_t i = 0; i < test.images.size(); ++i)
    for (const Object& o : test.images[i].objects) {
      if (rng.bernoulli(0.2)) continue;
      const float dx = static_cast<float>(rng.uniform(-3, 3));
      dets.push_back(
          {static_cast<int>(i), o.label, static_cast<float>(rng.uniform()), {o.x1 + dx, o.y1, o.x2 + dx, o.y2}});
      if (rng.bernoulli(0.3))
        dets.push_back({static_cast<int>(i), (o.label + 1) % 6, static_cast<float>(rng.uniform()), {0, 0, 20, 20}});
    }
  return eval::evaluate_voc(eval::ground_truth(test), dets, test.class_names);
}

TEST(DatasetForms, SameSynthDataInEveryFormGivesSameRecordsBatchesAndMap) {
  TempDir dir("yolo2-forms");
  const SynthResult voc = write_synth(synth_options(dir.file("voc"), DatasetFormat::Voc, true));
  write_synth(synth_options(dir.file("voc_plain"), DatasetFormat::Voc, false));
  write_synth(synth_options(dir.file("darknet"), DatasetFormat::Darknet, false));
  write_synth(synth_options(dir.file("coco"), DatasetFormat::Coco, true));
  ASSERT_GT(voc.difficult, 0) << "the case needs difficult objects";
  bool difficult_counted = false;  // in some split, VOC's difficult flags change the mAP
  for (const char* split : {"trainval", "test"}) {
    for (bool train : {true, false}) {
      const ParseOptions po = parse_options(voc, train);
      const std::string what = std::string(split) + (train ? " (training rule)" : " (evaluation rule)");
      const Dataset v = load_dataset({{dir.file("voc"), split}}, po);
      const Dataset vp = load_dataset({{dir.file("voc_plain"), split}}, po);
      const Dataset d = load_dataset({{dir.file("darknet"), split}}, po);
      const Dataset c = load_dataset({{dir.file("coco"), split}}, po);
      // VOC's difficult objects are COCO's crowd boxes; darknet's labels carry none, like VOC made so.
      expect_same_records(v, c, std::string("voc vs coco, ") + what);
      expect_same_records(vp, d, std::string("voc without difficult vs darknet, ") + what);
      if (train) {
        expect_same_batches(v, c, std::string("voc vs coco, ") + what);
        expect_same_batches(vp, d, std::string("voc without difficult vs darknet, ") + what);
      } else {
        const eval::MapResult mv = map_of(v), mc = map_of(c), mvp = map_of(vp), md = map_of(d);
        EXPECT_GT(mv.map, 0.3);
        EXPECT_EQ(mv.map, mc.map) << what;
        EXPECT_EQ(mvp.map, md.map) << what;
        difficult_counted = difficult_counted || mv.map != mvp.map;
      }
    }
  }
  EXPECT_TRUE(difficult_counted) << "difficult objects must change a figure, or the identity shows little";
  // The darknet folder also reads through its obj.data (train = trainval.txt, valid = test.txt) and
  // its data.yaml (train / val), and the COCO JSON file directly.
  const ParseOptions po = parse_options(voc, false);
  const Dataset by_list = load_dataset({{dir.file("darknet"), "test"}}, po);
  expect_same_records(by_list, load_dataset({{dir.file("darknet/obj.data"), "valid"}}, po), "obj.data valid");
  expect_same_records(by_list, load_dataset({{dir.file("darknet/data.yaml"), "val"}}, po), "data.yaml val");
  expect_same_records(
      load_dataset({{dir.file("coco"), "test"}}, po),
      load_dataset(
          {{dir.file("coco/annotations/instances_test.json"), "", DatasetFormat::Auto, dir.file("coco/images")}}, po),
      "COCO JSON file with images:");
  EXPECT_EQ(dataset_class_names({dir.file("darknet/obj.data"), "train"}), voc.class_names);
  EXPECT_EQ(dataset_class_names({dir.file("coco"), "test"}), voc.class_names);
}

// A tiny darknet dataset: one 40 x 20 PNG and its label file.
struct TinyDarknet {
  TempDir dir{"yolo2-darknet"};
  ParseOptions po;
  TinyDarknet() {
    po.class_names = {"a", "b"};
    fs::create_directories(dir.file("images"));
    cv::imwrite(dir.file("images/x.png"), cv::Mat(20, 40, CV_8UC3, cv::Scalar(1, 2, 3)));
    write_text(dir.file("list.txt"), "images/x.png\n");
  }
  Dataset load() { return load_dataset({{dir.file("list.txt"), ""}}, po); }
  std::string error(const std::string& labels) {
    write_text(dir.file("labels/x.txt"), labels);
    return error_of([&] { load(); });
  }
};

TEST(DarknetLabels, BoxesAreNormalisedCentresOfTheImagesOwnSize) {
  TinyDarknet t;
  write_text(t.dir.file("labels/x.txt"), "1 0.5 0.5 0.5 0.5\n\n0 0.1 0.2 0.2 0.4\n");
  const Dataset ds = t.load();
  ASSERT_EQ(ds.images.size(), 1u);
  const ImageRecord& r = ds.images[0];
  EXPECT_EQ(r.id, "x");
  EXPECT_EQ(r.width, 40);
  EXPECT_EQ(r.height, 20);
  ASSERT_EQ(r.objects.size(), 2u);
  EXPECT_EQ(r.objects[0].label, 1);
  EXPECT_FLOAT_EQ(r.objects[0].x1, 10);
  EXPECT_FLOAT_EQ(r.objects[0].y1, 5);
  EXPECT_FLOAT_EQ(r.objects[0].x2, 30);
  EXPECT_FLOAT_EQ(r.objects[0].y2, 15);
  EXPECT_EQ(r.objects[1].name, "a");
  EXPECT_FLOAT_EQ(r.objects[1].x1, 0);
  EXPECT_FLOAT_EQ(r.objects[1].y2, 8);
}

TEST(DarknetLabels, EachBadLineIsNamedWithItsFileAndLine) {
  TinyDarknet t;
  const std::string file = t.dir.file("labels/x.txt");
  EXPECT_NE(t.error("0 0.5 0.5 0.2\n").find(file + ":1: expected 5 fields"), std::string::npos);
  EXPECT_NE(t.error("0 0.5 0.5 0.2 0.2\n2 0.5 0.5 0.2 0.2\n").find(file + ":2: class 2 is beyond the 2 class names"),
            std::string::npos);
  EXPECT_NE(t.error("0 0.5 1.5 0.2 0.2\n").find(file + ":1: cy = 1.5 is outside [0, 1]"), std::string::npos);
  EXPECT_NE(t.error("0.5 0.5 0.5 0.2 0.2\n").find("whole number"), std::string::npos);
  EXPECT_NE(t.error("0 0.5 nan 0.2 0.2\n").find("cy is not a number"), std::string::npos);
  EXPECT_NE(t.error("0 0.5 0.5 0.2 0.2 0.1 0.1\n").find("segment polygons are not supported"), std::string::npos);
  // With skip_unknown_classes the object is skipped and counted.
  write_text(file, "5 0.5 0.5 0.2 0.2\n");
  t.po.skip_unknown_classes = true;
  const Dataset ds = t.load();
  EXPECT_TRUE(ds.images[0].objects.empty());
  ASSERT_FALSE(ds.issues.empty());
  EXPECT_EQ(ds.issues[0].kind, ParseIssue::Kind::UnknownClass);
}

TEST(DarknetLabels, AMissingLabelFileIsAnImageWithoutObjectsAndCounted) {
  TinyDarknet t;
  const Dataset ds = t.load();
  ASSERT_EQ(ds.images.size(), 1u);
  EXPECT_TRUE(ds.images[0].objects.empty());
  bool counted = false;
  for (const auto& i : ds.issues) counted = counted || i.kind == ParseIssue::Kind::MissingLabels;
  EXPECT_TRUE(counted);
}

TEST(DatasetForms, ImageIdsAreUniqueOverTheWholeDataset) {
  // The same image twice (here one darknet list given as two entries) would give results-file
  // lines that cannot be told apart.
  TinyDarknet t;
  const std::string e = error_of([&] {
    load_dataset({{t.dir.file("list.txt"), ""}, {t.dir.file("list.txt"), ""}}, t.po);
  });
  EXPECT_NE(e.find("image id 'x' (the file name without extension) is also that of"), std::string::npos) << e;
}

TEST(DarknetLabels, NamesFromTheDatasetMustMatchTheModels) {
  TinyDarknet t;
  write_text(t.dir.file("obj.names"), "a\nc\n");
  write_text(t.dir.file("obj.data"), "classes = 2\ntrain = list.txt\nnames = obj.names\n");
  const std::string e = error_of([&] { load_dataset({{t.dir.file("obj.data"), "train"}}, t.po); });
  EXPECT_NE(e.find(t.dir.file("obj.names")), std::string::npos) << e;
  EXPECT_NE(e.find("(a, c)"), std::string::npos) << e;
  EXPECT_NE(e.find("data.classes: a, b"), std::string::npos) << e;
  write_text(t.dir.file("obj.data"), "classes = 3\ntrain = list.txt\nnames = obj.names\n");
  EXPECT_NE(error_of([&] {
              load_dataset({{t.dir.file("obj.data"), "train"}}, t.po);
            }).find("classes = 3"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              load_dataset({{t.dir.file("obj.data"), "valid"}}, t.po);
            }).find("no `valid =` line"),
            std::string::npos);
  // data.yaml's names as a map from index to name.
  write_text(t.dir.file("data.yaml"), "path: .\ntrain: list.txt\nnames: {0: a, 1: b}\n");
  EXPECT_EQ(load_dataset({{t.dir.file("data.yaml"), "train"}}, t.po).images.size(), 1u);
  write_text(t.dir.file("data.yaml"), "train: list.txt\nnames: {0: a, 2: b}\n");
  EXPECT_NE(error_of([&] {
              load_dataset({{t.dir.file("data.yaml"), "train"}}, t.po);
            }).find("without gaps"),
            std::string::npos);
}

// A COCO file around one 40 x 20 image; `edit` changes the JSON text.
std::string coco_error(const std::string& json) {
  TempDir dir("yolo2-coco");
  cv::imwrite(dir.file("x.png"), cv::Mat(20, 40, CV_8UC3, cv::Scalar(1, 2, 3)));
  write_text(dir.file("c.json"), json);
  ParseOptions po;
  po.class_names = {"a", "b"};
  return error_of([&] { load_dataset({{dir.file("c.json"), ""}}, po); });
}

TEST(CocoJson, CategoriesByIdCrowdBoxesAndNamedErrors) {
  TempDir dir("yolo2-coco");
  cv::imwrite(dir.file("x.png"), cv::Mat(20, 40, CV_8UC3, cv::Scalar(1, 2, 3)));
  // Category ids 7 and 3: sorted by id, 3 (b... here "a") is label 0.
  const std::string cats = R"("categories": [{"id": 7, "name": "b"}, {"id": 3, "name": "a"}])";
  write_text(dir.file("c.json"), R"({"images": [{"id": 5, "file_name": "x.png", "width": 40, "height": 20}],
    "annotations": [{"id": 1, "image_id": 5, "category_id": 7, "bbox": [2, 3, 10, 4], "iscrowd": 0},
                    {"id": 2, "image_id": 5, "category_id": 3, "bbox": [30, 10, 20, 5], "iscrowd": 1}], )" +
                                     cats + "}");
  ParseOptions po;
  po.class_names = {"a", "b"};
  const Dataset ds = load_dataset({{dir.file("c.json"), ""}}, po);
  ASSERT_EQ(ds.images.size(), 1u);
  const ImageRecord& r = ds.images[0];
  EXPECT_EQ(r.source_id, 5);
  ASSERT_EQ(r.objects.size(), 2u);
  EXPECT_EQ(r.objects[0].label, 1);
  EXPECT_FLOAT_EQ(r.objects[0].x2, 12);
  EXPECT_FLOAT_EQ(r.objects[0].y2, 7);
  EXPECT_TRUE(r.objects[1].crowd && r.objects[1].difficult);
  EXPECT_FLOAT_EQ(r.objects[1].x2, 40) << "clipped to the image";
  // Training drops the crowd box, as it drops VOC's difficult objects.
  po.keep_difficult = false;
  EXPECT_EQ(load_dataset({{dir.file("c.json"), ""}}, po).images[0].objects.size(), 1u);

  const std::string img = R"("images": [{"id": 5, "file_name": "x.png", "width": 40, "height": 20}])";
  EXPECT_NE(coco_error(R"({"images": [{"id": 5, "file_name": "x.png", "width": 40, "height": 20},
                                      {"id": 5, "file_name": "x.png", "width": 40, "height": 20}],
                          "annotations": [], )" +
                       cats + "}")
                .find("$.images[1].id: image id 5 is also that of images[0]"),
            std::string::npos);
  // One annotation (image_id, category_id, bbox) and the error it must give.
  const std::vector<std::pair<std::string, std::string>> bad_annotations{
      {R"("image_id": 5, "category_id": 4, "bbox": [0, 0, 1, 1])",
       "$.annotations[0].category_id: no category has id 4"},
      {R"("image_id": 6, "category_id": 3, "bbox": [0, 0, 1, 1])", "$.annotations[0].image_id: no image has id 6"},
      {R"("image_id": 5, "category_id": 3, "bbox": [0, 0, -1, 1])",
       "$.annotations[0].bbox: a negative width or height"},
      {R"("image_id": 5, "category_id": 3, "bbox": [0, 0, 1])", "$.annotations[0].bbox: must be [x, y, width, height]"},
  };
  for (const auto& [annotation, message] : bad_annotations)
    EXPECT_NE(coco_error("{" + img + R"(, "annotations": [{)" + annotation + "}], " + cats + "}").find(message),
              std::string::npos)
        << message;
  EXPECT_NE(coco_error("{" + img + R"(, "annotations": [], "categories": [{"id": 1}]})")
                .find("$.categories[0]: has no \"name\""),
            std::string::npos);
  EXPECT_NE(
      coco_error("{" + img + R"(, "annotations": [], "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "c"}]})")
          .find("differ from the model's"),
      std::string::npos);
  EXPECT_NE(coco_error(R"({"images": [)").find("malformed JSON"), std::string::npos);
  // A number beyond a double's range is nlohmann's out_of_range, named all the same.
  EXPECT_NE(coco_error(R"({"images": [], "x": 1e400})").find("JSON"), std::string::npos);
}

TEST(DatasetForms, SynthOverwriteChangesTheFormCleanlyAndNeverAUsersFile) {
  TempDir dir("yolo2-forms");
  const std::string out = dir.file("d");
  write_synth(synth_options(out, DatasetFormat::Voc, true));
  // VOC -> COCO: no empty Annotations/ is left to make the folder read as VOC.
  SynthOptions coco = synth_options(out, DatasetFormat::Coco, true);
  coco.overwrite = true;
  const SynthResult r = write_synth(coco);
  EXPECT_FALSE(fs::exists(dir.file("d/Annotations")));
  EXPECT_EQ(resolve_format({out, "test"}), DatasetFormat::Coco);
  EXPECT_EQ(load_dataset({{out, "test"}}, parse_options(r, false)).images.size(), 6u);
  // A file the user added, which the darknet form would write, is refused (before synth deletes
  // anything) and kept.
  write_text(dir.file("d/data.yaml"), "mine\n");
  SynthOptions darknet = synth_options(out, DatasetFormat::Darknet, false);
  darknet.overwrite = true;
  const std::string e = error_of([&] { write_synth(darknet); });
  EXPECT_NE(e.find(dir.file("d/data.yaml") + ": exists and synth did not write it"), std::string::npos) << e;
  EXPECT_EQ(yolo2::testing::read_text(dir.file("d/data.yaml")), "mine\n");
  EXPECT_TRUE(fs::exists(dir.file("d/annotations/instances_test.json"))) << "refused before anything was deleted";
}

TEST(DatasetForms, AnUnrecognisedRootNamesWhatWasLookedFor) {
  TempDir dir("yolo2-forms");
  fs::create_directories(dir.file("empty"));
  ParseOptions po;
  po.class_names = {"a"};
  const std::string e = error_of([&] { load_dataset({{dir.file("empty"), "train"}}, po); });
  EXPECT_NE(e.find("format: voc|darknet|coco"), std::string::npos) << e;
  EXPECT_NE(e.find("ImageSets/Main/train.txt"), std::string::npos) << e;
}

}  // namespace
}  // namespace yolo2::data
