// Embedding, RMSNorm+residual, SiLU-and-mul and the random fill against CPU references, with fresh
// random inputs and poisoned outputs, in bf16 and in fp32 (the exact mode: fp32 tolerances, so any
// bf16 rounding on the way fails). Runs on a GPU only (device run / ctest when a GPU is present).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <type_traits>

#include "common/error.h"

#include "kernels/cuda/embedding.cuh"
#include "kernels/cuda/fill_random.cuh"
#include "kernels/cuda/rmsnorm.cuh"
#include "kernels/cuda/silu_mul.cuh"
#include "tests/kernels/cuda/device_buffer.h"

namespace tessera::cuda::test {
namespace {

template <typename T>
void check_embedding() {
  std::mt19937 rng(std::random_device{}());
  const int32_t vocab = 1000, hidden = 264;
  std::vector<float> table_f;
  DeviceBuffer<T> table(random_values<T>(static_cast<size_t>(vocab) * hidden, rng, 1.0f, &table_f));
  std::vector<int32_t> ids = {5, 999, 0, 1000, -3, 42};
  DeviceBuffer<int32_t> d_ids(ids);
  DeviceBuffer<T> out(ids.size() * hidden);
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

TEST(CudaEmbedding, CopiesRowsAndZeroesOutOfRangeIds) { check_embedding<__nv_bfloat16>(); }
TEST(CudaF32Embedding, CopiesRowsExactlyAndZeroesOutOfRangeIds) { check_embedding<float>(); }

// Relative L2 tolerances per element type: the residual stream is fp32 in both.
template <typename T>
struct Tolerance {
  static constexpr double residual = std::is_same_v<T, float> ? 1e-7 : 1e-6;
  static constexpr double output = std::is_same_v<T, float> ? 2e-6 : 5e-3;
};

template <typename T>
void check_rmsnorm_row(bool first, int32_t n) {
  SCOPED_TRACE("n = " + std::to_string(n));
  std::mt19937 rng(std::random_device{}());
  const int32_t rows = 7;
  const float eps = 1e-5f;
  std::vector<float> x_f, w_f;
  DeviceBuffer<T> x(random_values<T>(static_cast<size_t>(rows) * n, rng, 2.0f, &x_f));
  DeviceBuffer<T> w(random_values<T>(n, rng, 1.5f, &w_f));
  std::vector<float> res0(static_cast<size_t>(rows) * n);
  std::uniform_real_distribution<float> d(-3, 3);
  for (auto& v : res0) v = d(rng);
  DeviceBuffer<float> res(res0);
  DeviceBuffer<T> out(static_cast<size_t>(rows) * n);
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
  EXPECT_LT(rel_error(got_res, want_res), Tolerance<T>::residual);
  EXPECT_LT(rel_error(got, want), Tolerance<T>::output);
}

// Rows of 1, 2 and 4 eight-element pieces per thread (the model shapes' 4,096 and 8,192 among them),
// most with a partly filled last round.
constexpr int32_t kNormRowLengths[] = {1000, 2040, 4096, 4104, 8192, 16376};

template <typename T>
void check_rmsnorm(bool first) {
  for (int32_t n : kNormRowLengths) check_rmsnorm_row<T>(first, n);
}

TEST(CudaRmsNorm, FirstLayerStartsTheResidualStream) { check_rmsnorm<__nv_bfloat16>(true); }
TEST(CudaRmsNorm, AddsIntoTheResidualStreamThenNormalises) { check_rmsnorm<__nv_bfloat16>(false); }
TEST(CudaF32RmsNorm, FirstLayerStartsTheResidualStream) { check_rmsnorm<float>(true); }
TEST(CudaF32RmsNorm, AddsIntoTheResidualStreamThenNormalises) { check_rmsnorm<float>(false); }

// x == nullptr: a GEMM already added into the residual; the norm reads it and leaves it bit for bit.
template <typename T>
void check_rmsnorm_of_summed_residual() {
  std::mt19937 rng(std::random_device{}());
  const int32_t rows = 5;
  const float eps = 1e-6f;
  for (int32_t n : kNormRowLengths) {
    SCOPED_TRACE("n = " + std::to_string(n));
    std::vector<float> w_f;
    DeviceBuffer<T> w(random_values<T>(n, rng, 1.5f, &w_f));
    std::vector<float> res0(static_cast<size_t>(rows) * n);
    std::uniform_real_distribution<float> d(-3, 3);
    for (auto& v : res0) v = d(rng);
    DeviceBuffer<float> res(res0);
    DeviceBuffer<T> out(static_cast<size_t>(rows) * n);
    out.poison();
    add_rmsnorm(static_cast<const T*>(nullptr), res.get(), w.get(), out.get(), rows, n, eps, false, nullptr);
    EXPECT_EQ(res.download(), res0);
    std::vector<double> want(res0.size());
    for (int32_t r = 0; r < rows; ++r) {
      double ss = 0;
      const float* row = res0.data() + static_cast<size_t>(r) * n;
      for (int32_t i = 0; i < n; ++i) ss += static_cast<double>(row[i]) * row[i];
      const double inv = 1.0 / std::sqrt(ss / n + eps);
      for (int32_t i = 0; i < n; ++i) want[static_cast<size_t>(r) * n + i] = row[i] * inv * w_f[i];
    }
    EXPECT_LT(rel_error(to_float(out.download()), want), Tolerance<T>::output);
  }
}

TEST(CudaRmsNorm, NormalisesAResidualAGemmAlreadyAddedInto) { check_rmsnorm_of_summed_residual<__nv_bfloat16>(); }
TEST(CudaF32RmsNorm, NormalisesAResidualAGemmAlreadyAddedInto) { check_rmsnorm_of_summed_residual<float>(); }

TEST(CudaRmsNorm, RefusesANullInputOnTheFirstLayer) {
  DeviceBuffer<__nv_bfloat16> w(64), out(64);
  DeviceBuffer<float> res(64);
  EXPECT_THROW(add_rmsnorm(static_cast<const __nv_bfloat16*>(nullptr), res.get(), w.get(), out.get(), 1, 64, 1e-5f,
                           true, nullptr),
               Error);
}

TEST(CudaRmsNorm, RefusesRowsItCannotHoldByName) {
  DeviceBuffer<__nv_bfloat16> x(16392), w(16392), out(16392);
  DeviceBuffer<float> res(16392);
  EXPECT_THROW(add_rmsnorm(x.get(), res.get(), w.get(), out.get(), 1, 16392, 1e-5f, true, nullptr), Error);
  EXPECT_THROW(add_rmsnorm(x.get(), res.get(), w.get(), out.get(), 1, 4100, 1e-5f, true, nullptr), Error);
}

template <typename T>
void check_silu_mul(int32_t rows, int32_t inter) {
  std::mt19937 rng(std::random_device{}());
  std::vector<float> gu_f;
  DeviceBuffer<T> gu(random_values<T>(static_cast<size_t>(rows) * 2 * inter, rng, 4.0f, &gu_f));
  DeviceBuffer<T> out(static_cast<size_t>(rows) * inter);
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
  EXPECT_LT(rel_error(got, want), Tolerance<T>::output);
}

TEST(CudaSiluMul, MatchesReference) { check_silu_mul<__nv_bfloat16>(5, 1416); }
TEST(CudaF32SiluMul, MatchesReference) { check_silu_mul<float>(5, 1416); }
// Rows wider than one block's 256 vectors, the last block partly past the row's end.
TEST(CudaSiluMul, RowsSpanningSeveralBlocksMatchReference) { check_silu_mul<__nv_bfloat16>(3, 4104); }
TEST(CudaF32SiluMul, RowsSpanningSeveralBlocksMatchReference) { check_silu_mul<float>(3, 4104); }

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
