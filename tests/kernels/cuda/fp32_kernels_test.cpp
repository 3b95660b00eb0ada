// The fp32-only kernels of the exact mode (--dtype float32): the random fill and the fp32 cuBLASLt
// projection (the fp32 instantiations of the shared kernels are tested beside their bf16 ones in
// attention_kernels_test.cpp and elementwise_kernels_test.cpp), each against a
// double-precision CPU reference with fresh random inputs and poisoned outputs. Tolerances are fp32's
// (1e-5 and below), so any bf16 or TF32 rounding on the way fails them. Runs on a GPU only.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "kernels/cuda/embedding.cuh"
#include "kernels/cuda/fill_random.cuh"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/rmsnorm.cuh"
#include "kernels/cuda/silu_mul.cuh"
#include "tests/kernels/cuda/device_buffer.h"

namespace tessera::cuda::test {
namespace {

std::vector<float> random_f32(size_t n, std::mt19937& rng, float scale) {
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> out(n);
  for (auto& v : out) v = d(rng);
  return out;
}

TEST(CudaF32FillRandom, FillsBoundedNonZeroValuesThatRoundToTheBf16Fill) {
  const int64_t n = 1 << 20;
  DeviceBuffer<float> x(n);
  x.poison();
  fill_random_f32(x.get(), n, 1234, 0.5f, 0.25f, nullptr);
  const auto got = x.download();
  double sum = 0;
  int64_t zeros = 0, distinct_from_bf16 = 0;
  for (float v : got) {
    ASSERT_TRUE(v >= 0.25f && v <= 0.75f) << v;
    sum += v;
    zeros += v == 0.0f;
    distinct_from_bf16 += from_bf16(to_bf16(v)) != v;
  }
  EXPECT_EQ(zeros, 0);
  EXPECT_NEAR(sum / n, 0.5, 0.01);
  EXPECT_GT(distinct_from_bf16, n / 2);  // really fp32 values, not bf16 ones widened
  DeviceBuffer<__nv_bfloat16> y(n);
  fill_random_bf16(y.get(), n, 1234, 0.5f, 0.25f, nullptr);
  const auto b = to_float(y.download());
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(b[i], from_bf16(to_bf16(got[i]))) << "element " << i;
}

struct GemmCase {
  int32_t m, n, k;
};

class CudaF32Gemm : public ::testing::TestWithParam<GemmCase> {};

// TF32 would round x and w to 10-bit mantissas (errors ~1e-3): the 1e-5 bound rules it out.
TEST_P(CudaF32Gemm, MatchesFp64ReferenceWithoutTf32Rounding) {
  const auto [m, n, k] = GetParam();
  std::mt19937 rng(std::random_device{}());
  const auto x_f = random_f32(static_cast<size_t>(m) * k, rng, 1.0f);
  const auto w_f = random_f32(static_cast<size_t>(n) * k, rng, 1.0f);
  DeviceBuffer<float> x(x_f), w(w_f);
  DeviceBuffer<float> y(static_cast<size_t>(m) * n);
  DeviceBuffer<char> ws(32 << 20);
  y.poison();
  Gemm gemm(ws.get(), 32 << 20);
  gemm.run_f32(x.get(), w.get(), y.get(), m, n, k, nullptr);
  const auto want = linear_reference(x_f, w_f, m, n, k);
  const auto first = y.download();
  EXPECT_LT(rel_error(first, want), 1e-5);
  y.poison();
  gemm.run_f32(x.get(), w.get(), y.get(), m, n, k, nullptr);  // the cached plan: the same bits
  EXPECT_EQ(y.download(), first);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaF32Gemm,
                         ::testing::Values(GemmCase{1, 512, 256}, GemmCase{7, 1000, 264}, GemmCase{64, 384, 1024},
                                           GemmCase{300, 200, 136}));

}  // namespace
}  // namespace tessera::cuda::test
