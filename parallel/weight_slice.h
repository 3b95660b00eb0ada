// Taking one rank's slice of a 2-D row-major weight (the HF [out, in] layout) as ShardPlan names
// it. A row slice (column-parallel weights) is a zero-copy view into the memory-mapped file; a
// column slice (row-parallel weights: o_proj, down_proj) is gathered into owned, contiguous memory
// (a slice of every column, at --tp 1, is the tensor itself),
// reading only those columns. Offsets and sizes are checked for overflow before any access.
// It must never read outside the source tensor.
#pragma once

#include <cstdint>
#include <vector>

#include "parallel/shard_spec.h"

namespace tessera::parallel {

struct SlicedWeight {
  const void* data = nullptr;       // into the source, or into `owned`
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<uint8_t> owned;       // non-empty for column slices of fewer than all columns

  SlicedWeight() = default;
  SlicedWeight(SlicedWeight&& o) noexcept { *this = std::move(o); }
  SlicedWeight& operator=(SlicedWeight&& o) noexcept {
    const bool own = !o.owned.empty();
    owned = std::move(o.owned);
    data = own ? owned.data() : o.data;
    rows = o.rows;
    cols = o.cols;
    return *this;
  }
};

// source: rows x cols elements of elem_bytes each (a 1-D tensor is rows = n, cols = 1).
// Throws kInvalidArgument naming the tensor when the slice does not fit its shape.
SlicedWeight slice_weight(const void* source, int64_t rows, int64_t cols, size_t elem_bytes, const WeightSlice& slice,
                          const std::string& tensor_name);

}  // namespace tessera::parallel
