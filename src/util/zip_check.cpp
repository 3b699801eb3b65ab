#include "yolo2/util/zip_check.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "yolo2/error.hpp"
#include "yolo2/util/atomic_file.hpp"

namespace yolo2::util {
namespace {

// The zip format (PKWARE APPNOTE 6.3): little-endian fields at fixed offsets.
struct Bytes {
  const std::string& path;
  std::string data;
  uint64_t u(uint64_t at, int n) const {
    if (at + static_cast<uint64_t>(n) > data.size())
      throw Error(path + ": damaged checkpoint (zip structure cut short)");
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | static_cast<unsigned char>(data[at + static_cast<uint64_t>(k)]);
    return v;
  }
};

struct Directory {
  uint64_t entries = 0, offset = 0;
};

Directory central_directory(const Bytes& b) {
  const uint64_t n = b.data.size();
  if (n < 22) throw Error(b.path + ": damaged checkpoint (too short for a zip archive)");
  uint64_t eocd = n - 22;
  while (b.u(eocd, 4) != 0x06054b50) {
    if (eocd == 0 || n - eocd > 22 + 65535) throw Error(b.path + ": damaged checkpoint (no zip end record)");
    --eocd;
  }
  Directory d{b.u(eocd + 10, 2), b.u(eocd + 16, 4)};
  if ((d.entries == 0xFFFF || d.offset == 0xFFFFFFFF) && eocd >= 20 && b.u(eocd - 20, 4) == 0x07064b50) {
    const uint64_t z = b.u(eocd - 20 + 8, 8);  // the zip64 end record
    if (b.u(z, 4) != 0x06064b50) throw Error(b.path + ": damaged checkpoint (bad zip64 end record)");
    d.entries = b.u(z + 32, 8);
    d.offset = b.u(z + 48, 8);
  }
  return d;
}

// Sizes and offset of one entry, with the zip64 extra field where the 32-bit fields overflow.
struct Entry {
  uint64_t method, crc, compressed, offset, next;
  std::string name;
};

Entry read_entry(const Bytes& b, uint64_t at) {
  if (b.u(at, 4) != 0x02014b50) throw Error(b.path + ": damaged checkpoint (bad zip directory entry)");
  Entry e{b.u(at + 10, 2), b.u(at + 16, 4), b.u(at + 20, 4), b.u(at + 42, 4), 0, {}};
  const uint64_t uncompressed = b.u(at + 24, 4), name_len = b.u(at + 28, 2), extra_len = b.u(at + 30, 2);
  e.name = b.data.substr(at + 46, name_len);
  for (uint64_t x = at + 46 + name_len; x + 4 <= at + 46 + name_len + extra_len;) {
    const uint64_t id = b.u(x, 2), size = b.u(x + 2, 2);
    if (id == 0x0001) {  // zip64: the overflowing fields, in this order
      uint64_t f = x + 4;
      if (uncompressed == 0xFFFFFFFF) f += 8;
      if (e.compressed == 0xFFFFFFFF) e.compressed = b.u(f, 8), f += 8;
      if (e.offset == 0xFFFFFFFF) e.offset = b.u(f, 8);
    }
    x += 4 + size;
  }
  e.next = at + 46 + name_len + extra_len + b.u(at + 32, 2);
  return e;
}

}  // namespace

void verify_zip_checksums(const std::string& path) {
  Bytes b{path, read_file(path)};
  const Directory d = central_directory(b);
  uint64_t at = d.offset;
  for (uint64_t k = 0; k < d.entries; ++k) {
    const Entry e = read_entry(b, at);
    at = e.next;
    if (e.method != 0) continue;
    if (b.u(e.offset, 4) != 0x04034b50) throw Error(path + ": damaged checkpoint (bad zip record " + e.name + ")");
    const uint64_t data = e.offset + 30 + b.u(e.offset + 26, 2) + b.u(e.offset + 28, 2);
    if (data + e.compressed > b.data.size())
      throw Error(path + ": damaged checkpoint (record " + e.name + " cut short)");
    uLong crc = crc32(0L, Z_NULL, 0);
    for (uint64_t done = 0; done < e.compressed;) {  // zlib takes 32-bit lengths
      const auto chunk = static_cast<uInt>(std::min<uint64_t>(e.compressed - done, 1u << 30));
      crc = crc32(crc, reinterpret_cast<const Bytef*>(b.data.data() + data + done), chunk);
      done += chunk;
    }
    if (crc != e.crc)
      throw Error(path + ": corrupt checkpoint: the checksum of " + e.name +
                  " does not match (the file was damaged after it was written)");
  }
}

}  // namespace yolo2::util
