// RoPE inverse frequencies of a model (default, linear or llama3 scaling), in double precision so
// the angle position * inv_freq is exact to well below fp32 at any position.
// It must never depend on a device: the CPU and CUDA runners both start from this table.
#pragma once

#include <vector>

#include "model/model_config.h"

namespace tessera {

// head_dim / 2 entries: inv_freq[i] = theta^(-2i/head_dim), then scaled as config.rope_scaling says.
std::vector<double> rope_inv_frequencies(const ModelConfig& config);

}  // namespace tessera
