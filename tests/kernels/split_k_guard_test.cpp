// split_k_safe (kernels/cuda/split_k_guard.h): cuBLASLt algorithms that split k are refused where k
// could leave a tail past the kernel's whole k blocks. Host arithmetic only (no GPU needed; the CUDA
// kernel tests check every candidate Gemm times against a CPU reference, k 1544 among the shapes).
#include <gtest/gtest.h>

#include "kernels/cuda/split_k_guard.h"

namespace tessera::cuda {
namespace {

TEST(SplitKGuard, AnAlgorithmThatDoesNotSplitAlwaysRuns) {
  for (int32_t k : {8, 136, 1544, 4096, 14336}) {
    EXPECT_TRUE(split_k_safe(k, 1)) << k;
    EXPECT_TRUE(split_k_safe(k, 0)) << k << " (an algorithm that leaves the attribute unset)";
  }
}

TEST(SplitKGuard, SplitsRefusedWhereKLeavesATail) {
  // The shape the H200 kernel tests caught (k 1544 = 24 x 64 + 8 at 12 splits) and the upstream
  // reproducer's (k 8648, 11528, 57608 = q x 64 + 8 at 9 or 45 splits).
  EXPECT_FALSE(split_k_safe(1544, 12));
  for (int32_t k : {8648, 11528, 57608}) {
    EXPECT_FALSE(split_k_safe(k, 9)) << k;
    EXPECT_FALSE(split_k_safe(k, 45)) << k;
  }
  EXPECT_FALSE(split_k_safe(1600, 2)) << "a multiple of 64 but not of 128: a 128-deep k step would leave 64";
}

TEST(SplitKGuard, ModelDimensionsKeepEverySplitCount) {
  // Llama-3 8B / 70B, Qwen3-32B, Qwen2 0.5B / 7B hidden and intermediate sizes.
  for (int32_t k : {896, 2048, 3584, 4096, 4864, 5120, 8192, 14336, 18944, 25600, 28672})
    for (int64_t s : {2, 3, 4, 6, 8, 12, 16}) EXPECT_TRUE(split_k_safe(k, s)) << k << " at " << s << " splits";
}

}  // namespace
}  // namespace tessera::cuda
