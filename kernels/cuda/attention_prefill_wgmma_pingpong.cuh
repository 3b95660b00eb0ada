// Hopper (sm_90a) prefill attention, FlashAttention-3 ping-pong shape: the same function, arguments
// and tiles as attention_prefill_wgmma (128 query rows per block, two consumer warpgroups x 64 rows,
// 128 keys per stage, block b's softmax overlapping block b - 1's P·V), plus a producer warpgroup
// that fills three K/V stages with cp.async ahead of the consumers. The stages are guarded by per-stage
// full/empty mbarriers instead of a block-wide barrier, and the two consumer warpgroups take turns
// issuing their GEMMs (named barriers), so one warpgroup's softmax runs while the other's GEMMs hold
// the tensor cores. Only attention_prefill_wgmma.cu calls it, on compute capability 9.0. Never
// allocates.
#pragma once

#include <cuda_runtime.h>

#include "kernels/cuda/attention.cuh"

namespace tessera::cuda {

// head_dim 64 or 128, G divides 128 (the caller checks). turns false: the warpgroups issue their GEMMs
// without taking turns (the same kernel otherwise; a benchmark variant).
void paged_attention_prefill_wgmma_pingpong(const AttentionArgs& args, bool turns, cudaStream_t stream);

}  // namespace tessera::cuda
