// Row views and column gathers of 2-D weights (see weight_slice.h).
#include "parallel/weight_slice.h"

#include <cstring>
#include <limits>

#include "common/error.h"

namespace tessera::parallel {

SlicedWeight slice_weight(const void* source, int64_t rows, int64_t cols, size_t elem_bytes, const WeightSlice& s,
                          const std::string& name) {
  TS_CHECK(rows >= 0 && cols >= 0 && elem_bytes > 0 && elem_bytes <= 16, kInvalidArgument,
           "tensor '{}' has shape [{}, {}] with {}-byte elements", name, rows, cols, elem_bytes);
  TS_CHECK(cols == 0 || rows <= std::numeric_limits<int64_t>::max() / cols / static_cast<int64_t>(elem_bytes),
           kInvalidArgument, "tensor '{}' of shape [{}, {}] overflows", name, rows, cols);
  SlicedWeight out;
  if (s.dim == -1) {
    out.data = source;
    out.rows = rows;
    out.cols = cols;
    return out;
  }
  const int64_t extent = s.dim == 0 ? rows : cols;
  TS_CHECK(s.dim == 0 || s.dim == 1, kInvalidArgument, "slice of tensor '{}' along dimension {}", name, s.dim);
  // The slice's end for the message, saturated: begin + length may overflow on hostile values.
  const auto slice_end = [&s] {
    const __int128 end = static_cast<__int128>(s.begin) + s.length;
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max(), kMin = std::numeric_limits<int64_t>::min();
    return end > kMax ? kMax : end < kMin ? kMin : static_cast<int64_t>(end);
  };
  TS_CHECK(s.begin >= 0 && s.length >= 0 && s.begin <= extent && s.length <= extent - s.begin, kInvalidArgument,
           "tensor '{}' has {} along dimension {} but this rank's slice is [{}, {})", name, extent, s.dim, s.begin,
           slice_end());
  const auto* src = static_cast<const uint8_t*>(source);
  const size_t row_bytes = static_cast<size_t>(cols) * elem_bytes;
  if (s.dim == 1 && s.begin == 0 && s.length == cols) {  // every column (--tp 1): the tensor itself
    out.data = source;
    out.rows = rows;
    out.cols = cols;
    return out;
  }
  if (s.dim == 0) {
    out.data = src + static_cast<size_t>(s.begin) * row_bytes;
    out.rows = s.length;
    out.cols = cols;
    return out;
  }
  out.rows = rows;
  out.cols = s.length;
  const size_t slice_row_bytes = static_cast<size_t>(s.length) * elem_bytes;
  out.owned.resize(static_cast<size_t>(rows) * slice_row_bytes);
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(out.owned.data() + static_cast<size_t>(r) * slice_row_bytes,
                src + static_cast<size_t>(r) * row_bytes + static_cast<size_t>(s.begin) * elem_bytes, slice_row_bytes);
  out.data = out.owned.data();
  return out;
}

}  // namespace tessera::parallel
