// cuBLASLt projections (y = x · wᵀ) against a CPU reference, bf16 and fp32 outputs, odd shapes;
// the cached plan gives the same result on a second call. Runs on a GPU only.
#include <gtest/gtest.h>

#include <random>

#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemv.cuh"
#include "tests/kernels/cuda/device_buffer.h"

namespace tessera::cuda::test {
namespace {

struct GemmCase {
  int32_t m, n, k;
};

class CudaGemm : public ::testing::TestWithParam<GemmCase> {};

TEST_P(CudaGemm, MatchesReference) {
  const auto [m, n, k] = GetParam();
  std::mt19937 rng(std::random_device{}());
  std::vector<float> x_f, w_f;
  DeviceBuffer<__nv_bfloat16> x(random_bf16(static_cast<size_t>(m) * k, rng, 1.0f, &x_f));
  DeviceBuffer<__nv_bfloat16> w(random_bf16(static_cast<size_t>(n) * k, rng, 1.0f, &w_f));
  DeviceBuffer<__nv_bfloat16> y(static_cast<size_t>(m) * n);
  DeviceBuffer<float> y32(static_cast<size_t>(m) * n);
  DeviceBuffer<char> ws(32 << 20);
  y.poison();
  y32.poison();
  Gemm gemm(ws.get(), 32 << 20);
  gemm.run(x.get(), w.get(), y.get(), m, n, k, false, nullptr);
  gemm.run(x.get(), w.get(), y32.get(), m, n, k, true, nullptr);
  std::vector<double> want(static_cast<size_t>(m) * n);
  for (int32_t i = 0; i < m; ++i)
    for (int32_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int32_t l = 0; l < k; ++l) acc += static_cast<double>(x_f[i * k + l]) * w_f[j * k + l];
      want[static_cast<size_t>(i) * n + j] = acc;
    }
  EXPECT_LT(rel_error(to_float(y.download()), want), 5e-3);
  const auto first = y32.download();
  EXPECT_LT(rel_error(first, want), 1e-5);
  y32.poison();
  gemm.run(x.get(), w.get(), y32.get(), m, n, k, true, nullptr);
  EXPECT_EQ(y32.download(), first);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaGemm,
                         ::testing::Values(GemmCase{1, 512, 256}, GemmCase{7, 1000, 264}, GemmCase{64, 384, 1024},
                                           GemmCase{300, 200, 136}));

}  // namespace
}  // namespace tessera::cuda::test

namespace tessera::cuda::test {
namespace {

TEST(CudaGemv, EveryVariantMatchesReference) {
  std::mt19937 rng(std::random_device{}());
  for (int32_t m : {1, 2, 3, 5, 8}) {
    const int32_t n = 203, k = 1304;  // k not a multiple of the unrolled stride: the tail loop runs
    std::vector<float> x_f, w_f;
    DeviceBuffer<__nv_bfloat16> x(random_bf16(static_cast<size_t>(m) * k, rng, 1.0f, &x_f));
    DeviceBuffer<__nv_bfloat16> w(random_bf16(static_cast<size_t>(n) * k, rng, 1.0f, &w_f));
    std::vector<double> want(static_cast<size_t>(m) * n);
    for (int32_t i = 0; i < m; ++i)
      for (int32_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int32_t l = 0; l < k; ++l) acc += static_cast<double>(x_f[i * k + l]) * w_f[j * k + l];
        want[static_cast<size_t>(i) * n + j] = acc;
      }
    for (int v = 0; v < kGemvVariants; ++v) {
      DeviceBuffer<float> y(static_cast<size_t>(m) * n);
      y.poison();
      gemv(x.get(), w.get(), y.get(), m, n, k, true, v, nullptr);
      EXPECT_LT(rel_error(y.download(), want), 1e-5) << "m " << m << " variant " << v;
      DeviceBuffer<__nv_bfloat16> yb(static_cast<size_t>(m) * n);
      yb.poison();
      gemv(x.get(), w.get(), yb.get(), m, n, k, false, v, nullptr);
      EXPECT_LT(rel_error(to_float(yb.download()), want), 5e-3) << "m " << m << " variant " << v;
    }
  }
}

}  // namespace
}  // namespace tessera::cuda::test
