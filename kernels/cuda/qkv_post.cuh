// The attention input stage on the GPU, fused into one pass over the fused q/k/v projection:
//   + bias (Qwen2, optional), per-head RMSNorm of q and k (Qwen3, optional), rotary embedding of q and
//   k (rotate-half layout; inv_freq already carries the default/linear/llama3 scaling), then k and v
//   written into the paged KV cache at slot_mapping[t] (slot = block * block_size + offset; < 0 skips).
// qkv: [tokens, (hq + 2*hkv) * head_dim] bf16 (or fp32), q and k rewritten in place.
// Caches: [num_slots, hkv, head_dim] of the same type. head_dim is 64, 128 or 256. Never allocates.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tessera::cuda {

// How qkv_post's threads share the work; every layout stores the same bits. kAuto: one head per warp
// for steps of fewer than kQkvPostWideTokens tokens (latency counts), else four pairs per lane without
// a q/k norm and two heads per warp with one. The others are for benchmarks and tests.
enum class QkvPostLayout : int32_t {
  kAuto = 0,
  kOneHeadPerWarp = 1,     // a lane owns the rotary pairs (p, p + head_dim/2), p = lane + 32 j, of its head
  kTwoHeadsPerWarp = 2,    // the same for two heads (they share the lane's rotary cos/sin)
  kFourHeadsPerWarp = 4,
  kFourPairsPerLane = 8,   // a lane holds 4 consecutive pairs of one head; no q/k norm only
};
constexpr int32_t kQkvPostWideTokens = 64;

template <typename T>
struct QkvPostArgsT {
  T* qkv = nullptr;
  const T* bias = nullptr;      // [(hq + 2*hkv) * head_dim] or null
  const T* q_norm = nullptr;    // [head_dim] or null
  const T* k_norm = nullptr;    // [head_dim] or null (set together with q_norm)
  float norm_eps = 1e-6f;
  const int32_t* positions = nullptr;       // [tokens]
  const float* inv_freq = nullptr;          // [head_dim / 2]
  const int64_t* slot_mapping = nullptr;    // [tokens]
  T* k_cache = nullptr;
  T* v_cache = nullptr;
  int32_t tokens = 0;
  int32_t hq = 0;
  int32_t hkv = 0;
  int32_t head_dim = 0;
  QkvPostLayout layout = QkvPostLayout::kAuto;
};
// The serving element type (bf16); QkvPostArgsT<float> is the exact (fp32) mode's.
using QkvPostArgs = QkvPostArgsT<__nv_bfloat16>;

void qkv_post(const QkvPostArgs& args, cudaStream_t stream);
void qkv_post(const QkvPostArgsT<float>& args, cudaStream_t stream);

}  // namespace tessera::cuda
