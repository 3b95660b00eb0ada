// --dtype of serve and generate: the element type the model runner computes in. It must never look
// at the device itself: the caller passes the resolved device ("cpu" or "cuda").
//   cuda: auto (bf16 whatever the checkpoint stores, as vLLM does on GPUs) | bfloat16 | float32 (the
//         exact mode: fp32 weights, activations, KV cache and GEMMs, matching the CPU engine);
//   cpu:  auto | float32 (the CPU engine always computes in fp32); bfloat16 is refused by name.
#pragma once

#include <string>

#include "common/dtype.h"

namespace tessera::cli {

DType runner_dtype(const std::string& flag, const std::string& device);

}  // namespace tessera::cli
