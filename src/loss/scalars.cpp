#include "yolo2/loss/scalars.hpp"

#include <ATen/ATen.h>

#include "yolo2/error.hpp"

namespace yolo2::loss {

int scalar_index(const ScalarSpecs& specs, const std::string& name) {
  for (std::size_t i = 0; i < specs.size(); ++i)
    if (specs[i].name == name) return static_cast<int>(i);
  return -1;
}

NamedScalars named_scalars(const ScalarSpecs& specs, std::initializer_list<std::pair<const char*, at::Tensor>> values) {
  std::vector<at::Tensor> ordered(specs.size());
  for (const auto& [name, value] : values) {
    const int i = scalar_index(specs, name);
    if (i < 0) throw Error(std::string("internal error: loss value '") + name + "' is not among its named scalars");
    ordered[static_cast<std::size_t>(i)] = value.reshape({1}).to(at::kDouble);
  }
  for (std::size_t i = 0; i < specs.size(); ++i)
    if (!ordered[i].defined()) throw Error("internal error: the loss gave no value for '" + specs[i].name + "'");
  return {&specs, at::cat(ordered)};
}

}  // namespace yolo2::loss
