// Rotary-embedding inverse frequencies for the CUDA runner: inv_freq[i] = theta^(-2i/d) with the
// config's scaling (none, linear, llama3) applied as Hugging Face does, in fp32. Host-only, pure.
#pragma once

#include <vector>

#include "model/model_config.h"

namespace tessera::cuda {

std::vector<float> rope_inv_freq(const ModelConfig& config);

}  // namespace tessera::cuda
