// gemv_silu_mul (the MLP's gate/up gemv storing silu(gate) * up) against what it replaces: the plain
// gemv into gate_up followed by silu_mul, bitwise, in every variant that supports it, for 1-8 rows,
// with and without PDL; column counts that leave a partial last block checked against the host
// reference; Gemm::run_gate_up_silu fusing exactly when its chosen variant can. Runs on a GPU only.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "common/error.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemv.cuh"
#include "kernels/cuda/silu_mul.cuh"
#include "tests/kernels/cuda/device_buffer.h"

namespace tessera::cuda::test {
namespace {

uint16_t bits(__nv_bfloat16 v) {
  uint16_t b;
  std::memcpy(&b, &v, 2);
  return b;
}

// Bitwise equality of two bf16 vectors (NaN poison included), naming the first difference.
void expect_same_bits(const std::vector<__nv_bfloat16>& got, const std::vector<__nv_bfloat16>& want,
                      const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_EQ(bits(got[i]), bits(want[i])) << what << ": element " << i << " of " << got.size() << " is "
                                           << from_bf16(got[i]) << ", want " << from_bf16(want[i]);
}

TEST(CudaGemvSiluMul, StoresBitwiseWhatGemvThenSiluMulStoreInEverySupportedVariant) {
  std::mt19937 rng(std::random_device{}());
  for (int32_t k : {1304, 4104}) {  // 4104: two split-K chunks and a tail
    for (int32_t m : {1, 2, 3, 5, 8}) {
      const int32_t inter = 1016;  // silu_mul's reference needs a multiple of 8
      DeviceBuffer<__nv_bfloat16> x(random_bf16(static_cast<size_t>(m) * k, rng, 1.0f, nullptr));
      DeviceBuffer<__nv_bfloat16> w(random_bf16(static_cast<size_t>(2) * inter * k, rng, 1.0f, nullptr));
      DeviceBuffer<__nv_bfloat16> gate_up(static_cast<size_t>(m) * 2 * inter), want(static_cast<size_t>(m) * inter),
          act(static_cast<size_t>(m) * inter);
      for (int v = kGemvFirstSplitK; v < kGemvVariants; ++v) {
        if (!gemv_silu_mul_supported(v)) continue;
        gemv(x.get(), w.get(), gate_up.get(), m, 2 * inter, k, false, v, nullptr);
        silu_mul(gate_up.get(), m, inter, want.get(), nullptr);
        const auto expected = want.download();
        for (bool pdl : {true, false}) {
          act.poison();
          gemv_silu_mul(x.get(), w.get(), act.get(), m, inter, k, v, nullptr, pdl);
          expect_same_bits(act.download(), expected,
                           "m " + std::to_string(m) + " k " + std::to_string(k) + " variant " + std::to_string(v) +
                               (pdl ? "" : " without PDL"));
        }
      }
    }
  }
}

TEST(CudaGemvSiluMul, PartialLastBlockMatchesTheHostReference) {
  std::mt19937 rng(std::random_device{}());
  const int32_t m = 3, k = 1304, inter = 1013;  // odd: every variant's last block is partial
  std::vector<float> x_f, w_f;
  DeviceBuffer<__nv_bfloat16> x(random_bf16(static_cast<size_t>(m) * k, rng, 1.0f, &x_f));
  DeviceBuffer<__nv_bfloat16> w(random_bf16(static_cast<size_t>(2) * inter * k, rng, 1.0f, &w_f));
  DeviceBuffer<__nv_bfloat16> gate_up(static_cast<size_t>(m) * 2 * inter), act(static_cast<size_t>(m) * inter + 64);
  for (int v = kGemvFirstSplitK + 1; v < kGemvVariants; ++v) {
    ASSERT_TRUE(gemv_silu_mul_supported(v)) << v;
    gemv(x.get(), w.get(), gate_up.get(), m, 2 * inter, k, false, v, nullptr);  // the plain products, bf16
    const auto want = silu_mul_reference(to_float(gate_up.download()), m, inter);
    act.poison();
    gemv_silu_mul(x.get(), w.get(), act.get(), m, inter, k, v, nullptr);
    const auto got = act.download();
    int off_by_more_than_an_ulp = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      const float g = from_bf16(got[i]);
      ASSERT_TRUE(g == g) << "variant " << v << " left element " << i << " unwritten";
      if (std::fabs(g - want[i]) > std::fabs(want[i]) * (1.0f / 128) + 1e-30f) ++off_by_more_than_an_ulp;
    }
    EXPECT_EQ(off_by_more_than_an_ulp, 0) << "variant " << v;  // host and device expf may differ by an ulp
    for (size_t i = want.size(); i < got.size(); ++i)
      ASSERT_EQ(bits(got[i]), 0xFFFF) << "variant " << v << " wrote past the output, element " << i;
  }
}

TEST(CudaGemvSiluMul, RefusesVariantsWithoutRowPairsAndBadShapes) {
  DeviceBuffer<__nv_bfloat16> x(64), w(2 * 64 * 64), act(64);
  for (int v = 0; v <= kGemvFirstSplitK; ++v) {
    EXPECT_FALSE(gemv_silu_mul_supported(v)) << v;
    EXPECT_THROW(gemv_silu_mul(x.get(), w.get(), act.get(), 1, 64, 64, v, nullptr), Error) << v;
  }
  EXPECT_FALSE(gemv_silu_mul_supported(kGemvVariants));
  EXPECT_THROW(gemv_silu_mul(x.get(), w.get(), act.get(), 9, 64, 64, kGemvFirstSplitK + 1, nullptr), Error);
  EXPECT_THROW(gemv_silu_mul(x.get(), w.get(), act.get(), 1, 64, 60, kGemvFirstSplitK + 1, nullptr), Error);
}

// Through the autotuner: fused exactly when the plain projection's chosen path is a supporting gemv
// variant; either way the result is bitwise what run() + silu_mul gives.
TEST(CudaGemmGateUpSilu, FusesExactlyWhenTheChosenVariantCanAndMatchesTheUnfusedPath) {
  std::mt19937 rng(std::random_device{}());
  for (int32_t m : {1, 4, 8, 64}) {
    const int32_t inter = 2048, k = 1024;
    DeviceBuffer<__nv_bfloat16> x(random_bf16(static_cast<size_t>(m) * k, rng, 1.0f, nullptr));
    DeviceBuffer<__nv_bfloat16> w(random_bf16(static_cast<size_t>(2) * inter * k, rng, 1.0f, nullptr));
    DeviceBuffer<__nv_bfloat16> gate_up(static_cast<size_t>(m) * 2 * inter), act(static_cast<size_t>(m) * inter),
        want_gu(static_cast<size_t>(m) * 2 * inter), want_act(static_cast<size_t>(m) * inter);
    DeviceBuffer<char> ws(32 << 20);
    Gemm gemm(ws.get(), 32 << 20);
    gemm.run(x.get(), w.get(), want_gu.get(), m, 2 * inter, k, false, nullptr);  // chooses the path
    silu_mul(want_gu.get(), m, inter, want_act.get(), nullptr);
    const int v = gemm.chosen_gemv_variant(m, 2 * inter, k, false);
    act.poison();
    gate_up.poison();
    const bool fused = gemm.run_gate_up_silu(x.get(), w.get(), gate_up.get(), act.get(), m, inter, k, nullptr);
    EXPECT_EQ(fused, v >= 0 && gemv_silu_mul_supported(v) && gemm.chosen_skinny_variant(m, 2 * inter, k, false) < 0)
        << "m " << m << " variant " << v;
    if (fused) {
      expect_same_bits(act.download(), want_act.download(), "fused act, m " + std::to_string(m));
    } else {
      expect_same_bits(gate_up.download(), want_gu.download(), "unfused gate_up, m " + std::to_string(m));
    }
    if (m > kGemvMaxM) {
      EXPECT_FALSE(fused);
    }
  }
}

}  // namespace
}  // namespace tessera::cuda::test
