# The sources that parse what users give yolo2 (VOC XML, darknet labels, COCO JSON, split lists,
# classes.txt, the YAML config, results files (VOC and COCO), checkpoint archives, darknet .weights,
# images), which need no LibTorch: the fuzz targets' library, built by the sanitizer build
# (tests/fuzz/CMakeLists.txt) and by the corpus replay (CMakeLists.txt).
set(YOLO2_PARSER_SOURCES
  src/config.cpp src/data/voc.cpp src/data/dataset.cpp src/data/darknet_labels.cpp src/data/coco.cpp
  src/data/image_io.cpp src/eval/results_io.cpp src/eval/coco_json.cpp src/eval/coco_eval.cpp
  src/util/zip_check.cpp src/util/atomic_file.cpp src/io/darknet_weights.cpp)
list(TRANSFORM YOLO2_PARSER_SOURCES PREPEND "${CMAKE_CURRENT_LIST_DIR}/../")
