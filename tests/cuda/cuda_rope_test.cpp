// RoPE inverse-frequency tables of the CUDA runner: default, linear and llama3 scaling against values
// computed here from the published formulas (in double), including the smoothing band of llama3.
#include <gtest/gtest.h>

#include <cmath>

#include "model/cuda_rope.h"

namespace tessera::cuda {
namespace {

ModelConfig config(int32_t head_dim, float theta) {
  ModelConfig c;
  c.head_dim = head_dim;
  c.rope_theta = theta;
  return c;
}

TEST(CudaRope, DefaultFrequenciesFollowTheta) {
  const auto f = rope_inv_freq(config(128, 500000.0f));
  ASSERT_EQ(f.size(), 64u);
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(f[i], std::pow(500000.0, -2.0 * i / 128), 1e-6 * std::max(1.0, double(f[i])));
}

TEST(CudaRope, LinearScalingDividesEveryFrequency) {
  ModelConfig c = config(64, 10000.0f);
  c.rope_scaling.type = RopeScaling::Type::kLinear;
  c.rope_scaling.factor = 4.0f;
  const auto f = rope_inv_freq(c);
  for (int i = 0; i < 32; ++i) EXPECT_NEAR(f[i], std::pow(10000.0, -2.0 * i / 64) / 4.0, 1e-7);
}

TEST(CudaRope, Llama3KeepsHighFrequenciesScalesLowOnesAndSmoothsBetween) {
  ModelConfig c = config(128, 500000.0f);
  c.rope_scaling = RopeScaling{RopeScaling::Type::kLlama3, 8.0f, 1.0f, 4.0f, 8192};
  const auto f = rope_inv_freq(c);
  int kept = 0, scaled = 0, smoothed = 0;
  for (int i = 0; i < 64; ++i) {
    const double base = std::pow(500000.0, -2.0 * i / 128);
    const double wavelen = 2 * M_PI / base;
    double want;
    if (wavelen < 8192.0 / 4.0) {
      want = base, ++kept;
    } else if (wavelen > 8192.0 / 1.0) {
      want = base / 8.0, ++scaled;
    } else {
      const double smooth = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
      want = (1 - smooth) * base / 8.0 + smooth * base, ++smoothed;
    }
    EXPECT_NEAR(f[i], want, 1e-5 * want + 1e-9) << "i " << i;
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(scaled, 0);
  EXPECT_GT(smoothed, 0);
}

}  // namespace
}  // namespace tessera::cuda
