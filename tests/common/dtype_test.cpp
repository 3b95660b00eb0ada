// bf16 and fp16 conversions round to nearest even and agree with exact values.
#include "common/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

namespace tessera {

TEST(DType, Bf16RoundTripsExactValues) {
  for (float v : {0.0f, 1.0f, -2.5f, 65280.0f, 1.0f / 128}) EXPECT_EQ(bf16_to_f32(f32_to_bf16(v)), v);
}

TEST(DType, Bf16RoundsToNearestEven) {
  // 1 + 2^-8 lies exactly between two bf16 values (1 and 1 + 2^-7): ties go to even (1).
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 1.0f / 256)), 1.0f);
  // 1 + 3 * 2^-8 ties between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 3.0f / 256)), 1.0f + 1.0f / 64);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(DType, F16MatchesCompilerHalfOnRandomValues) {
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> mag(-20.0f, 16.0f);
  for (int i = 0; i < 100000; ++i) {
    float v = std::ldexp(1.0f + (rng() % 1024) / 1024.0f + (rng() % 7) * 1e-5f, static_cast<int>(mag(rng)));
    if (rng() & 1) v = -v;
    const _Float16 ref = static_cast<_Float16>(v);
    uint16_t ref_bits;
    std::memcpy(&ref_bits, &ref, 2);
    ASSERT_EQ(f32_to_f16(v).bits, ref_bits) << v;
    ASSERT_EQ(f16_to_f32(f16{ref_bits}), static_cast<float>(ref)) << v;
  }
}

}  // namespace tessera
