// RoPE inverse frequencies (see rope_frequencies.h); llama3 scaling as published with Llama 3.1.
#include "model/rope_frequencies.h"

#include <cmath>

namespace tessera {

std::vector<double> rope_inv_frequencies(const ModelConfig& c) {
  const int32_t half = c.head_dim / 2;
  std::vector<double> f(half);
  const RopeScaling& s = c.rope_scaling;
  for (int32_t i = 0; i < half; ++i) {
    double inv = 1.0 / std::pow(static_cast<double>(c.rope_theta), 2.0 * i / c.head_dim);
    if (s.type == RopeScaling::Type::kLinear) {
      inv /= s.factor;
    } else if (s.type == RopeScaling::Type::kLlama3) {
      const double pi = 3.14159265358979323846;
      const double wavelen = 2.0 * pi / inv;
      const double low_wavelen = s.original_max_position_embeddings / static_cast<double>(s.low_freq_factor);
      const double high_wavelen = s.original_max_position_embeddings / static_cast<double>(s.high_freq_factor);
      if (wavelen > low_wavelen) {
        inv /= s.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) /
                              (static_cast<double>(s.high_freq_factor) - s.low_freq_factor);
        inv = (1.0 - smooth) * inv / s.factor + smooth * inv;
      }
    }
    f[i] = inv;
  }
  return f;
}

}  // namespace tessera
