// Integrity of zip archives as LibTorch writes them (checkpoints): every record carries a CRC-32 in
// the zip's central directory, which LibTorch's reader does not check (its miniz is built without
// the reader's CRC checks). This does.
#pragma once

#include <string>

namespace yolo2::util {

// Recomputes the CRC-32 of every stored record of the zip archive `path` and compares it with the
// recorded one. Throws yolo2::Error naming the file (and the record) when the archive is damaged or
// a checksum differs. Records that are compressed are skipped (LibTorch stores them uncompressed).
void verify_zip_checksums(const std::string& path);

}  // namespace yolo2::util
