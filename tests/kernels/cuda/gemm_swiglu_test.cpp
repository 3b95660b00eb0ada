// The SwiGLU gate/up GEMM (gemm_swiglu_wgmma.cuh) against a host reference on fresh random inputs
// (odd row counts, partial row tiles, more tiles than SMs, a small k and the model's k), the tail-part
// variants against variant 0's bits on grids that leave partial waves, against what
// it replaces (cuBLASLt's bf16 product followed by silu_mul) at the prefill shape, its refusals, and
// Gemm::run_gate_up_silu taking it above the skinny range only when switched on. Every output is
// poisoned (NaN) before the call. Runs on a GPU only; the kernel itself on compute capability 9.0.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "common/error.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemm_swiglu_wgmma.cuh"
#include "kernels/cuda/silu_mul.cuh"
#include "tests/kernels/cuda/device_buffer.h"

namespace tessera::cuda::test {
namespace {

bool device_runs_swiglu() {
  int device = 0;
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return gemm_swiglu_supported(prop.major, prop.minor);
}

float silu(float g) { return g / (1.0f + std::exp(-g)); }

// Checks act row `row` against gate/up products g, u (exact or bf16; `inter` each): the bf16 value of
// silu(bf16(g)) * bf16(u) within what moving g and u by one bf16 step plus `acc_err` (the fp32
// accumulation's error, which near-cancelling sums make large next to |g|) can move it, and one bf16
// step of the result. Returns the number of elements that are bitwise the reference's; fails on NaN
// or a larger error.
int check_row(const __nv_bfloat16* got, const double* g, const double* u, int32_t inter, double acc_err,
              const std::string& what) {
  int same = 0;
  for (int32_t j = 0; j < inter; ++j) {
    const float gr = from_bf16(to_bf16(static_cast<float>(g[j]))), ur = from_bf16(to_bf16(static_cast<float>(u[j])));
    const float want = from_bf16(to_bf16(silu(gr) * ur)), v = from_bf16(got[j]);
    EXPECT_TRUE(v == v) << what << ": column " << j << " unwritten (NaN)";
    if (!(v == v)) return same;
    const double dg = std::ldexp(std::fabs(gr), -7) + acc_err, du = std::ldexp(std::fabs(ur), -7) + acc_err;
    const double tol = 1.1 * dg * (std::fabs(ur) + du) + std::fabs(silu(gr)) * du +
                       std::ldexp(std::max(std::fabs(want), std::fabs(v)), -7) + 1e-30;
    EXPECT_LE(std::fabs(v - want), tol) << what << ": column " << j << " is " << v << ", want " << want
                                         << " (gate " << gr << ", up " << ur << ")";
    if (std::fabs(v - want) > tol) return same;
    if (v == want) ++same;
  }
  return same;
}

// Host products of x row `row` with w's gate rows (into g) and up rows (into u), in double; returns
// a bound on an fp32 accumulation's error for the row: 2^-16 x the largest sum of |x_l w_l|.
double host_gate_up(const std::vector<float>& x, const std::vector<float>& w, int32_t row, int32_t inter, int32_t k,
                    std::vector<double>& g, std::vector<double>& u) {
  g.assign(inter, 0.0);
  u.assign(inter, 0.0);
  double abs_max = 0;
  const float* xr = x.data() + static_cast<size_t>(row) * k;
  for (int32_t j = 0; j < 2 * inter; ++j) {
    const float* wr = w.data() + static_cast<size_t>(j) * k;
    double acc = 0, abs_sum = 0;
    for (int32_t l = 0; l < k; ++l) {
      acc += static_cast<double>(xr[l]) * wr[l];
      abs_sum += std::fabs(static_cast<double>(xr[l]) * wr[l]);
    }
    (j < inter ? g[j] : u[j - inter]) = acc;
    abs_max = std::max(abs_max, abs_sum);
  }
  return std::ldexp(abs_max, -16);
}

TEST(CudaGemmSwiglu, SupportedOnComputeCapability9Point0Only) {
  EXPECT_TRUE(gemm_swiglu_supported(9, 0));
  EXPECT_FALSE(gemm_swiglu_supported(8, 9));
  EXPECT_FALSE(gemm_swiglu_supported(10, 0));
  EXPECT_FALSE(gemm_swiglu_supported(10, 3));
  EXPECT_FALSE(gemm_swiglu_supported(12, 0));
}

TEST(CudaGemmSwiglu, MatchesTheHostReferenceAtOddRowCounts) {
  if (!device_runs_swiglu()) {
    SUCCEED() << "not compute capability 9.0: the kernel is never launched here (Gemm test below checks that)";
    return;
  }
  std::mt19937 rng(std::random_device{}());
  struct Shape {
    int32_t m, inter, k;
  };
  // 130 x 14336: 224 tiles, more than one per block of the persistent grid; k 192: three stages.
  for (const Shape sh : {Shape{1, 128, 192}, Shape{3, 256, 4096}, Shape{67, 128, 4096}, Shape{128, 256, 192},
                         Shape{130, 256, 4096}, Shape{130, 14336, 192}, Shape{259, 384, 320}}) {
    const float scale = 2.0f / std::sqrt(static_cast<float>(sh.k));  // products of order 1: silu's curve
    std::vector<float> x_f, w_f;
    DeviceBuffer<__nv_bfloat16> x(random_bf16(static_cast<size_t>(sh.m) * sh.k, rng, 1.0f, &x_f));
    DeviceBuffer<__nv_bfloat16> w(random_bf16(static_cast<size_t>(2) * sh.inter * sh.k, rng, scale, &w_f));
    DeviceBuffer<__nv_bfloat16> act(static_cast<size_t>(sh.m) * sh.inter + 64);  // + a guard past the end
    std::vector<std::vector<double>> g(sh.m), u(sh.m);
    std::vector<double> acc_err(sh.m);
    for (int32_t r = 0; r < sh.m; ++r) acc_err[r] = host_gate_up(x_f, w_f, r, sh.inter, sh.k, g[r], u[r]);
    for (int v = 0; v < kSwigluVariants; ++v) {
      act.poison();
      gemm_swiglu(x.get(), w.get(), act.get(), sh.m, sh.inter, sh.k, nullptr, v);
      const auto got = act.download();
      const std::string what = "m " + std::to_string(sh.m) + " inter " + std::to_string(sh.inter) + " k " +
                               std::to_string(sh.k) + " variant " + std::to_string(v);
      int64_t same = 0;
      for (int32_t r = 0; r < sh.m; ++r) {
        same += check_row(got.data() + static_cast<size_t>(r) * sh.inter, g[r].data(), u[r].data(), sh.inter,
                          acc_err[r], what + " row " + std::to_string(r));
        if (::testing::Test::HasFailure()) return;
      }
      for (size_t i = static_cast<size_t>(sh.m) * sh.inter; i < got.size(); ++i)
        ASSERT_FALSE(from_bf16(got[i]) == from_bf16(got[i])) << what << ": wrote past the end, element " << i;
      EXPECT_GE(same, static_cast<int64_t>(sh.m) * sh.inter * 95 / 100) << what << ": bitwise equal elements";
      // One cluster walking every tile (the grid given, as Gemm gives it): the same bits.
      act.poison();
      gemm_swiglu(x.get(), w.get(), act.get(), sh.m, sh.inter, sh.k, nullptr, v, swiglu_variant_ctas(v));
      const auto one = act.download();
      ASSERT_EQ(std::memcmp(one.data(), got.data(), got.size() * 2), 0) << what << " with one cluster";
      // Five clusters: a grid that leaves groups past the last whole wave.
      act.poison();
      gemm_swiglu(x.get(), w.get(), act.get(), sh.m, sh.inter, sh.k, nullptr, v, 5 * swiglu_variant_ctas(v));
      const auto five = act.download();
      ASSERT_EQ(std::memcmp(five.data(), got.data(), got.size() * 2), 0) << what << " with five clusters";
    }
  }
}

TEST(CudaGemmSwiglu, EqualsCublasThenSiluMulWithinBf16RoundingAtThePrefillShape) {
  if (!device_runs_swiglu()) {
    SUCCEED() << "not compute capability 9.0";
    return;
  }
  constexpr int32_t m = 4096, inter = 14336, k = 4096;
  std::mt19937 rng(std::random_device{}());
  std::vector<float> x_f, w_f;
  DeviceBuffer<__nv_bfloat16> x(random_bf16(static_cast<size_t>(m) * k, rng, 1.0f, &x_f));
  DeviceBuffer<__nv_bfloat16> w(random_bf16(static_cast<size_t>(2) * inter * k, rng, 0.03f, &w_f));
  DeviceBuffer<__nv_bfloat16> gate_up(static_cast<size_t>(m) * 2 * inter), want(static_cast<size_t>(m) * inter),
      act(static_cast<size_t>(m) * inter);
  DeviceBuffer<unsigned char> ws(32 << 20);
  Gemm gemm(ws.get(), 32 << 20);
  gemm.run(x.get(), w.get(), gate_up.get(), m, 2 * inter, k, false, nullptr);
  silu_mul(gate_up.get(), m, inter, want.get(), nullptr);
  const auto gu = gate_up.download();
  // The accumulation error bound of every row: 2^-16 x the largest sum of |x_l w_l| of four rows.
  double acc_err = 0;
  std::vector<std::vector<double>> hg(4), hu(4);
  const int32_t host_rows[4] = {0, 1000, 2047, m - 1};  // first, middle, the last of two tiles
  for (int i = 0; i < 4; ++i) acc_err = std::max(acc_err, host_gate_up(x_f, w_f, host_rows[i], inter, k, hg[i], hu[i]));
  std::vector<__nv_bfloat16> first;
  for (int v = 0; v < kSwigluVariants; ++v) {
    act.poison();
    gemm_swiglu(x.get(), w.get(), act.get(), m, inter, k, nullptr, v);
    const auto got = act.download();
    const std::string what = "variant " + std::to_string(v);
    if (v == 0) {
      first = got;
    } else {  // every variant accumulates in the same order: the same bits
      ASSERT_EQ(std::memcmp(got.data(), first.data(), got.size() * 2), 0) << what << " differs from variant 0";
    }
    // Against the unfused path's bf16 gate/up products: every row.
    std::vector<double> g(inter), u(inter);
    int64_t same = 0;
    for (int32_t r = 0; r < m; ++r) {
      for (int32_t j = 0; j < inter; ++j) {
        g[j] = from_bf16(gu[static_cast<size_t>(r) * 2 * inter + j]);
        u[j] = from_bf16(gu[static_cast<size_t>(r) * 2 * inter + inter + j]);
      }
      same += check_row(got.data() + static_cast<size_t>(r) * inter, g.data(), u.data(), inter, 2 * acc_err,
                        what + " vs cuBLASLt row " + std::to_string(r));
      if (::testing::Test::HasFailure()) return;
    }
    EXPECT_GE(same, int64_t{m} * inter * 99 / 100) << what << ": bitwise equal to cuBLASLt + silu_mul";
    // And the four rows against the host's exact products.
    for (int i = 0; i < 4; ++i)
      check_row(got.data() + static_cast<size_t>(host_rows[i]) * inter, hg[i].data(), hu[i].data(), inter, acc_err,
                what + " host row " + std::to_string(host_rows[i]));
  }
}

TEST(CudaGemmSwiglu, PersistentGridIsAtMostOneBlockPerSmAndTile) {
  if (!device_runs_swiglu()) {
    SUCCEED() << "not compute capability 9.0";
    return;
  }
  int device = 0, sms = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  for (int v = 0; v < kSwigluVariants; ++v) {
    const int ctas = swiglu_variant_ctas(v), split = swiglu_variant_tail_split(v);
    // One tile (group): one cluster, or with tail parts one per part.
    EXPECT_EQ(gemm_swiglu_blocks(1, 128, v), ctas * split) << "variant " << v << ": one tile (group)";
    // Three row tiles of one column tile: 3 blocks, 2 pairs of row tiles, or 2 2 x 2 groups of 4.
    EXPECT_EQ(gemm_swiglu_blocks(259, 128, v), (ctas == 1 ? 3 : 2 * ctas) * split)
        << "variant " << v << ": three row tiles";
    const int big = gemm_swiglu_blocks(4096, 14336, v);
    EXPECT_EQ(big % ctas, 0) << "variant " << v;
    EXPECT_LE(big, sms) << "variant " << v;
    if (ctas == 1) {
      EXPECT_EQ(big, sms) << "variant " << v << ": one block per SM";
    }
  }
  // The balanced grid (variant 5 = variant 2's kernel): the fewest clusters for variant 2's waves.
  const int resident = gemm_swiglu_blocks(4096, 14336, 2) / 2, groups = 16 * 112;
  const int waves = (groups + resident - 1) / resident;
  EXPECT_EQ(gemm_swiglu_blocks(4096, 14336, 5), 2 * ((groups + waves - 1) / waves)) << resident << " resident clusters";
  // Tail parts (variants 6, 7): every resident cluster, as variant 2.
  for (const int v : {6, 7}) EXPECT_EQ(gemm_swiglu_blocks(4096, 14336, v), 2 * resident) << "variant " << v;
}

// Tail parts (variants 6, 7: the groups past the last whole wave in 64- or 32-column parts) store variant
// 0's bits wherever the grid leaves a partial wave: row counts that are not a multiple of 128 (an odd
// number of row tiles: the second block of the last pair reads zeros), grids of 1 to 67 clusters (one
// group per cluster and fewer groups than clusters: every group in parts), and nothing past act.
TEST(CudaGemmSwiglu, TailPartsStoreVariantZerosBitsOnPartialWaves) {
  if (!device_runs_swiglu()) {
    SUCCEED() << "not compute capability 9.0";
    return;
  }
  std::mt19937 rng(std::random_device{}());
  struct Shape {
    int32_t m, inter, k;
  };
  for (const Shape sh : {Shape{77, 640, 256}, Shape{300, 1152, 512}, Shape{1000, 2048, 192}, Shape{2100, 14336, 128}}) {
    const float scale = 2.0f / std::sqrt(static_cast<float>(sh.k));
    DeviceBuffer<__nv_bfloat16> x(random_bf16(static_cast<size_t>(sh.m) * sh.k, rng, 1.0f, nullptr));
    DeviceBuffer<__nv_bfloat16> w(random_bf16(static_cast<size_t>(2) * sh.inter * sh.k, rng, scale, nullptr));
    DeviceBuffer<__nv_bfloat16> act(static_cast<size_t>(sh.m) * sh.inter + 64);  // + a guard past the end
    act.poison();
    gemm_swiglu(x.get(), w.get(), act.get(), sh.m, sh.inter, sh.k, nullptr, 0);
    const auto want = act.download();
    const size_t n = static_cast<size_t>(sh.m) * sh.inter;
    for (size_t i = 0; i < n; ++i)
      ASSERT_TRUE(from_bf16(want[i]) == from_bf16(want[i])) << "variant 0 left element " << i << " unwritten";
    for (int v = 0; v < kSwigluVariants; ++v) {
      if (swiglu_variant_tail_split(v) == 1) continue;
      for (const int clusters : {0, 1, 3, 7, 13, 40, 67}) {  // 0: the variant's own grid
        const std::string what = "m " + std::to_string(sh.m) + " inter " + std::to_string(sh.inter) + " k " +
                                 std::to_string(sh.k) + " variant " + std::to_string(v) + " clusters " +
                                 std::to_string(clusters);
        act.poison();
        gemm_swiglu(x.get(), w.get(), act.get(), sh.m, sh.inter, sh.k, nullptr, v, 2 * clusters);
        const auto got = act.download();
        ASSERT_EQ(std::memcmp(got.data(), want.data(), n * 2), 0) << what << ": differs from variant 0";
        for (size_t i = n; i < got.size(); ++i)
          ASSERT_FALSE(from_bf16(got[i]) == from_bf16(got[i])) << what << ": wrote past the end, element " << i;
      }
    }
  }
}

void expect_refused(const void* x, const void* w, const void* act, int32_t m, int32_t inter, int32_t k,
                    const std::string& names) {
  try {
    gemm_swiglu_check(x, w, act, m, inter, k);
    ADD_FAILURE() << "accepted m " << m << " inter " << inter << " k " << k << " (" << names << ")";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    EXPECT_NE(std::string(e.what()).find(names), std::string::npos) << e.what() << " does not name " << names;
  }
}

TEST(CudaGemmSwiglu, RefusesShapesItCannotTakeNamingTheValue) {
  DeviceBuffer<__nv_bfloat16> x(4096), w(4096), act(4096);
  EXPECT_NO_THROW(gemm_swiglu_check(x.get(), w.get(), act.get(), 5, 128, 64));
  expect_refused(x.get(), w.get(), act.get(), 5, 100, 64, "inter=100");
  expect_refused(x.get(), w.get(), act.get(), 5, 0, 64, "inter=0");
  expect_refused(x.get(), w.get(), act.get(), 5, 14336 + 64, 4096, "inter=14400");
  expect_refused(x.get(), w.get(), act.get(), 5, 128, 96, "k=96");
  expect_refused(x.get(), w.get(), act.get(), 5, 128, 0, "k=0");
  expect_refused(x.get(), w.get(), act.get(), 0, 128, 64, "m=0");
  expect_refused(x.get(), w.get(), act.get() + 1, 5, 128, 64, "act at");
  expect_refused(x.get(), w.get() + 3, act.get(), 5, 128, 64, "w at");
  EXPECT_THROW(gemm_swiglu(x.get(), w.get(), act.get(), 5, 100, 64, nullptr), Error);
  try {
    gemm_swiglu(x.get(), w.get(), act.get(), 5, 128, 64, nullptr, kSwigluVariants);
    ADD_FAILURE() << "accepted variant " << kSwigluVariants;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("variant=" + std::to_string(kSwigluVariants)), std::string::npos) << e.what();
  }
  try {
    gemm_swiglu(x.get(), w.get(), act.get(), 5, 128, 64, nullptr, 0, 3);  // variant 0: clusters of two
    ADD_FAILURE() << "accepted 3 blocks for clusters of two";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blocks=3"), std::string::npos) << e.what();
  }
}

// Fresh random x [rows, k] and w = [gate; up] [2 inter, k], room for gate_up and act, and a GEMM workspace.
struct GateUpBuffers {
  GateUpBuffers(int32_t rows, int32_t inter, int32_t k)
      : x(random_bf16(static_cast<size_t>(rows) * k, rng_, 1.0f, nullptr)),
        w(random_bf16(static_cast<size_t>(2) * inter * k, rng_, 0.1f, nullptr)),
        gate_up(static_cast<size_t>(rows) * 2 * inter),
        act(static_cast<size_t>(rows) * inter),
        ws(32 << 20) {}
  std::mt19937 rng_{std::random_device{}()};  // declared first: the buffers below are made from it
  DeviceBuffer<__nv_bfloat16> x, w, gate_up, act;
  DeviceBuffer<unsigned char> ws;
};

// act as run_gate_up_silu left it (fused: the kernel stored it; else gate_up holds the products and
// silu_mul is applied here) against silu(g) * u of the bf16 products cuBLASLt computes.
void expect_act_of_products(Gemm& gemm, bool fused, GateUpBuffers& b, int32_t m, int32_t inter, int32_t k,
                            const std::string& what) {
  if (fused) gemm.run(b.x.get(), b.w.get(), b.gate_up.get(), m, 2 * inter, k, false, nullptr);  // the products
  const auto gu = b.gate_up.download();
  if (!fused) silu_mul(b.gate_up.get(), m, inter, b.act.get(), nullptr);
  const auto got = b.act.download();
  std::vector<double> g(inter), u(inter);
  for (int32_t r = 0; r < m; ++r) {
    for (int32_t j = 0; j < inter; ++j) {
      g[j] = from_bf16(gu[static_cast<size_t>(r) * 2 * inter + j]);
      u[j] = from_bf16(gu[static_cast<size_t>(r) * 2 * inter + inter + j]);
    }
    check_row(got.data() + static_cast<size_t>(r) * inter, g.data(), u.data(), inter, std::ldexp(16.0, -16),
              what + " row " + std::to_string(r));
    if (::testing::Test::HasFailure()) return;
  }
}

// Without autotuning (fixed choices) the kernel is taken wherever it can be: nothing is timed.
TEST(CudaGemmSwiglu, GemmTakesItAboveTheSkinnyRangeOnlyWhenSwitchedOn) {
  constexpr int32_t inter = 256, k = 512, rows = 200;
  GateUpBuffers b(rows, inter, k);
  const bool hopper = device_runs_swiglu();
  for (const bool on : {false, true}) {
    Gemm gemm(b.ws.get(), 32 << 20);
    gemm.set_autotune(false);
    gemm.set_prefill_swiglu(on);
    for (const int32_t m : {kSkinnyMaxM, kSkinnyMaxM + 1, rows}) {
      const std::string what = std::string(on ? "on" : "off") + ", m " + std::to_string(m);
      b.act.poison();
      b.gate_up.poison();
      const bool fused =
          gemm.run_gate_up_silu(b.x.get(), b.w.get(), b.gate_up.get(), b.act.get(), m, inter, k, nullptr);
      const bool expect_fused = on && hopper && m > kSkinnyMaxM;
      if (fused != expect_fused) {
        ADD_FAILURE() << what << ": fused " << fused << ", expected " << expect_fused;
        continue;
      }
      expect_act_of_products(gemm, fused, b, m, inter, k, what);
      if (::testing::Test::HasFailure()) return;
    }
  }
}

// With autotuning the kernel's best variant is timed against the pair it replaces (the plain product +
// silu_mul) per row bucket and the faster is kept: whichever it is, run_gate_up_silu reports it, runs
// it, and act is right.
TEST(CudaGemmSwiglu, GemmKeepsTheFasterOfTheKernelAndThePair) {
  constexpr int32_t inter = 1024, k = 1024, rows = 512;
  GateUpBuffers b(rows, inter, k);
  const bool hopper = device_runs_swiglu();
  Gemm gemm(b.ws.get(), 32 << 20);
  gemm.set_prefill_swiglu(true);
  for (const int32_t m : {kSkinnyMaxM + 1, 200, rows}) {
    const std::string what = "m " + std::to_string(m);
    EXPECT_EQ(gemm.chosen_swiglu_variant(m, inter, k, rows), -2) << what << ": chosen before it was seen";
    b.act.poison();
    b.gate_up.poison();
    const bool fused =
        gemm.run_gate_up_silu(b.x.get(), b.w.get(), b.gate_up.get(), b.act.get(), m, inter, k, nullptr, rows);
    const int chosen = gemm.chosen_swiglu_variant(m, inter, k, rows);
    if (hopper) {
      EXPECT_GE(chosen, -1) << what << ": no choice recorded";
      EXPECT_LT(chosen, kSwigluVariants) << what;
    } else {
      EXPECT_EQ(chosen, -2) << what << ": a choice off compute capability 9.0";
    }
    EXPECT_EQ(fused, chosen >= 0) << what << ": run_gate_up_silu took " << (fused ? "the kernel" : "the pair")
                                  << " but the choice is " << chosen;
    expect_act_of_products(gemm, fused, b, m, inter, k, what);
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(CudaGemmSwiglu, GemmRunsTheForcedVariantAndRefusesOthers) {
  DeviceBuffer<unsigned char> ws(32 << 20);
  Gemm gemm(ws.get(), 32 << 20);
  for (const int bad : {-2, kSwigluVariants}) {
    try {
      gemm.set_swiglu_variant(bad);
      ADD_FAILURE() << "accepted variant " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
      EXPECT_NE(std::string(e.what()).find("variant=" + std::to_string(bad)), std::string::npos) << e.what();
    }
  }
  if (!device_runs_swiglu()) {
    SUCCEED() << "not compute capability 9.0";
    return;
  }
  constexpr int32_t inter = 256, k = 512, rows = 200;
  std::mt19937 rng(std::random_device{}());
  DeviceBuffer<__nv_bfloat16> x(random_bf16(static_cast<size_t>(rows) * k, rng, 1.0f, nullptr));
  DeviceBuffer<__nv_bfloat16> w(random_bf16(static_cast<size_t>(2) * inter * k, rng, 0.1f, nullptr));
  DeviceBuffer<__nv_bfloat16> act(static_cast<size_t>(rows) * inter), want(static_cast<size_t>(rows) * inter);
  gemm.set_prefill_swiglu(true);
  gemm_swiglu(x.get(), w.get(), want.get(), rows, inter, k, nullptr, kSwigluDefaultVariant);
  const auto expected = want.download();
  for (int v = 0; v < kSwigluVariants; ++v) {
    gemm.set_swiglu_variant(v);
    EXPECT_EQ(gemm.warm_prefill_swiglu(rows, inter, k, x.get(), w.get(), nullptr, act.get(), nullptr), v);
    act.poison();
    ASSERT_TRUE(gemm.run_gate_up_silu(x.get(), w.get(), nullptr, act.get(), rows, inter, k, nullptr)) << v;
    const auto got = act.download();
    EXPECT_EQ(std::memcmp(got.data(), expected.data(), got.size() * 2), 0) << "variant " << v;
  }
}

// The choice per row bucket is kept in a tuning cache like the other GEMM choices: choices() lists a
// timed one (never a forced one), and a Gemm given it as a preset takes it without timing and stores
// bitwise the same act; a preset of either path (-1: the pair) is run as given; a stale preset (a
// variant this build lacks) is timed instead.
TEST(CudaGemmSwiglu, ATimedChoiceIsListedAndAPresetOfItIsTakenUntimed) {
  if (!device_runs_swiglu()) {
    SUCCEED() << "not compute capability 9.0";
    return;
  }
  constexpr int32_t inter = 1024, k = 1024, rows = 512;
  GateUpBuffers b(rows, inter, k);
  auto swiglu_entries = [](const Gemm& g) {
    std::vector<GemmChoice> out;
    for (const GemmChoice& c : g.choices())
      if (c.path == GemmPath::kSwiglu) out.push_back(c);
    return out;
  };
  Gemm tuned(b.ws.get(), 32 << 20);
  tuned.set_prefill_swiglu(true);
  b.act.poison();
  const bool fused = tuned.run_gate_up_silu(b.x.get(), b.w.get(), b.gate_up.get(), b.act.get(), rows, inter, k, nullptr);
  const auto want = b.act.download();
  const int chosen = tuned.chosen_swiglu_variant(rows, inter, k);
  const auto listed = swiglu_entries(tuned);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed.front(), (GemmChoice{.path = GemmPath::kSwiglu, .m = rows, .n = inter, .k = k,
                                        .swiglu_variant = chosen}));
  for (const int preset : {chosen, -1, 7}) {
    const std::string what = "preset " + std::to_string(preset);
    Gemm g(b.ws.get(), 32 << 20);
    g.set_prefill_swiglu(true);
    for (GemmChoice c : tuned.choices()) {
      if (c.path == GemmPath::kSwiglu) c.swiglu_variant = preset;
      g.preset(c);
    }
    b.act.poison();
    const bool f = g.run_gate_up_silu(b.x.get(), b.w.get(), b.gate_up.get(), b.act.get(), rows, inter, k, nullptr);
    EXPECT_EQ(g.num_timed_shapes(), 0) << what;
    EXPECT_EQ(g.chosen_swiglu_variant(rows, inter, k), preset) << what;
    EXPECT_EQ(f, preset >= 0) << what;
    if (preset == chosen) {
      EXPECT_EQ(f, fused);
      const auto got = b.act.download();
      EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * 2), 0) << what << ": act differs from the tuned run";
    } else {
      expect_act_of_products(g, f, b, rows, inter, k, what);
    }
  }
  Gemm stale(b.ws.get(), 32 << 20);
  stale.set_prefill_swiglu(true);
  stale.preset(GemmChoice{.path = GemmPath::kSwiglu, .m = rows, .n = inter, .k = k, .swiglu_variant = kSwigluVariants});
  stale.warm_prefill_swiglu(rows, inter, k, b.x.get(), b.w.get(), b.gate_up.get(), b.act.get(), nullptr);
  EXPECT_GT(stale.num_timed_shapes(), 0) << "a stale preset was taken";
  EXPECT_GE(stale.chosen_swiglu_variant(rows, inter, k), -1);
  EXPECT_LT(stale.chosen_swiglu_variant(rows, inter, k), kSwigluVariants);
  Gemm forced(b.ws.get(), 32 << 20);
  forced.set_prefill_swiglu(true);
  forced.set_swiglu_variant(3);
  forced.warm_prefill_swiglu(rows, inter, k, b.x.get(), b.w.get(), b.gate_up.get(), b.act.get(), nullptr);
  EXPECT_TRUE(swiglu_entries(forced).empty()) << "a forced variant was listed as a choice";
}

}  // namespace
}  // namespace tessera::cuda::test
