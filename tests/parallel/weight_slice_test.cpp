// Row slices are views into the source; column slices are contiguous copies of exactly those
// columns; slices outside the tensor are refused naming it.
#include <gtest/gtest.h>

#include <numeric>

#include "common/error.h"
#include "parallel/weight_slice.h"

namespace tessera::parallel {
namespace {

TEST(WeightSlice, RowSliceIsAViewAndColumnSliceACopy) {
  std::vector<uint16_t> w(6 * 8);
  std::iota(w.begin(), w.end(), 0);
  auto rows = slice_weight(w.data(), 6, 8, 2, {0, 2, 3}, "q_proj");
  EXPECT_EQ(rows.data, w.data() + 16);
  EXPECT_EQ(rows.rows, 3);
  EXPECT_TRUE(rows.owned.empty());
  auto cols = slice_weight(w.data(), 6, 8, 2, {1, 4, 4}, "o_proj");
  ASSERT_EQ(cols.rows, 6);
  ASSERT_EQ(cols.cols, 4);
  const auto* c = static_cast<const uint16_t*>(cols.data);
  for (int r = 0; r < 6; ++r)
    for (int k = 0; k < 4; ++k) EXPECT_EQ(c[r * 4 + k], r * 8 + 4 + k);
  SlicedWeight moved = std::move(cols);
  EXPECT_EQ(static_cast<const uint16_t*>(moved.data)[5], 13);
  auto whole = slice_weight(w.data(), 6, 8, 2, {-1, 0, 0}, "norm");
  EXPECT_EQ(whole.data, w.data());
  auto all_columns = slice_weight(w.data(), 6, 8, 2, {1, 0, 8}, "o_proj at --tp 1");
  EXPECT_EQ(all_columns.data, w.data());
  EXPECT_EQ(all_columns.rows, 6);
  EXPECT_EQ(all_columns.cols, 8);
  EXPECT_TRUE(all_columns.owned.empty()) << "a slice of every column is the tensor itself, not a copy";
}

TEST(WeightSlice, OutOfRangeSlicesAreRefused) {
  std::vector<float> w(4 * 4);
  try {
    slice_weight(w.data(), 4, 4, 4, {0, 3, 2}, "model.layers.0.mlp.gate_proj.weight");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gate_proj"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("[3, 5)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(slice_weight(w.data(), 4, 4, 4, {1, -1, 2}, "x"), Error);
  EXPECT_THROW(slice_weight(w.data(), 4, 4, 4, {1, 1, INT64_MAX}, "x"), Error);
  EXPECT_THROW(slice_weight(w.data(), INT64_MAX, 4, 4, {0, 0, 1}, "x"), Error);
}

}  // namespace
}  // namespace tessera::parallel
