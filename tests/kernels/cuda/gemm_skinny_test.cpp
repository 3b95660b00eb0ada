// The skinny tensor-core GEMM (m <= 64) against a double CPU reference: every variant (mma.sync and
// wgmma, tile height x cluster split of k), bf16 and fp32 outputs, m on and off the 8- and 16-row
// edges, n off every tile height, k off the 64-k stage and below one stage. Partial sums meet in a
// fixed order, so a second call gives the same bits. Also: refused shapes, a graph in which the kernel
// before it (PDL, started early) writes x, and the Gemm tuner with the kernel as a candidate. Runs on
// a GPU only.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <tuple>

#include "common/error.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemm_skinny.cuh"
#include "kernels/cuda/gemv.cuh"
#include "tests/kernels/cuda/device_buffer.h"

namespace tessera::cuda::test {
namespace {

TEST(CudaGemmSkinny, EveryVariantMatchesReferenceDeterministically) {
  std::mt19937 rng(std::random_device{}());
  for (const auto& [m, n, k] : {std::tuple{1, 333, 1304}, std::tuple{9, 200, 4104}, std::tuple{16, 333, 264},
                                std::tuple{17, 70, 40}, std::tuple{33, 129, 2056}, std::tuple{64, 333, 1304},
                                std::tuple{64, 1000, 4096}}) {
    std::vector<float> x_f, w_f;
    DeviceBuffer<__nv_bfloat16> x(random_bf16(static_cast<size_t>(m) * k, rng, 1.0f, &x_f));
    DeviceBuffer<__nv_bfloat16> w(random_bf16(static_cast<size_t>(n) * k, rng, 1.0f, &w_f));
    const auto want = linear_reference(x_f, w_f, m, n, k);
    DeviceBuffer<float> y(static_cast<size_t>(m) * n);
    DeviceBuffer<__nv_bfloat16> yb(static_cast<size_t>(m) * n);
    for (int v = 0; v < kSkinnyVariants; ++v) {
      const std::string what = "m " + std::to_string(m) + " n " + std::to_string(n) + " k " + std::to_string(k) +
                               " variant " + std::to_string(v) + " (" +
                               (skinny_variant_uses_wgmma(v) ? "wgmma" : "mma.sync") + ", rows " +
                               std::to_string(skinny_variant_rows(v)) + ", splits " +
                               std::to_string(skinny_variant_splits(v)) + ")";
      ASSERT_TRUE(gemm_skinny_fits(m, n, k, v)) << what << ": a cluster of this variant does not fit";
      const bool pdl = v % 2 == 0;  // both launch kinds compute the same thing
      y.poison();
      gemm_skinny(x.get(), w.get(), y.get(), m, n, k, true, v, nullptr, pdl);
      const auto first = y.download();
      EXPECT_LT(rel_error(first, want), 1e-5) << what;
      y.poison();
      gemm_skinny(x.get(), w.get(), y.get(), m, n, k, true, v, nullptr, !pdl);
      EXPECT_EQ(y.download(), first) << what << ": not deterministic";
      yb.poison();
      gemm_skinny(x.get(), w.get(), yb.get(), m, n, k, false, v, nullptr, pdl);
      EXPECT_LT(rel_error(to_float(yb.download()), want), 5e-3) << what;
    }
  }
}

TEST(CudaGemmSkinny, RefusesShapesVariantsAndAlignmentItCannotTake) {
  DeviceBuffer<__nv_bfloat16> x(65 * 64 + 8), w(64 * 64 + 8), y(65 * 64);
  EXPECT_THROW(gemm_skinny(x.get(), w.get(), y.get(), 65, 64, 64, false, 0, nullptr), Error);
  EXPECT_THROW(gemm_skinny(x.get(), w.get(), y.get(), 1, 64, 60, false, 0, nullptr), Error);
  EXPECT_THROW(gemm_skinny(x.get(), w.get(), y.get(), 1, 64, 64, false, kSkinnyVariants, nullptr), Error);
  EXPECT_THROW(gemm_skinny(x.get(), w.get(), y.get(), 1, 64, 64, false, -1, nullptr), Error);
  EXPECT_THROW(gemm_skinny(x.get() + 1, w.get(), y.get(), 1, 64, 64, false, 0, nullptr), Error);
  EXPECT_THROW(gemm_skinny(x.get(), w.get() + 4, y.get(), 1, 64, 64, false, 0, nullptr), Error);
  EXPECT_FALSE(gemm_skinny_fits(65, 64, 64, 0));
  EXPECT_FALSE(gemm_skinny_fits(1, 64, 60, 0));
  EXPECT_FALSE(gemm_skinny_fits(1, 64, 64, kSkinnyVariants));
  EXPECT_TRUE(gemm_skinny_fits(64, 64, 64, 0));
  try {
    gemm_skinny(x.get(), w.get(), y.get(), 65, 64, 64, false, 0, nullptr);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("m=65"), std::string::npos) << e.what();
  }
  y.poison();
  gemm_skinny(x.get(), w.get(), y.get(), 0, 64, 64, false, 0, nullptr);  // no rows: nothing written
  const auto untouched = y.download();
  for (const auto& v : untouched) ASSERT_TRUE(std::isnan(from_bf16(v))) << "m = 0 wrote an output";
}

// In a graph: poison x, a PDL gemv that triggers its dependants at once writes x ([1, m*k] is x[m, k]),
// then the skinny kernel (PDL) reads it. Reading x before the gemv finished would give NaN or stale
// values; the result must match the reference built from the x the gemv wrote, on every replay.
TEST(CudaGemmSkinny, WaitsForTheKernelThatWritesXUnderPdlInAGraph) {
  std::mt19937 rng(std::random_device{}());
  const int32_t m = 64, n = 777, k = 1032, k0 = 64;
  DeviceBuffer<__nv_bfloat16> x0(random_bf16(k0, rng, 1.0f, nullptr));
  DeviceBuffer<__nv_bfloat16> w0(random_bf16(static_cast<size_t>(m) * k * k0, rng, 0.2f, nullptr));
  std::vector<float> w_f;
  DeviceBuffer<__nv_bfloat16> w(random_bf16(static_cast<size_t>(n) * k, rng, 1.0f, &w_f));
  DeviceBuffer<__nv_bfloat16> x(static_cast<size_t>(m) * k);
  DeviceBuffer<float> y(static_cast<size_t>(m) * n);
  cudaStream_t s;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  for (int v : {9, 13, 27, 31}) {  // mma.sync and wgmma: 128 rows x 4 splits, 64 rows x 2 splits
    ASSERT_TRUE(gemm_skinny_fits(m, n, k, v)) << "variant " << v;
    cudaGraph_t graph;
    CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    CUDA_CHECK(cudaMemsetAsync(x.get(), 0xFF, x.size() * 2, s));
    CUDA_CHECK(cudaMemsetAsync(y.get(), 0xFF, y.size() * 4, s));
    gemv(x0.get(), w0.get(), x.get(), 1, m * k, k0, false, kGemvFirstSplitK, s);
    gemm_skinny(x.get(), w.get(), y.get(), m, n, k, true, v, s);
    CUDA_CHECK(cudaStreamEndCapture(s, &graph));
    cudaGraphExec_t exec;
    CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    CUDA_CHECK(cudaGraphLaunch(exec, s));
    CUDA_CHECK(cudaStreamSynchronize(s));
    const auto x_f = to_float(x.download());
    const auto first = y.download();
    EXPECT_LT(rel_error(first, linear_reference(x_f, w_f, m, n, k)), 1e-5) << "variant " << v;
    for (int rep = 0; rep < 3; ++rep) {
      CUDA_CHECK(cudaGraphLaunch(exec, s));
      CUDA_CHECK(cudaStreamSynchronize(s));
      EXPECT_EQ(y.download(), first) << "variant " << v << " replay " << rep;
    }
    CUDA_CHECK(cudaGraphExecDestroy(exec));
    CUDA_CHECK(cudaGraphDestroy(graph));
  }
  CUDA_CHECK(cudaStreamDestroy(s));
}

// Through Gemm with the flush scratch: m = 16 and 64 pick among cuBLASLt and the skinny kernel; either
// way the result matches and repeats.
TEST(CudaGemmSkinny, GemmWithScratchMatchesReference) {
  std::mt19937 rng(std::random_device{}());
  const int32_t n = 1000, k = 2048;
  DeviceBuffer<char> ws(32 << 20), sws(64 << 20);
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
