// Hopper (sm_90a) prefill attention on warpgroup MMA: the same function, arguments and tiles as
// attention_prefill_tc (128 query rows = 128/G tokens x G heads per block, paged K/V, causal, cached
// prefix), with S = Q·Kᵀ and O += P·V issued as wgmma by two warpgroups of 64 rows each, Q and K/V in
// 128-byte-swizzled shared memory. Only attention_prefill_tc.cu calls it (as its wgmma variants),
// and only on a device of compute capability 9.0. Never allocates.
#pragma once

#include <cuda_runtime.h>

#include "kernels/cuda/attention.cuh"

namespace tessera::cuda {

// Whether the current device runs the wgmma kernels (compute capability 9.0). Like the runner's path
// log, it assumes the build carries sm_90a code (TESSERA_CUDA_GENCODE's default does); in a build with
// only compute_90 PTX the kernel body is a trap.
bool attention_prefill_wgmma_available();

// Kernel shapes: 64 keys per stage at two blocks per SM; 128 keys at one; 64 or 128 keys at one block
// per SM with block b's softmax overlapping block b - 1's P·V on the tensor cores (three K/V stages;
// 128 keys fill 226 KB of shared memory at head_dim 128); the pipelined 64-key shape with Q·Kᵀ
// taking Q from registers; the ping-pong kernel of attention_prefill_wgmma_pingpong.cuh (128 keys, a
// producer warpgroup, mbarrier-guarded stages, the two warpgroups taking turns on the tensor cores);
// the same without the turns; the split-barrier ping-pong kernel of attention_prefill_wgmma_split.cuh
// (K and V behind their own barriers, completed by the hardware when the copies land, so the
// producer never waits for its own copies); the same without the turns; both again with the full key
// blocks copied by TMA; the last of those with the tile's lean edges (Q loaded without per-piece
// division by G, O written as 16-byte row pieces through shared memory).
enum class WgmmaShape {
  kKeys64,
  kKeys128,
  kPipelined64,
  kPipelined128,
  kPipelined64QRegs,
  kPingPong128,
  kPingPong128NoTurns,
  kSplit128,
  kSplit128NoTurns,
  kSplit128Tma,
  kSplit128TmaNoTurns,
  kSplit128TmaNoTurnsLeanEdges
};

// head_dim 64 or 128, G divides 128 (the caller checks).
void paged_attention_prefill_wgmma(const AttentionArgs& args, WgmmaShape shape, cudaStream_t stream);

}  // namespace tessera::cuda
