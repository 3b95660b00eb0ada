// cuBLASLt projections (y = x · wᵀ) against a CPU reference, bf16 and fp32 outputs, odd shapes;
// the cached plan gives the same result on a second call. Runs on a GPU only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "common/error.h"

#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemm_skinny.cuh"
#include "kernels/cuda/gemv.cuh"
#include "tests/kernels/cuda/device_buffer.h"

namespace tessera::cuda::test {
namespace {

struct GemmCase {
  int32_t m, n, k;
};

// Fresh random bf16 x [m, k] and w [n, k] on the device, and their product in double.
struct LinearProblem {
  explicit LinearProblem(GemmCase c) : m(c.m), n(c.n), k(c.k) {}
  int32_t m, n, k;
  std::mt19937 rng{std::random_device{}()};
  std::vector<float> x_f, w_f;
  DeviceBuffer<__nv_bfloat16> x{random_bf16(static_cast<size_t>(m) * k, rng, 1.0f, &x_f)};
  DeviceBuffer<__nv_bfloat16> w{random_bf16(static_cast<size_t>(n) * k, rng, 1.0f, &w_f)};
  std::vector<double> want = linear_reference(x_f, w_f, m, n, k);
};

class CudaGemm : public ::testing::TestWithParam<GemmCase> {};

TEST_P(CudaGemm, MatchesReference) {
  const auto [m, n, k] = GetParam();
  const LinearProblem p(GetParam());
  const auto& x = p.x;
  const auto& w = p.w;
  const auto& want = p.want;
  DeviceBuffer<__nv_bfloat16> y(static_cast<size_t>(m) * n);
  DeviceBuffer<float> y32(static_cast<size_t>(m) * n);
  DeviceBuffer<char> ws(32 << 20);
  y.poison();
  y32.poison();
  Gemm gemm(ws.get(), 32 << 20);
  gemm.run(x.get(), w.get(), y.get(), m, n, k, false, nullptr);
  gemm.run(x.get(), w.get(), y32.get(), m, n, k, true, nullptr);
  EXPECT_LT(rel_error(to_float(y.download()), want), 5e-3);
  const auto first = y32.download();
  EXPECT_LT(rel_error(first, want), 1e-5);
  y32.poison();
  gemm.run(x.get(), w.get(), y32.get(), m, n, k, true, nullptr);
  EXPECT_EQ(y32.download(), first);
}

// Autotuning off: two Gemm objects (two processes, two runners) make the same fixed choices, so their
// results are bitwise equal, and they still compute the product.
TEST_P(CudaGemm, FixedAlgorithmsGiveBitwiseEqualResultsAcrossInstances) {
  const auto [m, n, k] = GetParam();
  const LinearProblem p(GetParam());
  const auto& x = p.x;
  const auto& w = p.w;
  const auto& want = p.want;
  DeviceBuffer<float> ya(static_cast<size_t>(m) * n), yb(static_cast<size_t>(m) * n);
  DeviceBuffer<char> wsa(32 << 20), wsb(32 << 20);
  ya.poison();
  yb.poison();
  Gemm a(wsa.get(), 32 << 20), b(wsb.get(), 32 << 20);
  a.set_autotune(false);
  b.set_autotune(false);
  a.run(x.get(), w.get(), ya.get(), m, n, k, true, nullptr);
  b.run(x.get(), w.get(), yb.get(), m, n, k, true, nullptr);
  EXPECT_EQ(a.chosen_gemv_variant(m, n, k, true), b.chosen_gemv_variant(m, n, k, true));
  EXPECT_EQ(a.num_cublas_candidates(m, n, k, true), 1);
  const auto got = ya.download();
  EXPECT_LT(rel_error(got, want), 1e-5);
  EXPECT_EQ(yb.download(), got);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaGemm,
                         ::testing::Values(GemmCase{1, 512, 256}, GemmCase{7, 1000, 264}, GemmCase{64, 384, 1024},
                                           GemmCase{83, 1024, 1544}, GemmCase{96, 768, 2048},
                                           GemmCase{300, 200, 136}, GemmCase{1100, 264, 200},
                                           GemmCase{2048, 512, 256}));

// Every cuBLASLt candidate the tuner times (the heuristic's and the split-K copies of skinny shapes)
// computes the product, into poisoned outputs, bf16 and fp32, and deterministically.
TEST_P(CudaGemm, EveryCublasCandidateMatchesReference) {
  const auto [m, n, k] = GetParam();
  const LinearProblem p(GetParam());
  const auto& x = p.x;
  const auto& w = p.w;
  const auto& want = p.want;
  DeviceBuffer<__nv_bfloat16> y(static_cast<size_t>(m) * n);
  DeviceBuffer<float> y32(static_cast<size_t>(m) * n);
  DeviceBuffer<char> ws(32 << 20);
  Gemm gemm(ws.get(), 32 << 20);
  gemm.set_allow_gemv(false);
  gemm.warm(m, n, k, false, x.get(), w.get(), y.get(), nullptr);
  gemm.warm(m, n, k, true, x.get(), w.get(), y32.get(), nullptr);
  const int nb = gemm.num_cublas_candidates(m, n, k, false), nf = gemm.num_cublas_candidates(m, n, k, true);
  ASSERT_GT(nb, 0);
  ASSERT_GT(nf, 0);
  for (int i = 0; i < nb; ++i) {
    y.poison();
    gemm.run_cublas_candidate(i, x.get(), w.get(), y.get(), m, n, k, false, nullptr);
    EXPECT_LT(rel_error(to_float(y.download()), want), 5e-3) << "bf16 candidate " << i << " of " << nb;
  }
  for (int i = 0; i < nf; ++i) {
    y32.poison();
    gemm.run_cublas_candidate(i, x.get(), w.get(), y32.get(), m, n, k, true, nullptr);
    const auto first = y32.download();
    EXPECT_LT(rel_error(first, want), 1e-5) << "fp32 candidate " << i << " of " << nf;
    y32.poison();
    gemm.run_cublas_candidate(i, x.get(), w.get(), y32.get(), m, n, k, true, nullptr);
    EXPECT_EQ(y32.download(), first) << "fp32 candidate " << i << " differs between two runs";
  }
  EXPECT_THROW(gemm.run_cublas_candidate(nb, x.get(), w.get(), y.get(), m, n, k, false, nullptr), Error);
}

// pad_rows: a call of 64 < m < 128 rows with room for 128 runs the 128-row bucket's plan over all 128
// rows (y's rows past m get x's rows' products), so every row of y matches the reference and only the
// bucket is timed; without pad_rows (the bucket tuned) y's rows past m stay untouched, and m <= 64 or a
// bucket past pad_rows_up_to() is never padded. Fresh random inputs, poisoned outputs, m not a
// multiple of 16.
TEST(CudaGemmPadRows, RunsTheBucketsPlanOverTheBucketsRowsOnlyWhenAllowed) {
  const int32_t cap = 128, n = 1024, k = 1544;
  const LinearProblem p(GemmCase{cap, n, k});  // x and the product for all 128 rows
  DeviceBuffer<char> ws(32 << 20);
  DeviceBuffer<__nv_bfloat16> y(static_cast<size_t>(cap) * n);
  DeviceBuffer<float> y32(static_cast<size_t>(cap) * n);
  auto rows = [&](const std::vector<double>& v, int32_t from, int32_t to) {
    return std::vector<double>(v.begin() + int64_t{from} * n, v.begin() + int64_t{to} * n);
  };
  auto rows_f = [&](const std::vector<float>& v, int32_t from, int32_t to) {
    return std::vector<float>(v.begin() + int64_t{from} * n, v.begin() + int64_t{to} * n);
  };
  for (const int32_t m : {83, 65, 127}) {
    SCOPED_TRACE("m = " + std::to_string(m));
    Gemm gemm(ws.get(), 32 << 20);
    EXPECT_EQ(gemm.padded_rows(m, cap, true), 128);
    EXPECT_EQ(gemm.padded_rows(m, cap, false), m);
    y.poison();
    y32.poison();
    gemm.run(p.x.get(), p.w.get(), y.get(), m, n, k, false, nullptr, cap, true);
    gemm.run(p.x.get(), p.w.get(), y32.get(), m, n, k, true, nullptr, cap, true);
    EXPECT_LT(rel_error(to_float(y.download()), p.want), 5e-3);
    EXPECT_LT(rel_error(y32.download(), p.want), 1e-5);
    EXPECT_EQ(gemm.num_timed_shapes(), 2) << "only the 128-row bucket, bf16 and fp32 out";
    EXPECT_EQ(gemm.num_cublas_candidates(m, n, k, true), 0) << "m itself never planned";
  }
  Gemm gemm(ws.get(), 32 << 20);
  {  // not allowed: rows past m untouched once the bucket is tuned (its timing may write all cap rows)
    gemm.warm(90, n, k, true, p.x.get(), p.w.get(), y32.get(), nullptr, cap);
    const std::vector<float> sentinel(static_cast<size_t>(cap) * n, 12345.0f);
    DeviceBuffer<float> ys(sentinel);
    gemm.run(p.x.get(), p.w.get(), ys.get(), 90, n, k, true, nullptr, cap, false);
    const auto got = ys.download();
    EXPECT_LT(rel_error(rows_f(got, 0, 90), rows(p.want, 0, 90)), 1e-5);
    EXPECT_EQ(rows_f(got, 90, cap), rows_f(sentinel, 90, cap));
  }
  EXPECT_EQ(gemm.padded_rows(64, cap, true), 64);   // the gemv / skinny rows are never padded
  EXPECT_EQ(gemm.padded_rows(90, 100, true), 100);  // the bucket is capped by the rows the caller holds
  EXPECT_EQ(gemm.padded_rows(129, 4096, true), 129);  // past pad_rows_up_to()
  gemm.set_pad_rows_up_to(0);
  EXPECT_EQ(gemm.padded_rows(90, cap, true), 90);
}

// run_accumulate with pad_rows adds the product to every one of the bucket's rows of the fp32 output
// (the residual's rows past m are scratch in the runner), exactly once, even on the call that tunes.
TEST(CudaGemmPadRows, AccumulateAddsTheProductToTheBucketsRows) {
  const int32_t cap = 128, n = 768, k = 2056, m = 97;
  const LinearProblem p(GemmCase{cap, n, k});
  std::mt19937 rng{std::random_device{}()};
  std::vector<float> y0;
  DeviceBuffer<float> y(random_values<float>(static_cast<size_t>(cap) * n, rng, 1.0f, &y0));
  DeviceBuffer<float> scratch(static_cast<size_t>(cap) * n);
  DeviceBuffer<char> ws(32 << 20);
  Gemm gemm(ws.get(), 32 << 20);
  gemm.run_accumulate(p.x.get(), p.w.get(), y.get(), scratch.get(), m, n, k, nullptr, cap, true);
  std::vector<double> want(y0.size());
  for (size_t i = 0; i < want.size(); ++i) want[i] = y0[i] + p.want[i];
  EXPECT_LT(rel_error(y.download(), want), 1e-5);
  EXPECT_EQ(gemm.num_timed_shapes(), 1);
}

TEST(CudaGemv, SiluInputMatchesReferenceInEverySplitKVariant) {
  std::mt19937 rng(std::random_device{}());
  for (int32_t k : {1304, 4104}) {
    for (int32_t m : {1, 3, 8}) {
      const int32_t n = 203;
      std::vector<float> gu_f, w_f;
      DeviceBuffer<__nv_bfloat16> gu(random_bf16(static_cast<size_t>(m) * 2 * k, rng, 3.0f, &gu_f));
      DeviceBuffer<__nv_bfloat16> w(random_bf16(static_cast<size_t>(n) * k, rng, 1.0f, &w_f));
      const auto want = linear_reference(silu_mul_reference(gu_f, m, k), w_f, m, n, k);
      for (int v = kGemvFirstSplitK; v < kGemvVariants; ++v) {
        DeviceBuffer<__nv_bfloat16> y(static_cast<size_t>(m) * n);
        y.poison();
        gemv(gu.get(), w.get(), y.get(), m, n, k, false, v, nullptr, GemvInput::kSiluMul);
        EXPECT_LT(rel_error(to_float(y.download()), want), 5e-3) << "m " << m << " k " << k << " variant " << v;
      }
    }
  }
}

TEST(CudaGemv, RefusesSiluWithAWarpVariantOrFp32Output) {
  DeviceBuffer<__nv_bfloat16> gu(2 * 64), w(64 * 64), y(64);
  EXPECT_THROW(gemv(gu.get(), w.get(), y.get(), 1, 64, 64, false, 0, nullptr, GemvInput::kSiluMul), Error);
  EXPECT_THROW(gemv(gu.get(), w.get(), y.get(), 1, 64, 64, true, kGemvFirstSplitK, nullptr, GemvInput::kSiluMul),
               Error);
  EXPECT_THROW(gemv(gu.get(), w.get(), y.get(), 1, 64, 64, false, kGemvVariants, nullptr), Error);
}

// A tuning cache's round trip: a second Gemm given the first one's choices (GemmChoice presets, as
// read back from the cache file) makes the same choices for every path without timing, and its
// results are bitwise equal to the first's; with a flush scratch, so the skinny kernel is a candidate.
TEST_P(CudaGemm, PresetChoicesReproduceTheTunedResultsBitwise) {
  const auto [m, n, k] = GetParam();
  const LinearProblem p(GetParam());
  DeviceBuffer<float> ya(static_cast<size_t>(m) * n), yb(static_cast<size_t>(m) * n);
  DeviceBuffer<__nv_bfloat16> ha(static_cast<size_t>(m) * n), hb(static_cast<size_t>(m) * n);
  DeviceBuffer<char> wsa(32 << 20), wsb(32 << 20), flush_a(64 << 20), flush_b(64 << 20);
  for (auto* b : {&ya, &yb}) b->poison();
  for (auto* b : {&ha, &hb}) b->poison();
  Gemm a(wsa.get(), 32 << 20, flush_a.get(), 64 << 20);
  a.run(p.x.get(), p.w.get(), ya.get(), m, n, k, true, nullptr);
  a.run(p.x.get(), p.w.get(), ha.get(), m, n, k, false, nullptr);
  const std::vector<GemmChoice> tuned = a.choices();
  ASSERT_EQ(tuned.size(), 2u);
  Gemm b(wsb.get(), 32 << 20, flush_b.get(), 64 << 20);
  for (const GemmChoice& c : tuned) b.preset(c);
  b.run(p.x.get(), p.w.get(), yb.get(), m, n, k, true, nullptr);
  b.run(p.x.get(), p.w.get(), hb.get(), m, n, k, false, nullptr);
  EXPECT_EQ(b.choices(), tuned);
  EXPECT_EQ(b.num_cublas_candidates(m, n, k, true), 1);  // nothing timed: only the preset algorithm
  EXPECT_EQ(yb.download(), ya.download());
  EXPECT_EQ(to_float(hb.download()), to_float(ha.download()));
  EXPECT_LT(rel_error(ya.download(), p.want), 1e-5);
}

// Sustained tuning (long steps choose again at the power cap): the choice is one of the timed
// candidates, computes the product, and a preset of it (a tuning cache) gives bitwise the same output
// without timing anything.
TEST(CudaGemmSustained, ChoosesATimedCandidateThatAPresetReproduces) {
  const GemmCase shape{2048, 1536, 512};
  const auto [m, n, k] = shape;
  const LinearProblem p(shape);
  DeviceBuffer<float> ya(static_cast<size_t>(m) * n), yb(static_cast<size_t>(m) * n);
  DeviceBuffer<char> wsa(32 << 20), wsb(32 << 20);
  ya.poison();
  yb.poison();
  Gemm a(wsa.get(), 32 << 20);
  a.set_sustained_tuning_rows(1024);
  a.run(p.x.get(), p.w.get(), ya.get(), m, n, k, true, nullptr);
  EXPECT_EQ(a.num_sustained_shapes(), 1);
  const int count = a.num_cublas_candidates(m, n, k, true);
  const int chosen = a.chosen_cublas_candidate(m, n, k, true);
  ASSERT_GT(count, 1);
  ASSERT_GE(chosen, 0);
  ASSERT_LT(chosen, count);
  EXPECT_FALSE(a.describe_cublas_candidate(chosen, m, n, k, true).empty());
  EXPECT_LT(rel_error(ya.download(), p.want), 1e-5);
  Gemm b(wsb.get(), 32 << 20);
  for (const GemmChoice& c : a.choices()) b.preset(c);
  b.run(p.x.get(), p.w.get(), yb.get(), m, n, k, true, nullptr);
  EXPECT_EQ(b.num_cublas_candidates(m, n, k, true), 1);  // the preset, nothing timed
  EXPECT_EQ(b.num_sustained_shapes(), 0);
  EXPECT_EQ(b.choices(), a.choices());
  EXPECT_EQ(yb.download(), ya.download());
  // Below the rows threshold (and with it off) a shape is chosen by its burst alone.
  Gemm c(wsb.get(), 32 << 20), d(wsb.get(), 32 << 20);
  c.set_sustained_tuning_rows(4096);
  c.run(p.x.get(), p.w.get(), yb.get(), m, n, k, true, nullptr);
  d.run(p.x.get(), p.w.get(), yb.get(), m, n, k, true, nullptr);
  EXPECT_EQ(c.num_sustained_shapes(), 0);
  EXPECT_EQ(d.num_sustained_shapes(), 0);
}

// A preset that does not fit the shape on this device (a stale cache: an index past cuBLASLt's
// candidates, a gemv or skinny variant that does not exist) is dropped: the shape is timed and the
// product is still right.
TEST(CudaGemmPreset, AStalePresetIsTimedInsteadAndStaysCorrect) {
  const GemmCase shape{8, 640, 512};
  const LinearProblem p(shape);
  DeviceBuffer<float> y(static_cast<size_t>(shape.m) * shape.n);
  DeviceBuffer<char> ws(32 << 20);
  for (const GemmChoice& stale : {GemmChoice{GemmPath::kBf16, 8, 640, 512, true, 4000, -1, -1},
                                  GemmChoice{GemmPath::kBf16, 8, 640, 512, true, 0, 4000, -1},
                                  GemmChoice{GemmPath::kBf16, 8, 640, 512, true, 0, -1, 4000}}) {
    y.poison();
    Gemm g(ws.get(), 32 << 20);
    g.preset(stale);
    g.run(p.x.get(), p.w.get(), y.get(), shape.m, shape.n, shape.k, true, nullptr);
    EXPECT_GT(g.num_cublas_candidates(shape.m, shape.n, shape.k, true), 1) << "timed, not preset";
    EXPECT_NE(g.choices().front(), stale);
    EXPECT_LT(rel_error(y.download(), p.want), 1e-5);
  }
}

// choose_decode_path (the runner's in-step decode tuning): every contender of a 4-row shape timed here
// can be made its choice, and run() then stores exactly what that path stores (bitwise the variant's
// own output for a gemv or skinny variant; the product for cuBLASLt), choices() reports it and 3 rows
// (bucket 4) follow it; a preset shape has no contenders, and a shape not timed or a path not timed is
// refused naming the value. Fresh random inputs, poisoned outputs.
TEST(CudaGemmDecodePath, RunsTheChosenContenderAndTheBucketsRowsFollowIt) {
  const int32_t m = 4, n = 1032, k = 776;
  const LinearProblem p(GemmCase{m, n, k});
  DeviceBuffer<char> ws(32 << 20), flush(64 << 20);
  DeviceBuffer<float> y(static_cast<size_t>(m) * n), direct(static_cast<size_t>(m) * n);
  Gemm gemm(ws.get(), 32 << 20, flush.get(), 64 << 20);
  gemm.warm(m, n, k, true, p.x.get(), p.w.get(), y.get(), nullptr, 8);
  const std::vector<DecodePath> all = gemm.decode_contenders(m, n, k, true, 1e9f);
  int gemvs = 0, skinnies = 0;
  for (const DecodePath& c : all) gemvs += c.gemv_variant >= 0, skinnies += c.skinny_variant >= 0;
  EXPECT_EQ(std::count(all.begin(), all.end(), DecodePath{}), 1) << "with any margin: cuBLASLt among them";
  EXPECT_EQ(gemvs, kGemvVariants);
  EXPECT_GT(skinnies, 0);
  EXPECT_EQ(all.size(), static_cast<size_t>(1 + gemvs + skinnies));
  const std::vector<DecodePath> near = gemm.decode_contenders(m, n, k, true, 1.0f);
  ASSERT_GE(near.size(), 1u) << "margin 1: the fastest alone";
  EXPECT_EQ(near.front(), all.front()) << "fastest first";
  const std::vector<DecodePath> three = gemm.decode_contenders(m, n, k, true, 1e9f, 3);
  EXPECT_EQ(three, std::vector<DecodePath>(all.begin(), all.begin() + 3)) << "max: the fastest three";
  for (const DecodePath& c : all) {
    SCOPED_TRACE(to_string(c));
    gemm.choose_decode_path(m, n, k, true, c);
    EXPECT_EQ(gemm.chosen_decode_path(m, n, k, true), c);
    y.poison();
    gemm.run(p.x.get(), p.w.get(), y.get(), m, n, k, true, nullptr, 8);
    const auto got = y.download();
    EXPECT_LT(rel_error(got, p.want), 1e-5);
    if (c.gemv_variant >= 0 || c.skinny_variant >= 0) {
      direct.poison();
      if (c.gemv_variant >= 0) gemv(p.x.get(), p.w.get(), direct.get(), m, n, k, true, c.gemv_variant, nullptr);
      else gemm_skinny(p.x.get(), p.w.get(), direct.get(), m, n, k, true, c.skinny_variant, nullptr);
      EXPECT_EQ(got, direct.download()) << "run() did not launch the chosen variant";
    }
    bool listed = false;
    for (const GemmChoice& g : gemm.choices())
      if (g.m == m && g.n == n && g.k == k && g.out_f32)
        listed = g.gemv_variant == c.gemv_variant && g.skinny_variant == c.skinny_variant;
    EXPECT_TRUE(listed) << "choices() does not report the chosen path";
    y.poison();  // 3 rows take bucket 4's (re-made) plan
    gemm.run(p.x.get(), p.w.get(), y.get(), 3, n, k, true, nullptr, 8);
    EXPECT_EQ(gemm.chosen_decode_path(3, n, k, true), c);
    const auto got3 = y.download();
    EXPECT_LT(rel_error(std::vector<float>(got3.begin(), got3.begin() + 3 * n),
                        std::vector<double>(p.want.begin(), p.want.begin() + 3 * n)),
              1e-5);
  }
  EXPECT_EQ(gemm.num_timed_shapes(), 1) << "choosing times nothing";
  for (const DecodePath bad : {DecodePath{.gemv_variant = kGemvVariants}, DecodePath{.skinny_variant = 9999},
                               DecodePath{.gemv_variant = 7, .skinny_variant = 0}}) {
    try {
      gemm.choose_decode_path(m, n, k, true, bad);
      ADD_FAILURE() << "accepted " << to_string(bad);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("gemv variant=" + std::to_string(bad.gemv_variant)), std::string::npos)
          << e.what();
    }
  }
  try {
    gemm.choose_decode_path(2, n, k, true, DecodePath{});
    ADD_FAILURE() << "accepted a shape never timed";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(std::string(e.what()).find("m=2"), std::string::npos) << e.what();
  }
  EXPECT_EQ(gemm.chosen_decode_path(2, n, k, true), (DecodePath{-2, -2})) << "a shape not seen";
  Gemm preset(ws.get(), 32 << 20, flush.get(), 64 << 20);
  preset.preset(GemmChoice{GemmPath::kBf16, m, n, k, true, 0, 7, -1});
  preset.run(p.x.get(), p.w.get(), y.get(), m, n, k, true, nullptr, 8);
  EXPECT_EQ(preset.chosen_decode_path(m, n, k, true), DecodePath{.gemv_variant = 7});
  EXPECT_TRUE(preset.decode_contenders(m, n, k, true, 1e9f).empty()) << "a preset shape was timed";
}

// y += x · wᵀ in cuBLASLt's epilogue (the residual stream): the first call tunes the shape into the
// scratch, so y holds y0 + x·wᵀ exactly once; the second call adds the product again. Rows just above
// the skinny range (split-K candidates) and a prefill-sized 300.
TEST(CudaGemmAccumulate, AddsTheProductToTheFp32OutputOnceEvenWhileTuning) {
  for (const GemmCase shape : {GemmCase{65, 384, 1024}, GemmCase{300, 520, 776}}) {
    const auto [m, n, k] = shape;
    SCOPED_TRACE("m = " + std::to_string(m));
    const LinearProblem p(shape);
    std::mt19937 rng(std::random_device{}());
    std::uniform_real_distribution<float> d(-4, 4);
    std::vector<float> y0(static_cast<size_t>(m) * n);
    for (auto& v : y0) v = d(rng);
    DeviceBuffer<float> y(y0), scratch(static_cast<size_t>(m) * n);
    DeviceBuffer<char> ws(32 << 20);
    scratch.poison();
    Gemm gemm(ws.get(), 32 << 20);
    gemm.run_accumulate(p.x.get(), p.w.get(), y.get(), scratch.get(), m, n, k, nullptr);
    std::vector<double> want(y0.size());
    for (size_t i = 0; i < want.size(); ++i) want[i] = y0[i] + p.want[i];
    EXPECT_LT(rel_error(y.download(), want), 1e-5);
    gemm.run_accumulate(p.x.get(), p.w.get(), y.get(), scratch.get(), m, n, k, nullptr);
    for (size_t i = 0; i < want.size(); ++i) want[i] += p.want[i];
    EXPECT_LT(rel_error(y.download(), want), 1e-5);
  }
}

TEST(CudaGemmAccumulate, RefusesRowsTheSkinnyKernelsWouldTake) {
  DeviceBuffer<__nv_bfloat16> x(64 * 128), w(128 * 128);
  DeviceBuffer<float> y(64 * 128), scratch(64 * 128);
  DeviceBuffer<char> ws(32 << 20);
  Gemm gemm(ws.get(), 32 << 20);
  EXPECT_THROW(gemm.run_accumulate(x.get(), w.get(), y.get(), scratch.get(), 64, 128, 128, nullptr), Error);
}

class CudaGemmSilu : public ::testing::TestWithParam<int32_t> {};

// The down projection through Gemm::run_silu_mul: fused gemv (m <= 8) or silu_mul + GEMM (above), both
// against the reference; the cached choice gives the same bits on a second call.
TEST_P(CudaGemmSilu, MatchesReference) {
  const int32_t m = GetParam(), n = 384, k = 1024;
  std::mt19937 rng(std::random_device{}());
  std::vector<float> gu_f, w_f;
  DeviceBuffer<__nv_bfloat16> gu(random_bf16(static_cast<size_t>(m) * 2 * k, rng, 3.0f, &gu_f));
  DeviceBuffer<__nv_bfloat16> w(random_bf16(static_cast<size_t>(n) * k, rng, 1.0f, &w_f));
  DeviceBuffer<__nv_bfloat16> act(static_cast<size_t>(m) * k), y(static_cast<size_t>(m) * n);
  DeviceBuffer<char> ws(32 << 20);
  act.poison();
  y.poison();
  Gemm gemm(ws.get(), 32 << 20);
  gemm.run_silu_mul(gu.get(), act.get(), w.get(), y.get(), m, n, k, nullptr);
  const auto first = y.download();
  EXPECT_LT(rel_error(to_float(first), linear_reference(silu_mul_reference(gu_f, m, k), w_f, m, n, k)), 5e-3);
  const int v = gemm.chosen_silu_variant(m, n, k);
  EXPECT_TRUE(v == -1 || (v >= kGemvFirstSplitK && v < kGemvVariants && m <= kGemvMaxM)) << v;
  y.poison();
  gemm.run_silu_mul(gu.get(), act.get(), w.get(), y.get(), m, n, k, nullptr);
  EXPECT_EQ(to_float(y.download()), to_float(first));
}

INSTANTIATE_TEST_SUITE_P(Rows, CudaGemmSilu, ::testing::Values(1, 7, 64));

TEST(CudaGemv, EveryVariantMatchesReference) {
  std::mt19937 rng(std::random_device{}());
  for (int32_t m : {1, 2, 3, 5, 8}) {
    const int32_t n = 203, k = m == 5 ? 4104 : 1304;  // tails of every stride; 4104: two split-K chunks
    std::vector<float> x_f, w_f;
    DeviceBuffer<__nv_bfloat16> x(random_bf16(static_cast<size_t>(m) * k, rng, 1.0f, &x_f));
    DeviceBuffer<__nv_bfloat16> w(random_bf16(static_cast<size_t>(n) * k, rng, 1.0f, &w_f));
    const auto want = linear_reference(x_f, w_f, m, n, k);
    for (int v = 0; v < kGemvVariants; ++v) {
      DeviceBuffer<float> y(static_cast<size_t>(m) * n);
      y.poison();
      gemv(x.get(), w.get(), y.get(), m, n, k, true, v, nullptr);
      EXPECT_LT(rel_error(y.download(), want), 1e-5) << "m " << m << " variant " << v;
      y.poison();
      gemv(x.get(), w.get(), y.get(), m, n, k, true, v, nullptr, GemvInput::kPlain, /*pdl=*/false);
      EXPECT_LT(rel_error(y.download(), want), 1e-5) << "m " << m << " variant " << v << " without PDL";
      DeviceBuffer<__nv_bfloat16> yb(static_cast<size_t>(m) * n);
      yb.poison();
      gemv(x.get(), w.get(), yb.get(), m, n, k, false, v, nullptr);
      EXPECT_LT(rel_error(to_float(yb.download()), want), 5e-3) << "m " << m << " variant " << v;
    }
  }
}

}  // namespace
}  // namespace tessera::cuda::test
