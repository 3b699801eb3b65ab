// Pascal VOC annotations (one of the dataset forms of dataset.hpp): VOC XML files in a VOCdevkit-style
// root (Annotations/, JPEGImages/, ImageSets/Main/<split>.txt). VOC's 1-based XML coordinates are
// shifted by -1 once, here, at parse time.
#pragma once

#include <string>
#include <vector>

#include "yolo2/data/dataset.hpp"

namespace yolo2::data {

// Parses one VOC XML annotation. Rules (documented in README, "Bad data"):
//  - only <object> children of <annotation> are objects (a person's <part> boxes are not);
//  - a missing <difficult> or <truncated> means 0; float coordinates are accepted;
//  - boxes reaching outside [0, width-1] x [0, height-1] are clipped (issue ClippedBox);
//  - boxes with x2 < x1 or y2 < y1 after clipping are dropped (issue DegenerateBox);
//  - an unknown class name throws yolo2::Error (file, line, name) unless skip_unknown_classes;
//  - a missing or unreadable file, malformed XML (file and byte offset/line) or a missing
//    <size>/<bndbox> field throws yolo2::Error naming the file and element.
// `image_path` of the result is left empty: the dataset fills it.
ImageRecord parse_voc_xml(const std::string& xml_path, const ParseOptions& options, std::vector<ParseIssue>* issues);

}  // namespace yolo2::data
