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

TEST(SplitKGuard, NoSplitWhereKLeavesATailPastWhole64Blocks) {
  // The shape the H200 kernel tests caught (k 1544 = 24 x 64 + 8 at 12 splits) and the upstream
  // reproducer's (k 8648, 11528, 57608 = q x 64 + 8 at 9 or 45 splits); every split count refused.
  for (int64_t s : {2, 3, 4, 6, 8, 12, 16}) EXPECT_FALSE(split_k_safe(1544, s)) << s;
  for (int32_t k : {8648, 11528, 57608}) {
    EXPECT_FALSE(split_k_safe(k, 9)) << k;
    EXPECT_FALSE(split_k_safe(k, 45)) << k;
  }
  EXPECT_FALSE(split_k_safe(264, 2)) << "264 = 4 x 64 + 8";
}

TEST(SplitKGuard, MoreThan64SplitsRefusedEvenOnWholeBlocks) {
  // k 576 = 4 x 128 + 64: a 128-deep k step leaves a tail of 64, lost only with more than 64 splits.
  EXPECT_TRUE(split_k_safe(576, 64));
  EXPECT_FALSE(split_k_safe(576, 65));
  EXPECT_FALSE(split_k_safe(4096, 128));
}

TEST(SplitKGuard, ModelDimensionsKeepEverySplitCountGemmTries) {
  // Llama-3 8B / 70B, Qwen3-32B, Qwen2 0.5B / 7B, SmolLM (576, 960) hidden and intermediate sizes.
  for (int32_t k : {576, 896, 960, 1536, 2048, 3584, 4096, 4864, 5120, 8192, 14336, 18944, 25600, 28672})
    for (int64_t s : {2, 3, 4, 6, 8, 12, 16}) EXPECT_TRUE(split_k_safe(k, s)) << k << " at " << s << " splits";
}

}  // namespace
}  // namespace tessera::cuda
