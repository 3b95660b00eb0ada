// Embedding lookup on the GPU: out[t, :] = table[ids[t], :] (bf16, or fp32 in the exact mode). Token
// ids are validated by the runner before upload; an id outside [0, vocab) writes a zero row rather
// than reading out of bounds. pdl: launched with programmatic dependent launch (for the row gather
// after the final norm; the first kernel of a step, after the input uploads, is launched plainly).
// Never allocates, never reads configuration.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tessera::cuda {

void embedding(const int32_t* ids, int32_t num_tokens, const __nv_bfloat16* table, int32_t vocab, int32_t hidden,
               __nv_bfloat16* out, cudaStream_t stream, bool pdl = false);
void embedding(const int32_t* ids, int32_t num_tokens, const float* table, int32_t vocab, int32_t hidden, float* out,
               cudaStream_t stream, bool pdl = false);

}  // namespace tessera::cuda
