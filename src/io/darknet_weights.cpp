#include "yolo2/io/darknet_weights.hpp"

#include <cmath>
#include <cstring>
#include <sstream>

#include "yolo2/error.hpp"

namespace yolo2::io {

int DarknetHeader::header_bytes() const {
  // darknet's reader: an 8-byte `seen` from version 0.2 on (parser.c load_weights_upto), its
  // major * 10 + minor computed without overflow (a damaged header's words can be anything).
  return (int64_t{major} * 10 + minor >= 2 && major < 1000 && minor < 1000) ? 20 : 16;
}

namespace {

// Fills `h` from the start of a weights file and returns the header's size in bytes.
std::size_t read_header(const std::string& bytes, const std::string& path, DarknetHeader& h) {
  if (bytes.size() < 16)
    throw Error(path + ": " + std::to_string(bytes.size()) + " bytes is too short for a darknet weights header");
  std::memcpy(&h.major, bytes.data(), 4);
  std::memcpy(&h.minor, bytes.data() + 4, 4);
  std::memcpy(&h.revision, bytes.data() + 8, 4);
  const std::size_t header = static_cast<std::size_t>(h.header_bytes());
  if (bytes.size() < header)
    throw Error(path + ": " + std::to_string(bytes.size()) + " bytes is too short for a v" + std::to_string(h.major) +
                "." + std::to_string(h.minor) + " header");
  if (header == 20) {
    std::memcpy(&h.seen, bytes.data() + 12, 8);
  } else {
    int32_t seen32 = 0;
    std::memcpy(&seen32, bytes.data() + 12, 4);
    h.seen = static_cast<uint64_t>(static_cast<uint32_t>(seen32));
  }
  return header;
}

int64_t total_floats(const std::vector<WeightsConv>& convs) {
  int64_t total = 0;
  for (const WeightsConv& c : convs) total += c.floats;
  return total;
}

// Where each convolution's floats start (planned before anything is written: nothing is loaded
// unless the file fits the network); throws naming the layer where the floats run out, or what is
// left over.
void plan(const std::vector<WeightsConv>& convs, const std::string& path, int64_t available, bool allow_prefix,
          WeightsLayout& r) {
  int64_t offset = 0;
  for (const WeightsConv& c : convs) {
    ++r.conv_layers_total;
    if (offset == available && allow_prefix) continue;  // a prefix file ends here
    if (c.floats > available - offset) {
      std::ostringstream os;
      os << path << ": expected " << (allow_prefix ? offset + c.floats : total_floats(convs)) << " floats, found "
         << available << ": they ran out at " << c.what << ", which needs " << c.floats << " floats from offset "
         << offset << " but only " << (available - offset) << " are left"
         << (allow_prefix ? " (a prefix file must end at a layer boundary)" : "");
      throw Error(os.str());
    }
    r.steps.push_back({c.layer, offset});
    offset += c.floats;
  }
  r.floats_read = offset;
  if (offset == available) return;
  // One float too many is what a header whose version claims a 32-bit `seen` (before 0.2) gives
  // when the writer stored 64 bits (or the version words are damaged): the header, not the network.
  const std::string version = std::to_string(r.header.major) + "." + std::to_string(r.header.minor);
  const std::string hint =
      available - offset == 1 && r.header_bytes == 16
          ? "; one 4-byte word too many: the header says version " + version +
                " (a 4-byte `seen`), but the file may have been written with an 8-byte one (versions 0.2 and "
                "later): check the header's first two words"
          : "";
  throw Error(path + ": the file has " + std::to_string(available) + " floats but the network holds only " +
              std::to_string(total_floats(convs)) + " (" + std::to_string(available - offset) +
              " left over): is this the weights file of another network or class count?" + hint);
}

}  // namespace

WeightsLayout check_darknet_weights(const std::string& bytes, const std::string& path,
                                    const std::vector<WeightsConv>& convs, bool allow_prefix) {
  WeightsLayout r;
  r.header_bytes = read_header(bytes, path, r.header);
  const std::size_t body = bytes.size() - r.header_bytes;
  if (body % 4 != 0)
    throw Error(path + ": the body is " + std::to_string(body) + " bytes, not a whole number of floats");
  plan(convs, path, static_cast<int64_t>(body / 4), allow_prefix, r);
  // Diverged or damaged weights would only show as an mAP of 0: refused, naming the first bad float.
  const char* data = bytes.data() + r.header_bytes;
  for (int64_t k = 0; k < r.floats_read; ++k) {
    float v = 0;
    std::memcpy(&v, data + 4 * k, 4);
    if (!std::isfinite(v))
      throw Error(path + ": float " + std::to_string(k) + " of the body is " + std::to_string(v) +
                  " (the weights are damaged or come from a diverged run)");
  }
  return r;
}

}  // namespace yolo2::io
