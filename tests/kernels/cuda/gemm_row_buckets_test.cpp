// Gemm's row buckets: with a row capacity, a shape is timed once at m rounded up to a power of two
// and every m of that bucket takes its choice without timing, still computing the right product
// (plain, fp32-output, accumulating and SiLU paths; the gemv range and the cuBLASLt range); without
// a capacity, or with autotuning off, every m stays its own shape. Runs on a GPU only.
#include <gtest/gtest.h>

#include <random>

#include "kernels/cuda/gemm.h"
#include "tests/kernels/cuda/device_buffer.h"

namespace tessera::cuda::test {
namespace {

constexpr int32_t kCap = 512, kN = 640, kK = 512;

// x [kCap, kK] and w [kN, kK] random bf16, and the reference product of all kCap rows.
struct BucketProblem {
  std::mt19937 rng{std::random_device{}()};
  std::vector<float> x_f, w_f;
  DeviceBuffer<__nv_bfloat16> x{random_bf16(static_cast<size_t>(kCap) * kK, rng, 1.0f, &x_f)};
  DeviceBuffer<__nv_bfloat16> w{random_bf16(static_cast<size_t>(kN) * kK, rng, 1.0f, &w_f)};
  std::vector<double> want = linear_reference(x_f, w_f, kCap, kN, kK);
  std::vector<double> rows(int32_t m) const { return {want.begin(), want.begin() + static_cast<size_t>(m) * kN}; }
};

// The first m rows of a [kCap, kN] output.
std::vector<float> first_rows(const std::vector<float>& y, int32_t m) {
  return {y.begin(), y.begin() + static_cast<size_t>(m) * kN};
}

TEST(CudaGemmRowBuckets, TuningRowsRoundUpToAPowerOfTwoWithinTheCapacity) {
  DeviceBuffer<char> ws(1 << 20);
  Gemm g(ws.get(), 1 << 20);
  EXPECT_EQ(g.tuning_rows(300, 512), 512);
  EXPECT_EQ(g.tuning_rows(300, 400), 400);
  EXPECT_EQ(g.tuning_rows(512, 8192), 512);
  EXPECT_EQ(g.tuning_rows(5, 8192), 8);
  EXPECT_EQ(g.tuning_rows(1, 8192), 1);
  EXPECT_EQ(g.tuning_rows(600, 512), 600) << "a capacity below m (none given: 0) leaves m alone";
  EXPECT_EQ(g.tuning_rows(3, 0), 3);
  g.set_autotune(false);
  EXPECT_EQ(g.tuning_rows(300, 512), 300) << "fixed choices time nothing, so m stays its own shape";
}

TEST(CudaGemmRowBuckets, RowsOfATunedBucketTimeNothingAndComputeTheProduct) {
  const BucketProblem p;
  DeviceBuffer<float> y(static_cast<size_t>(kCap) * kN);
  DeviceBuffer<__nv_bfloat16> yb(static_cast<size_t>(kCap) * kN);
  DeviceBuffer<char> ws(32 << 20);
  Gemm g(ws.get(), 32 << 20);
  int timed = 0;
  // m: (shapes timed after it). 300 tunes 512; 257 and 512 reuse it; 5 tunes 8 (gemv range); 7, 8 reuse.
  for (const auto& [m, want_timed] : std::vector<std::pair<int32_t, int>>{{300, 1}, {257, 1}, {512, 1}, {5, 2},
                                                                          {7, 2}, {8, 2}, {100, 3}, {65, 3}}) {
    SCOPED_TRACE("m = " + std::to_string(m));
    y.poison();
    g.run(p.x.get(), p.w.get(), y.get(), m, kN, kK, /*out_f32=*/true, nullptr, kCap);
    EXPECT_EQ(g.num_timed_shapes(), want_timed);
    EXPECT_LT(rel_error(first_rows(y.download(), m), p.rows(m)), 1e-5);
    timed = g.num_timed_shapes();
  }
  // bf16 output is its own shape family: 300 tunes the bf16 512, then 400 reuses it.
  for (const int32_t m : {300, 400}) {
    yb.poison();
    g.run(p.x.get(), p.w.get(), yb.get(), m, kN, kK, /*out_f32=*/false, nullptr, kCap);
    EXPECT_EQ(g.num_timed_shapes(), timed + 1) << "m = " << m;
    EXPECT_LT(rel_error(first_rows(to_float(yb.download()), m), p.rows(m)), 5e-3) << "m = " << m;
  }
  // Only tuned shapes are listed (what the tuning cache keeps); the rest follow their bucket.
  for (const GemmChoice& c : g.choices()) {
    EXPECT_TRUE(c.m == 512 || c.m == 8 || c.m == 128) << c.m;
  }
}

TEST(CudaGemmRowBuckets, AccumulatingRowsOfABucketAddTheProductOnce) {
  const BucketProblem p;
  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<float> d(-4, 4);
  std::vector<float> y0(static_cast<size_t>(kCap) * kN);
  for (auto& v : y0) v = d(rng);
  DeviceBuffer<char> ws(32 << 20);
  Gemm g(ws.get(), 32 << 20);
  for (const int32_t m : {200, 129, 256}) {  // 200 tunes 256 into the scratch; 129 and 256 reuse it
    SCOPED_TRACE("m = " + std::to_string(m));
    DeviceBuffer<float> y(y0), scratch(static_cast<size_t>(kCap) * kN);
    scratch.poison();
    g.run_accumulate(p.x.get(), p.w.get(), y.get(), scratch.get(), m, kN, kK, nullptr, kCap);
    EXPECT_EQ(g.num_timed_shapes(), 1);
    std::vector<double> want(static_cast<size_t>(m) * kN);
    for (size_t i = 0; i < want.size(); ++i) want[i] = y0[i] + p.want[i];
    const auto got = y.download();
    EXPECT_LT(rel_error(first_rows(got, m), want), 1e-5);
    EXPECT_EQ(std::vector<float>(got.begin() + static_cast<size_t>(m) * kN, got.end()),
              std::vector<float>(y0.begin() + static_cast<size_t>(m) * kN, y0.end()))
        << "rows past m are never written";
  }
}

TEST(CudaGemmRowBuckets, SiluRowsOfABucketTakeItsFusedOrPlainChoice) {
  const int32_t n = 384, k = 1024;
  std::mt19937 rng(std::random_device{}());
  std::vector<float> gu_f, w_f;
  DeviceBuffer<__nv_bfloat16> gu(random_bf16(static_cast<size_t>(kCap) * 2 * k, rng, 3.0f, &gu_f));
  DeviceBuffer<__nv_bfloat16> w(random_bf16(static_cast<size_t>(n) * k, rng, 1.0f, &w_f));
  DeviceBuffer<__nv_bfloat16> act(static_cast<size_t>(kCap) * k), y(static_cast<size_t>(kCap) * n);
  DeviceBuffer<char> ws(32 << 20);
  Gemm g(ws.get(), 32 << 20);
  g.warm_silu_mul(4, n, k, gu.get(), act.get(), w.get(), y.get(), nullptr, kCap);
  g.warm_silu_mul(300, n, k, gu.get(), act.get(), w.get(), y.get(), nullptr, kCap);
  const int timed = g.num_timed_shapes();
  for (const int32_t m : {3, 4, 300, 511}) {
    SCOPED_TRACE("m = " + std::to_string(m));
    y.poison();
    g.run_silu_mul(gu.get(), act.get(), w.get(), y.get(), m, n, k, nullptr, kCap);
    EXPECT_EQ(g.num_timed_shapes(), timed);
    EXPECT_EQ(g.chosen_silu_variant(m, n, k), g.chosen_silu_variant(m <= 4 ? 4 : 512, n, k));
    const std::vector<float> gu_m(gu_f.begin(), gu_f.begin() + static_cast<size_t>(m) * 2 * k);
    const auto got = to_float(y.download());
    EXPECT_LT(rel_error(std::vector<float>(got.begin(), got.begin() + static_cast<size_t>(m) * n),
                        linear_reference(silu_mul_reference(gu_m, m, k), w_f, m, n, k)),
              5e-3);
  }
}

}  // namespace
}  // namespace tessera::cuda::test
