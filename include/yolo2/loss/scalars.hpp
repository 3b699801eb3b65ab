// A loss's figures for one batch as named values: its terms (what it sums into the loss to
// back-propagate) and diagnostics (darknet's printed averages), each with how it combines over the
// micro-batches of a step and over the ranks of a job. The trainer reads them by these names
// (metrics.csv's columns, the progress line), never by position.
#pragma once

#include <ATen/core/Tensor.h>

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace yolo2::loss {

enum class ScalarKind {
  Term,       // a loss term per image: averaged, and summed into the step's loss
  Mean,       // a diagnostic averaged like a term, not part of the loss
  CountMean,  // a diagnostic averaged over the items it was measured on (ground truths, images)
};

struct ScalarSpec {
  std::string name;  // metrics.csv's column
  ScalarKind kind = ScalarKind::Term;
  bool drawn = true;  // a term drawn in loss.png (a term that is zero most of a run may say no)
};
using ScalarSpecs = std::vector<ScalarSpec>;

// One batch's values: `values` [specs.size()] float64, no gradient, on the loss's device (read on the
// host only when someone needs them), in the order of `*specs`.
struct NamedScalars {
  const ScalarSpecs* specs = nullptr;
  at::Tensor values;
};

// The values given by name, put in `specs`' order; throws (naming it) when a spec's value is missing
// or a name is not among the specs. Each value a 0-d or 1-element tensor on one device.
NamedScalars named_scalars(const ScalarSpecs& specs, std::initializer_list<std::pair<const char*, at::Tensor>> values);

// Position of `name` in `specs` (-1: none).
int scalar_index(const ScalarSpecs& specs, const std::string& name);

}  // namespace yolo2::loss
