// The skinny tensor-core GEMM (m <= 64) against a double CPU reference: every k-slice variant, bf16
// and fp32 outputs, m on and off the 8-row tile edges, n off the 128-row tile, k off the 128 step.
// Slices are summed in a fixed order: a second call gives the same bits, and the tile counters come
// back zeroed (calls for other shapes share them). Runs on a GPU only.
#include <gtest/gtest.h>

#include <random>

#include "common/error.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemm_skinny.cuh"
#include "tests/kernels/cuda/device_buffer.h"

namespace tessera::cuda::test {
namespace {

TEST(CudaGemmSkinny, EveryVariantMatchesReferenceDeterministically) {
  std::mt19937 rng(std::random_device{}());
  DeviceBuffer<uint32_t> counters(gemm_skinny_counters(333));
  DeviceBuffer<float> partial(static_cast<size_t>(64) * 333 * 17);  // 17 slices of 256 for k = 4104
  CUDA_CHECK(cudaMemset(counters.get(), 0, counters.size() * 4));
  partial.poison();
  const SkinnyScratch scratch{counters.get(), static_cast<int64_t>(counters.size()), partial.get(),
                              static_cast<int64_t>(partial.size())};
  for (const auto& [m, n, k] : {std::tuple{1, 333, 1304}, std::tuple{9, 200, 4104}, std::tuple{17, 333, 264},
                                std::tuple{40, 129, 2056}, std::tuple{64, 333, 1304}}) {
    std::vector<float> x_f, w_f;
    DeviceBuffer<__nv_bfloat16> x(random_bf16(static_cast<size_t>(m) * k, rng, 1.0f, &x_f));
    DeviceBuffer<__nv_bfloat16> w(random_bf16(static_cast<size_t>(n) * k, rng, 1.0f, &w_f));
    const auto want = linear_reference(x_f, w_f, m, n, k);
    for (int v = 0; v < kSkinnyVariants; ++v) {
      DeviceBuffer<float> y(static_cast<size_t>(m) * n);
      y.poison();
      gemm_skinny(x.get(), w.get(), y.get(), m, n, k, true, v, scratch, nullptr);
      const auto first = y.download();
      EXPECT_LT(rel_error(first, want), 1e-5) << "m " << m << " n " << n << " k " << k << " variant " << v;
      y.poison();
      gemm_skinny(x.get(), w.get(), y.get(), m, n, k, true, v, scratch, nullptr);
      EXPECT_EQ(y.download(), first) << "m " << m << " variant " << v << ": not deterministic";
      DeviceBuffer<__nv_bfloat16> yb(static_cast<size_t>(m) * n);
      yb.poison();
      gemm_skinny(x.get(), w.get(), yb.get(), m, n, k, false, v, scratch, nullptr);
      EXPECT_LT(rel_error(to_float(yb.download()), want), 5e-3) << "m " << m << " variant " << v;
    }
  }
  EXPECT_EQ(counters.download(), std::vector<uint32_t>(counters.size(), 0u)) << "tile counters not reset";
}

TEST(CudaGemmSkinny, RefusesBadShapesAndASmallScratch) {
  DeviceBuffer<__nv_bfloat16> x(65 * 64), w(64 * 64), y(65 * 64);
  DeviceBuffer<uint32_t> counters(1);
  DeviceBuffer<float> partial(64 * 64 * 2);
  const SkinnyScratch ok{counters.get(), 1, partial.get(), 64 * 64 * 2};
  EXPECT_THROW(gemm_skinny(x.get(), w.get(), y.get(), 65, 64, 64, false, 0, ok, nullptr), Error);
  EXPECT_THROW(gemm_skinny(x.get(), w.get(), y.get(), 1, 64, 60, false, 0, ok, nullptr), Error);
  EXPECT_THROW(gemm_skinny(x.get(), w.get(), y.get(), 1, 64, 64, false, kSkinnyVariants, ok, nullptr), Error);
  EXPECT_THROW(gemm_skinny(x.get(), w.get(), y.get(), 1, 129, 64, false, 0, ok, nullptr), Error);  // 2 tiles
  const SkinnyScratch small{counters.get(), 1, partial.get(), 64 * 64};  // k = 512 in 256-slices needs 2 * m * n
  EXPECT_THROW(gemm_skinny(x.get(), w.get(), y.get(), 64, 64, 512, false, 0, small, nullptr), Error);
}

// Through Gemm with the scratch: m = 16 and 64 pick among cuBLASLt and the skinny kernel; either way
// the result matches and repeats.
TEST(CudaGemmSkinny, GemmWithScratchMatchesReference) {
  std::mt19937 rng(std::random_device{}());
  const int32_t n = 1000, k = 2048;
  DeviceBuffer<char> ws(32 << 20), sws(kSkinnyCounterBytes + (16 << 20));
  Gemm gemm(ws.get(), 32 << 20, sws.get(), sws.size());
  for (int32_t m : {16, 64}) {
    std::vector<float> x_f, w_f;
    DeviceBuffer<__nv_bfloat16> x(random_bf16(static_cast<size_t>(m) * k, rng, 1.0f, &x_f));
    DeviceBuffer<__nv_bfloat16> w(random_bf16(static_cast<size_t>(n) * k, rng, 1.0f, &w_f));
    DeviceBuffer<__nv_bfloat16> y(static_cast<size_t>(m) * n);
    y.poison();
    gemm.run(x.get(), w.get(), y.get(), m, n, k, false, nullptr);
    const auto first = to_float(y.download());
    EXPECT_LT(rel_error(first, linear_reference(x_f, w_f, m, n, k)), 5e-3) << "m " << m;
    y.poison();
    gemm.run(x.get(), w.get(), y.get(), m, n, k, false, nullptr);
    EXPECT_EQ(to_float(y.download()), first) << "m " << m;
    std::cout << "m " << m << ": skinny variant " << gemm.chosen_skinny_variant(m, n, k, false) << std::endl;
  }
}

}  // namespace
}  // namespace tessera::cuda::test
