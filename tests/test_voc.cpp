// Tests of VOC annotation parsing (XML quirks, clipping, error context) and of VOCdevkit-style
// dataset loading and statistics.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "test_util.hpp"
#include "yolo2/data/voc.hpp"
#include "yolo2/error.hpp"

namespace {

using yolo2::Error;
using yolo2::data::ImageRecord;
using yolo2::data::Object;
using yolo2::data::parse_voc_xml;
using yolo2::data::ParseIssue;
using yolo2::data::ParseOptions;
using yolo2::testing::TempDir;
using yolo2::testing::write_text;

const std::vector<std::string> kClasses{"cat", "dog", "person"};

using yolo2::testing::error_of;

ParseOptions options() {
  ParseOptions o;
  o.class_names = kClasses;
  return o;
}

// One <object> element; `extra` goes inside it (e.g. <difficult>, <part>).
std::string object_xml(const std::string& name, const std::string& xmin, const std::string& ymin,
                       const std::string& xmax, const std::string& ymax, const std::string& extra = "") {
  return "  <object>\n    <name>" + name + "</name>\n" + extra + "    <bndbox>\n      <xmin>" + xmin +
         "</xmin>\n      <ymin>" + ymin + "</ymin>\n      <xmax>" + xmax + "</xmax>\n      <ymax>" + ymax +
         "</ymax>\n    </bndbox>\n  </object>\n";
}

std::string annotation_xml(const std::string& objects, int width = 100, int height = 80) {
  return "<annotation>\n  <folder>VOC2007</folder>\n  <filename>x.jpg</filename>\n"
         "  <size>\n    <width>" +
         std::to_string(width) + "</width>\n    <height>" + std::to_string(height) +
         "</height>\n    <depth>3</depth>\n  </size>\n" + objects + "</annotation>\n";
}

// Parses `xml` written to a temporary file.
struct Parsed {
  ImageRecord rec;
  std::vector<ParseIssue> issues;
};
Parsed parse_text(const TempDir& dir, const std::string& xml, const ParseOptions& o = options()) {
  const std::string path = dir.file("000001.xml");
  write_text(path, xml);
  Parsed p;
  p.rec = parse_voc_xml(path, o, &p.issues);
  return p;
}

int count_kind(const std::vector<ParseIssue>& issues, ParseIssue::Kind kind) {
  return static_cast<int>(
      std::count_if(issues.begin(), issues.end(), [&](const ParseIssue& i) { return i.kind == kind; }));
}

TEST(VocXml, ReadsSizeAndObjects) {
  TempDir dir("yolo2-voc");
  const Parsed p = parse_text(
      dir, annotation_xml(object_xml("dog", "11", "21", "50", "60") + object_xml("cat", "2", "3", "4", "5")));
  EXPECT_EQ(p.rec.id, "000001");
  EXPECT_EQ(p.rec.width, 100);
  EXPECT_EQ(p.rec.height, 80);
  EXPECT_TRUE(p.rec.image_path.empty());  // the dataset fills it
  ASSERT_EQ(p.rec.objects.size(), 2u);
  EXPECT_EQ(p.rec.objects[0].name, "dog");
  EXPECT_EQ(p.rec.objects[0].label, 1);
  EXPECT_EQ(p.rec.objects[1].label, 0);
  EXPECT_TRUE(p.issues.empty());
}

TEST(VocXml, OneBasedCoordinatesShiftByOneExactlyOnce) {
  TempDir dir("yolo2-voc");
  // VOC's top-left pixel is (1, 1); inside the program it is (0, 0).
  const Parsed p = parse_text(dir, annotation_xml(object_xml("dog", "1", "1", "10", "20")));
  ASSERT_EQ(p.rec.objects.size(), 1u);
  const Object& o = p.rec.objects[0];
  EXPECT_FLOAT_EQ(o.x1, 0.0f);
  EXPECT_FLOAT_EQ(o.y1, 0.0f);
  EXPECT_FLOAT_EQ(o.x2, 9.0f);
  EXPECT_FLOAT_EQ(o.y2, 19.0f);
  // The VOC maximum (width, height) is the last pixel, width - 1 after the shift; not a clip.
  const Parsed full = parse_text(dir, annotation_xml(object_xml("dog", "1", "1", "100", "80")));
  ASSERT_EQ(full.rec.objects.size(), 1u);
  EXPECT_FLOAT_EQ(full.rec.objects[0].x2, 99.0f);
  EXPECT_FLOAT_EQ(full.rec.objects[0].y2, 79.0f);
  EXPECT_TRUE(full.issues.empty());
}

TEST(VocXml, PartBoxesAreNotObjects) {
  TempDir dir("yolo2-voc");
  // A VOC person layout annotation: <part> elements with their own <name> and <bndbox> nested
  // inside the person's <object>.
  const std::string parts =
      "    <part>\n      <name>head</name>\n      <bndbox><xmin>20</xmin><ymin>10</ymin>"
      "<xmax>30</xmax><ymax>20</ymax></bndbox>\n    </part>\n"
      "    <part>\n      <name>hand</name>\n      <bndbox><xmin>12</xmin><ymin>30</ymin>"
      "<xmax>16</xmax><ymax>36</ymax></bndbox>\n    </part>\n";
  const Parsed p = parse_text(dir, annotation_xml(object_xml("person", "10", "5", "40", "70", parts)));
  ASSERT_EQ(p.rec.objects.size(), 1u);
  EXPECT_EQ(p.rec.objects[0].name, "person");
  // The object's own box, not a part's.
  EXPECT_FLOAT_EQ(p.rec.objects[0].x1, 9.0f);
  EXPECT_FLOAT_EQ(p.rec.objects[0].x2, 39.0f);
  // 'head' and 'hand' are not classes, yet no error and no issue: they were never objects.
  EXPECT_TRUE(p.issues.empty());
}

TEST(VocXml, PartBeforeBndboxDoesNotReplaceTheObjectBox) {
  TempDir dir("yolo2-voc");
  // Some VOC2012 files list the parts before the object's own <bndbox>.
  const std::string xml = annotation_xml(
      "  <object>\n    <name>person</name>\n"
      "    <part><name>head</name><bndbox><xmin>20</xmin><ymin>10</ymin><xmax>30</xmax>"
      "<ymax>20</ymax></bndbox></part>\n"
      "    <bndbox><xmin>10</xmin><ymin>5</ymin><xmax>40</xmax><ymax>70</ymax></bndbox>\n"
      "  </object>\n");
  const Parsed p = parse_text(dir, xml);
  ASSERT_EQ(p.rec.objects.size(), 1u);
  EXPECT_FLOAT_EQ(p.rec.objects[0].x1, 9.0f);
  EXPECT_FLOAT_EQ(p.rec.objects[0].y2, 69.0f);
}

TEST(VocXml, MissingDifficultMeansZero) {
  TempDir dir("yolo2-voc");
  const Parsed p =
      parse_text(dir, annotation_xml(object_xml("dog", "2", "2", "10", "10") +
                                     object_xml("cat", "2", "2", "10", "10",
                                                "    <difficult>1</difficult>\n"
                                                "    <truncated>1</truncated>\n") +
                                     object_xml("cat", "2", "2", "10", "10", "    <difficult>0</difficult>\n")));
  ASSERT_EQ(p.rec.objects.size(), 3u);
  EXPECT_FALSE(p.rec.objects[0].difficult);
  EXPECT_FALSE(p.rec.objects[0].truncated);
  EXPECT_TRUE(p.rec.objects[1].difficult);
  EXPECT_TRUE(p.rec.objects[1].truncated);
  EXPECT_FALSE(p.rec.objects[2].difficult);
}

TEST(VocXml, FloatCoordinatesAreAccepted) {
  TempDir dir("yolo2-voc");
  const Parsed p = parse_text(dir, annotation_xml(object_xml("cat", "10.5", " 20.25 ", "30.0", "41.75")));
  ASSERT_EQ(p.rec.objects.size(), 1u);
  EXPECT_FLOAT_EQ(p.rec.objects[0].x1, 9.5f);
  EXPECT_FLOAT_EQ(p.rec.objects[0].y1, 19.25f);
  EXPECT_FLOAT_EQ(p.rec.objects[0].x2, 29.0f);
  EXPECT_FLOAT_EQ(p.rec.objects[0].y2, 40.75f);
}

TEST(VocXml, UnknownClassIsAnErrorNamingFileLineAndClass) {
  TempDir dir("yolo2-voc");
  // The error must point at the unknown object, the second one in the file.
  const std::string xml =
      annotation_xml(object_xml("dog", "2", "2", "10", "10") + object_xml("unicorn", "2", "2", "10", "10"));
  const std::string path = dir.file("000001.xml");
  write_text(path, xml);
  // Line of the second "<object>".
  const std::size_t pos = xml.find("<object>", xml.find("<object>") + 1);
  const int line = 1 + static_cast<int>(std::count(xml.begin(), xml.begin() + static_cast<long>(pos), '\n'));
  std::vector<ParseIssue> issues;
  const std::string msg = error_of([&] { parse_voc_xml(path, options(), &issues); });
  EXPECT_CONTAINS(msg, path + ":" + std::to_string(line));
  EXPECT_CONTAINS(msg, "unicorn");
}

TEST(VocXml, SkipUnknownClassesCountsAnIssue) {
  TempDir dir("yolo2-voc");
  ParseOptions o = options();
  o.skip_unknown_classes = true;
  const Parsed p = parse_text(
      dir, annotation_xml(object_xml("unicorn", "2", "2", "10", "10") + object_xml("dog", "2", "2", "10", "10")), o);
  ASSERT_EQ(p.rec.objects.size(), 1u);
  EXPECT_EQ(p.rec.objects[0].name, "dog");
  ASSERT_EQ(p.issues.size(), 1u);
  EXPECT_EQ(p.issues[0].kind, ParseIssue::Kind::UnknownClass);
  EXPECT_EQ(p.issues[0].file, dir.file("000001.xml"));
  EXPECT_CONTAINS(p.issues[0].message, "unicorn");
}

TEST(VocXml, BoxOutsideImageIsClippedWithAnIssue) {
  TempDir dir("yolo2-voc");
  // 100 x 80 image: valid 0-based pixels are 0..99 x 0..79.
  const Parsed p = parse_text(
      dir, annotation_xml(object_xml("dog", "0", "-5", "120", "70") + object_xml("cat", "5", "5", "10", "10")));
  ASSERT_EQ(p.rec.objects.size(), 2u);
  EXPECT_FLOAT_EQ(p.rec.objects[0].x1, 0.0f);
  EXPECT_FLOAT_EQ(p.rec.objects[0].y1, 0.0f);
  EXPECT_FLOAT_EQ(p.rec.objects[0].x2, 99.0f);
  EXPECT_FLOAT_EQ(p.rec.objects[0].y2, 69.0f);
  ASSERT_EQ(p.issues.size(), 1u);  // only the dog, once
  EXPECT_EQ(p.issues[0].kind, ParseIssue::Kind::ClippedBox);
  EXPECT_CONTAINS(p.issues[0].message, "dog");
}

TEST(VocXml, DegenerateOrOutsideBoxesAreDroppedWithAnIssue) {
  TempDir dir("yolo2-voc");
  const Parsed p = parse_text(dir, annotation_xml(object_xml("dog", "50", "5", "40", "10") +    // xmax < xmin
                                                  object_xml("cat", "5", "30", "10", "20") +    // ymax < ymin
                                                  object_xml("cat", "150", "5", "170", "10") +  // right of image
                                                  object_xml("cat", "5", "-30", "10", "-2") +   // above image
                                                  object_xml("person", "5", "5", "5", "5")));   // one pixel: kept
  ASSERT_EQ(p.rec.objects.size(), 1u);
  EXPECT_EQ(p.rec.objects[0].name, "person");
  EXPECT_EQ(count_kind(p.issues, ParseIssue::Kind::DegenerateBox), 4);
  EXPECT_EQ(count_kind(p.issues, ParseIssue::Kind::ClippedBox), 0);
  for (const auto& i : p.issues) EXPECT_EQ(i.file, dir.file("000001.xml"));
}

TEST(VocXml, KeepDifficultFalseDropsDifficultWithAnIssue) {
  TempDir dir("yolo2-voc");
  ParseOptions o = options();
  o.keep_difficult = false;
  const Parsed p = parse_text(dir,
                              annotation_xml(object_xml("dog", "2", "2", "10", "10", "    <difficult>1</difficult>\n") +
                                             object_xml("cat", "2", "2", "10", "10")),
                              o);
  ASSERT_EQ(p.rec.objects.size(), 1u);
  EXPECT_EQ(p.rec.objects[0].name, "cat");
  ASSERT_EQ(p.issues.size(), 1u);
  EXPECT_EQ(p.issues[0].kind, ParseIssue::Kind::DroppedDifficult);
  // With the default (keep), the same file yields both.
  EXPECT_EQ(parse_text(dir, annotation_xml(object_xml("dog", "2", "2", "10", "10", "    <difficult>1</difficult>\n")))
                .rec.objects.size(),
            1u);
}

TEST(VocXml, MalformedXmlNamesFileAndLine) {
  TempDir dir("yolo2-voc");
  const std::string path = dir.file("bad.xml");
  // The closing tag on line 4 does not match.
  write_text(path, "<annotation>\n  <size>\n    <width>10</width>\n  </sise>\n</annotation>\n");
  const std::string msg = error_of([&] { parse_voc_xml(path, options(), nullptr); });
  EXPECT_CONTAINS(msg, path + ":4");
  EXPECT_CONTAINS(msg, "malformed");
}

TEST(VocXml, MissingFileIsAnErrorNamingIt) {
  TempDir dir("yolo2-voc");
  const std::string path = dir.file("absent.xml");
  EXPECT_CONTAINS(error_of([&] { parse_voc_xml(path, options(), nullptr); }), path);
}

TEST(VocXml, MissingFieldsNameFileAndElement) {
  TempDir dir("yolo2-voc");
  const std::string path = dir.file("000001.xml");
  auto msg_for = [&](const std::string& xml) {
    write_text(path, xml);
    return error_of([&] { parse_voc_xml(path, options(), nullptr); });
  };
  const std::string no_size = msg_for("<annotation>\n" + object_xml("dog", "1", "1", "5", "5") + "</annotation>\n");
  EXPECT_CONTAINS(no_size, path);
  EXPECT_CONTAINS(no_size, "<size>");

  const std::string no_width = msg_for("<annotation>\n  <size>\n    <height>5</height>\n  </size>\n</annotation>\n");
  EXPECT_CONTAINS(no_width, path + ":2");
  EXPECT_CONTAINS(no_width, "<width>");

  const std::string no_box = msg_for(annotation_xml("  <object>\n    <name>dog</name>\n  </object>\n"));
  EXPECT_CONTAINS(no_box, path);
  EXPECT_CONTAINS(no_box, "<bndbox>");

  const std::string no_ymax =
      msg_for(annotation_xml("  <object>\n    <name>dog</name>\n    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>3</xmax>"
                             "</bndbox>\n  </object>\n"));
  EXPECT_CONTAINS(no_ymax, path);
  EXPECT_CONTAINS(no_ymax, "<ymax>");

  const std::string bad_number = msg_for(annotation_xml(object_xml("dog", "1", "1", "12px", "5")));
  EXPECT_CONTAINS(bad_number, path);
  EXPECT_CONTAINS(bad_number, "<xmax>");
  EXPECT_CONTAINS(bad_number, "12px");

  const std::string empty_number = msg_for(annotation_xml(object_xml("dog", "", "1", "3", "5")));
  EXPECT_CONTAINS(empty_number, "<xmin>");

  const std::string bad_width = msg_for(annotation_xml("", 0, 10));
  EXPECT_CONTAINS(bad_width, path);
  EXPECT_CONTAINS(bad_width, "size");

  const std::string no_root = msg_for("<root/>\n");
  EXPECT_CONTAINS(no_root, "annotation");

  // A size that is no pixel count is reported as written, never as a wrapped int.
  std::string huge = annotation_xml("");
  huge.replace(huge.find("<width>100</width>"), 18, "<width>1e30</width>");
  const std::string too_big = msg_for(huge);
  EXPECT_CONTAINS(too_big, path);
  EXPECT_CONTAINS(too_big, "1e+30x80");
  EXPECT_EQ(too_big.find("-2147483648"), std::string::npos) << too_big;
}

// ---- datasets --------------------------------------------------------------------------

// A VOC folder written by hand: ids with their objects (VOC 1-based XML), plus a split file.
struct VocWriter {
  std::string root;
  void image(const std::string& id, const std::string& objects, int w = 40, int h = 30, bool with_jpeg = true) const {
    write_text(root + "/Annotations/" + id + ".xml", annotation_xml(objects, w, h));
    if (with_jpeg) {
      std::filesystem::create_directories(root + "/JPEGImages");
      cv::imwrite(root + "/JPEGImages/" + id + ".jpg", cv::Mat(h, w, CV_8UC3, cv::Scalar(90, 120, 150)));
    }
  }
  void split(const std::string& name, const std::string& text) const {
    write_text(root + "/ImageSets/Main/" + name + ".txt", text);
  }
};

TEST(Dataset, LoadsImagesInSplitOrderWithPaths) {
  TempDir dir("yolo2-voc");
  const VocWriter w{dir.file("VOC2007")};
  w.image("000002", object_xml("dog", "1", "1", "10", "10"));
  w.image("000001", object_xml("cat", "2", "2", "20", "20") + object_xml("person", "3", "3", "9", "9"));
  // Per-class files carry a flag column; blank lines and CRLF are tolerated.
  w.split("trainval", "000002\r\n\n000001  1\n");
  const auto ds = yolo2::data::load_dataset({{w.root, "trainval"}}, options());
  ASSERT_EQ(ds.images.size(), 2u);
  EXPECT_EQ(ds.images[0].id, "000002");
  EXPECT_EQ(ds.images[1].id, "000001");
  EXPECT_EQ(ds.images[1].objects.size(), 2u);
  EXPECT_EQ(ds.images[0].image_path, w.root + "/JPEGImages/000002.jpg");
  EXPECT_EQ(ds.images[0].annotation, w.root + "/Annotations/000002.xml");
  // Coordinates were shifted once, at parse time, and not again by the dataset.
  EXPECT_FLOAT_EQ(ds.images[0].objects[0].x1, 0.0f);
  EXPECT_EQ(ds.class_names, kClasses);
  ASSERT_EQ(ds.sources.size(), 1u);
  EXPECT_CONTAINS(ds.sources[0], "trainval.txt");
}

// A split file saved with a UTF-8 byte-order mark (Windows editors) reads its first id without it.
TEST(Dataset, ByteOrderMarkInASplitFileIsNotPartOfTheFirstId) {
  TempDir dir("yolo2-voc");
  const VocWriter w{dir.file("VOC2007")};
  w.image("000001", object_xml("cat", "2", "2", "20", "20"));
  w.image("000002", object_xml("dog", "1", "1", "10", "10"));
  w.split("trainval",
          "\xEF\xBB\xBF"
          "000001\n000002\n");
  const auto ds = yolo2::data::load_dataset({{w.root, "trainval"}}, options());
  ASSERT_EQ(ds.images.size(), 2u);
  EXPECT_EQ(ds.images[0].id, "000001");
  // The same in a classes.txt: the first class is "cat", not an invisible "\xEF\xBB\xBFcat".
  yolo2::testing::write_text(dir.file("classes.txt"),
                             "\xEF\xBB\xBF"
                             "cat\r\ndog\r\n");
  EXPECT_EQ(yolo2::data::read_class_names(dir.file("classes.txt")), (std::vector<std::string>{"cat", "dog"}));
}

TEST(Dataset, TwoSplitsConcatenateInOrder) {
  TempDir dir("yolo2-voc");
  const VocWriter a{dir.file("VOC2007")}, b{dir.file("VOC2012")};
  a.image("a1", object_xml("dog", "1", "1", "10", "10"));
  a.image("a2", object_xml("dog", "1", "1", "10", "10"));
  b.image("b1", object_xml("cat", "1", "1", "10", "10"));
  a.split("trainval", "a2\na1\n");
  b.split("train", "b1\n");
  const auto ds = yolo2::data::load_dataset({{b.root, "train"}, {a.root, "trainval"}}, options());
  ASSERT_EQ(ds.images.size(), 3u);
  EXPECT_EQ(ds.images[0].id, "b1");
  EXPECT_EQ(ds.images[1].id, "a2");
  EXPECT_EQ(ds.images[2].id, "a1");
  EXPECT_EQ(ds.images[0].image_path, b.root + "/JPEGImages/b1.jpg");
  EXPECT_EQ(ds.images[2].image_path, a.root + "/JPEGImages/a1.jpg");
  EXPECT_EQ(ds.sources.size(), 2u);
}

TEST(Dataset, MissingSplitFileNamesThePath) {
  TempDir dir("yolo2-voc");
  std::filesystem::create_directories(dir.file("VOC2007/Annotations"));
  const std::string msg = error_of([&] { yolo2::data::load_dataset({{dir.file("VOC2007"), "trainval"}}, options()); });
  EXPECT_CONTAINS(msg, dir.file("VOC2007") + "/ImageSets/Main/trainval.txt");
  // A root that is not there at all is named as such.
  const std::string gone = error_of([&] { yolo2::data::load_dataset({{dir.file("VOC2012"), "trainval"}}, options()); });
  EXPECT_CONTAINS(gone, dir.file("VOC2012") + ": the dataset root does not exist");
}

TEST(Dataset, EmptySplitNamesThePath) {
  TempDir dir("yolo2-voc");
  const VocWriter w{dir.file("VOC2007")};
  w.split("test", "\n  \n");
  const std::string msg = error_of([&] { yolo2::data::load_dataset({{w.root, "test"}}, options()); });
  EXPECT_CONTAINS(msg, w.root + "/ImageSets/Main/test.txt");
}

TEST(Dataset, MissingXmlNamesThePath) {
  TempDir dir("yolo2-voc");
  const VocWriter w{dir.file("VOC2007")};
  w.image("000001", object_xml("dog", "1", "1", "10", "10"));
  w.split("test", "000001\n000007\n");
  const std::string msg = error_of([&] { yolo2::data::load_dataset({{w.root, "test"}}, options()); });
  EXPECT_CONTAINS(msg, w.root + "/Annotations/000007.xml");
}

TEST(Dataset, MissingImageNamesThePath) {
  TempDir dir("yolo2-voc");
  const VocWriter w{dir.file("VOC2007")};
  w.image("000001", object_xml("dog", "1", "1", "10", "10"));
  w.image("000003", object_xml("dog", "1", "1", "10", "10"), 40, 30, /*with_jpeg=*/false);
  w.split("test", "000001\n000003\n");
  const std::string msg = error_of([&] { yolo2::data::load_dataset({{w.root, "test"}}, options()); });
  EXPECT_CONTAINS(msg, w.root + "/JPEGImages/000003");
}

TEST(Dataset, ParseIssuesAndEmptyImagesAreCollected) {
  TempDir dir("yolo2-voc");
  const VocWriter w{dir.file("VOC2007")};
  w.image("000001", object_xml("dog", "1", "1", "50", "10"));   // clipped (image is 40 wide)
  w.image("000002", object_xml("dog", "30", "1", "20", "10"));  // degenerate: image left empty
  w.split("test", "000001\n000002\n");
  const auto ds = yolo2::data::load_dataset({{w.root, "test"}}, options());
  ASSERT_EQ(ds.images.size(), 2u);  // an image without usable objects is still listed
  EXPECT_EQ(count_kind(ds.issues, ParseIssue::Kind::ClippedBox), 1);
  EXPECT_EQ(count_kind(ds.issues, ParseIssue::Kind::DegenerateBox), 1);
  EXPECT_EQ(count_kind(ds.issues, ParseIssue::Kind::EmptyImage), 1);
}

TEST(VocStats, CountsOnAHandMadeDataset) {
  yolo2::data::Dataset ds;
  ds.class_names = {"a", "b", "c"};
  auto obj = [](int label, float x1, float y1, float x2, float y2, bool difficult, bool truncated) {
    Object o;
    o.label = label;
    o.x1 = x1, o.y1 = y1, o.x2 = x2, o.y2 = y2;
    o.difficult = difficult;
    o.truncated = truncated;
    return o;
  };
  ImageRecord i1;
  i1.width = 100, i1.height = 100;
  // Sides (sqrt of relative area, width = x2 - x1 as in augment.hpp): 0.54, 0.12, 0.32 (away
  // from the 0.05 bin edges so rounding cannot move them).
  i1.objects = {obj(0, 0, 0, 54, 54, false, false), obj(0, 10, 10, 22, 22, true, false),
                obj(2, 0, 0, 32, 32, false, true)};
  ImageRecord i2;
  i2.width = 200, i2.height = 50;
  i2.objects = {obj(0, 0, 0, 100, 10, true, true)};  // sqrt(1000 / 10000) = 0.316
  ImageRecord i3;                                    // no objects
  i3.width = 10, i3.height = 10;
  ds.images = {i1, i2, i3};

  const auto st = yolo2::data::dataset_stats(ds);
  EXPECT_EQ(st.images, 3);
  EXPECT_EQ(st.objects, 4);
  EXPECT_EQ(st.difficult, 2);
  EXPECT_EQ(st.truncated, 2);
  EXPECT_EQ(st.empty_images, 1);
  EXPECT_EQ(st.objects_per_class, (std::vector<int>{3, 0, 1}));
  EXPECT_EQ(st.difficult_per_class, (std::vector<int>{2, 0, 0}));
  EXPECT_EQ(st.images_per_class, (std::vector<int>{2, 0, 1}));
  ASSERT_EQ(st.size_histogram.size(), 20u);
  EXPECT_EQ(st.size_histogram[2], 1);   // 0.12
  EXPECT_EQ(st.size_histogram[6], 2);   // 0.316 and 0.32
  EXPECT_EQ(st.size_histogram[10], 1);  // 0.54
  int total = 0;
  for (int h : st.size_histogram) total += h;
  EXPECT_EQ(total, 4);
  EXPECT_NEAR(st.min_side, 0.12, 1e-6);
  EXPECT_NEAR(st.max_side, 0.54, 1e-6);
  EXPECT_NEAR(st.median_side, 0.32, 1e-6);  // upper median of 0.12, 0.316, 0.32, 0.54

  const std::string report = yolo2::data::format_stats(ds, st);
  EXPECT_CONTAINS(report, "images 3, objects 4");
  EXPECT_CONTAINS(report, "difficult 2");
  EXPECT_CONTAINS(report, "images without objects 1");
}

TEST(VocStats, ReportListsIssuesUpToTheLimit) {
  yolo2::data::Dataset ds;
  ds.class_names = {"a"};
  ImageRecord r;
  r.width = r.height = 10;
  ds.images = {r};
  for (int i = 0; i < 5; ++i)
    ds.issues.push_back({ParseIssue::Kind::ClippedBox, "f.xml", "clip number " + std::to_string(i)});
  const std::string report = yolo2::data::format_stats(ds, yolo2::data::dataset_stats(ds), 3);
  EXPECT_CONTAINS(report, "clipped box 5");
  EXPECT_CONTAINS(report, "clip number 2");
  EXPECT_EQ(report.find("clip number 3"), std::string::npos);
  EXPECT_CONTAINS(report, "more not shown");
}

}  // namespace
