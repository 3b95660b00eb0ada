// Embedding, RMSNorm+residual, SiLU-and-mul and the random fill against CPU references, with fresh
// random inputs and poisoned outputs. Runs on a GPU only (device run / ctest when a GPU is present).
#include <gtest/gtest.h>

#include <random>

#include "kernels/cuda/embedding.cuh"
#include "kernels/cuda/fill_random.cuh"
#include "kernels/cuda/rmsnorm.cuh"
#include "kernels/cuda/silu_mul.cuh"
#include "tests/kernels/cuda/device_buffer.h"

namespace tessera::cuda::test {
namespace {

TEST(CudaEmbedding, CopiesRowsAndZeroesOutOfRangeIds) {
  std::mt19937 rng(std::random_device{}());
  const int32_t vocab = 1000, hidden = 264;
  std::vector<float> table_f;
  DeviceBuffer<__nv_bfloat16> table(random_bf16(static_cast<size_t>(vocab) * hidden, rng, 1.0f, &table_f));
  std::vector<int32_t> ids = {5, 999, 0, 1000, -3, 42};
  DeviceBuffer<int32_t> d_ids(ids);
  DeviceBuffer<__nv_bfloat16> out(ids.size() * hidden);
  out.poison();
  embedding(d_ids.get(), static_cast<int32_t>(ids.size()), table.get(), vocab, hidden, out.get(), nullptr);
  const auto got = to_float(out.download());
  for (size_t t = 0; t < ids.size(); ++t)
    for (int32_t i = 0; i < hidden; ++i) {
      const bool valid = ids[t] >= 0 && ids[t] < vocab;
      const float want = valid ? table_f[static_cast<size_t>(ids[t]) * hidden + i] : 0.0f;
      ASSERT_EQ(got[t * hidden + i], want) << "token " << t << " elem " << i;
    }
}

void check_rmsnorm(bool first) {
  std::mt19937 rng(std::random_device{}());
  const int32_t rows = 7, n = 4104;
  const float eps = 1e-5f;
  std::vector<float> x_f, w_f;
  DeviceBuffer<__nv_bfloat16> x(random_bf16(static_cast<size_t>(rows) * n, rng, 2.0f, &x_f));
  DeviceBuffer<__nv_bfloat16> w(random_bf16(n, rng, 1.5f, &w_f));
  std::vector<float> res0(static_cast<size_t>(rows) * n);
  std::uniform_real_distribution<float> d(-3, 3);
  for (auto& v : res0) v = d(rng);
  DeviceBuffer<float> res(res0);
  DeviceBuffer<__nv_bfloat16> out(static_cast<size_t>(rows) * n);
  out.poison();
  add_rmsnorm(x.get(), res.get(), w.get(), out.get(), rows, n, eps, first, nullptr);
  const auto got = to_float(out.download());
  const auto got_res = res.download();
  std::vector<double> want(got.size()), want_res(got.size());
  for (int32_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int32_t i = 0; i < n; ++i) {
      const size_t k = static_cast<size_t>(r) * n + i;
      want_res[k] = first ? x_f[k] : static_cast<double>(res0[k]) + x_f[k];
      ss += want_res[k] * want_res[k];
    }
    const double inv = 1.0 / std::sqrt(ss / n + eps);
    for (int32_t i = 0; i < n; ++i) {
      const size_t k = static_cast<size_t>(r) * n + i;
      want[k] = want_res[k] * inv * w_f[i];
    }
  }
  EXPECT_LT(rel_error(got_res, want_res), 1e-6);
  EXPECT_LT(rel_error(got, want), 5e-3);
}

TEST(CudaRmsNorm, FirstLayerStartsTheResidualStream) { check_rmsnorm(true); }
TEST(CudaRmsNorm, AddsIntoTheResidualStreamThenNormalises) { check_rmsnorm(false); }

TEST(CudaSiluMul, MatchesReference) {
  std::mt19937 rng(std::random_device{}());
  const int32_t rows = 5, inter = 1416;
  std::vector<float> gu_f;
  DeviceBuffer<__nv_bfloat16> gu(random_bf16(static_cast<size_t>(rows) * 2 * inter, rng, 4.0f, &gu_f));
  DeviceBuffer<__nv_bfloat16> out(static_cast<size_t>(rows) * inter);
  out.poison();
  silu_mul(gu.get(), rows, inter, out.get(), nullptr);
  const auto got = to_float(out.download());
  std::vector<double> want(got.size());
  for (int32_t r = 0; r < rows; ++r)
    for (int32_t i = 0; i < inter; ++i) {
      const double g = gu_f[static_cast<size_t>(r) * 2 * inter + i];
      const double u = gu_f[static_cast<size_t>(r) * 2 * inter + inter + i];
      want[static_cast<size_t>(r) * inter + i] = g / (1 + std::exp(-g)) * u;
    }
  EXPECT_LT(rel_error(got, want), 5e-3);
}

TEST(CudaFillRandom, FillsEveryElementWithBoundedNonZeroValues) {
  const int64_t n = 1 << 20;
  DeviceBuffer<__nv_bfloat16> x(n);
  x.poison();
  fill_random_bf16(x.get(), n, 1234, 0.5f, 0.25f, nullptr);
  const auto got = to_float(x.download());
  double sum = 0;
  int64_t zeros = 0;
  for (float v : got) {
    ASSERT_TRUE(v >= 0.25f - 1e-3f && v <= 0.75f + 1e-3f) << v;
    sum += v;
    zeros += v == 0.0f;
  }
  EXPECT_EQ(zeros, 0);
  EXPECT_NEAR(sum / n, 0.5, 0.01);
  DeviceBuffer<__nv_bfloat16> y(n);
  fill_random_bf16(y.get(), n, 1234, 0.5f, 0.25f, nullptr);
  EXPECT_EQ(to_float(y.download()), got);  // deterministic in the seed
}

}  // namespace
}  // namespace tessera::cuda::test
