// Hopper (sm_90a) prefill attention, the ping-pong kernel (attention_prefill_wgmma_pingpong.cuh) with
// its producer decoupled from the copies it issues: K and V of a key block sit behind their own
// full/empty mbarriers, a stage's full barrier is completed by the hardware when the producer's
// cp.async writes land (cp.async.mbarrier.arrive), so the producer goes on issuing the next block's
// copies instead of waiting for the last ones, and it issues K of block b + 1 before V of block b (the
// order the consumers need them in). S_b = Q·K_bᵀ starts once K_b has landed, and K_b's stage is given
// back as soon as S_b has been computed. Optionally the full key blocks are copied by TMA instead
// (a 2-D tensor map per cache, one box per 16 consecutive slots). Same function, arguments and tiles as the other wgmma
// shapes; only attention_prefill_wgmma.cu calls it, on compute capability 9.0. Never allocates.
#pragma once

#include <cuda_runtime.h>

#include "kernels/cuda/attention.cuh"

namespace tessera::cuda {

// head_dim 64 or 128, G divides 128 (the caller checks). turns false: the two consumer warpgroups
// issue their GEMMs without taking turns (a benchmark variant). tma: key blocks wholly inside the
// sequence are copied by the tensor-memory accelerator (2-D tensor maps of the caches, 16-slot boxes)
// instead of cp.async, when the cache block size is a multiple of 16 (otherwise cp.async as without).
void paged_attention_prefill_wgmma_split(const AttentionArgs& args, bool turns, bool tma, cudaStream_t stream);
// turns false, tma true, with the tile's lean edges (attention_prefill_wgmma_edges.cuh): the Q load
// without per-piece division by G, and O staged in shared memory and written as 16-byte row pieces.
void paged_attention_prefill_wgmma_split_lean(const AttentionArgs& args, cudaStream_t stream);

}  // namespace tessera::cuda
