// Decode attention on Hopper with the cache pages copied by the tensor-memory accelerator (TMA): the
// same work, splits, partial states and outputs as the tensor-core decode kernel
// (attention_decode_mma.cuh; GQA groups of 2-8 q heads as the rows of mma tiles), but each 16-key
// page of one kv head arrives as 2-D TMA boxes (16 rows x 64 elements, the page's token stride) into
// an mbarrier ring that one producer warp keeps full, instead of per-thread cp.async. Taken on
// compute capability 9.0 (sm_90a code) for GQA groups at head_dim 64/128 when the cache blocks hold
// a multiple of 16 keys; the other kernels stay the fallback and the reference. Never allocates.
#pragma once

#include <cuda_runtime.h>

#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention_decode.cuh"

namespace tessera::cuda {

// Whether paged_attention_decode_tma takes these arguments on `device`: compute capability 9.0, a
// GQA group (hq / hkv >= 2) at head_dim 64 or 128, block_size a multiple of 16. Pure: no device query.
bool attention_decode_tma_takes(const AttentionArgs& args, const DecodeDevice& device);

// Whether paged_attention_decode sends these arguments here: where it is taken, the launch has at
// least one block per SM at one split (num_tiles x hkv >= device.sm_count: batch decode, measured
// faster end to end at b64/1k), at any split count; few-block launches (b1/32k, b1/512) measured
// slower and keep the tensor-core kernel. Pure.
bool attention_decode_tma_default(const AttentionArgs& args, const DecodeDevice& device);

// Same contract as paged_attention_decode (attention_decode.cuh): every tile q_len <= 1, splits in
// [1, 1024] with o_part/ml_part for splits > 1, PDL-launched (copies the pages that hold only earlier
// steps' keys before waiting on the previous kernel). `device` is the device the stream's work runs
// on (decode_device). Throws cudaErrorInvalidValue (as a tessera::Error) on arguments it does not take
// (attention_decode_tma_takes false included: elsewhere than compute capability 9.0 the kernel is empty).
void paged_attention_decode_tma(const AttentionArgs& args, const DecodeDevice& device, cudaStream_t stream);

}  // namespace tessera::cuda
