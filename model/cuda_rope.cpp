// rope_inv_freq: default / linear / llama3 frequency tables (the llama3 rule smooths between the
// low- and high-frequency wavelength bounds).
#include "model/cuda_rope.h"

#include <cmath>

namespace tessera::cuda {

std::vector<float> rope_inv_freq(const ModelConfig& c) {
  const int32_t d = c.head_dim;
  std::vector<float> f(d / 2);
  for (int32_t i = 0; i < d / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(d);
    f[i] = 1.0f / std::pow(c.rope_theta, exponent);
  }
  const RopeScaling& s = c.rope_scaling;
  if (s.type == RopeScaling::Type::kLinear) {
    for (float& v : f) v /= s.factor;
  } else if (s.type == RopeScaling::Type::kLlama3) {
    const float pi = 3.14159265358979323846f;
    const float old_len = static_cast<float>(s.original_max_position_embeddings);
    const float low_wavelen = old_len / s.low_freq_factor;
    const float high_wavelen = old_len / s.high_freq_factor;
    for (float& v : f) {
      const float wavelen = 2.0f * pi / v;
      if (wavelen < high_wavelen) continue;
      if (wavelen > low_wavelen) {
        v /= s.factor;
        continue;
      }
      const float smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      v = (1.0f - smooth) * v / s.factor + smooth * v;
    }
  }
  return f;
}

}  // namespace tessera::cuda
