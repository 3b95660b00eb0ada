// tessera_cuda_kernel_bench's qkv_post rows: Llama-3-8B-shaped steps (32 q / 8 kv heads of 128) of 64,
// 128, 256 and 4,096 tokens (decode batches to a prefill) in each layout (QkvPostLayout: 1, 2 or 4 heads
// per warp, 8 = 4 rotary pairs per lane), as % of the copy bandwidth measured in the same run (bytes:
// the projection read once, q and k written back in place, k and v written to the cache); the small
// steps are latency, not bandwidth, and their microseconds are what counts.
// Benchmark code only.
#include <cuda_runtime.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <iostream>
#include <numeric>
#include <vector>

#include "bench/cuda/kernel_bench_util.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/qkv_post.cuh"

namespace tessera::bench::kernels {

void bench_prefill_qkv_post(const DeviceLimits& lim, cudaStream_t s) {
  const int32_t tokens = 4096, hq = 32, hkv = 8, D = 128, heads = hq + 2 * hkv;  // buffers for the largest step
  __nv_bfloat16* qkv = alloc_random(static_cast<int64_t>(tokens) * heads * D, 21, s);
  __nv_bfloat16* kc = alloc_random(static_cast<int64_t>(tokens) * hkv * D, 22, s);
  __nv_bfloat16* vc = alloc_random(static_cast<int64_t>(tokens) * hkv * D, 23, s);
  std::vector<int32_t> pos(tokens);
  std::iota(pos.begin(), pos.end(), 0);
  std::vector<int64_t> slots(pos.begin(), pos.end());
  std::vector<float> inv_freq(D / 2);
  for (int32_t i = 0; i < D / 2; ++i) inv_freq[i] = static_cast<float>(1.0 / std::pow(500000.0, 2.0 * i / D));
  int32_t* d_pos = nullptr;
  int64_t* d_slots = nullptr;
  float* d_freq = nullptr;
  CUDA_CHECK(cudaMalloc(&d_pos, tokens * sizeof(int32_t)));
  CUDA_CHECK(cudaMalloc(&d_slots, tokens * sizeof(int64_t)));
  CUDA_CHECK(cudaMalloc(&d_freq, inv_freq.size() * sizeof(float)));
  CUDA_CHECK(cudaMemcpy(d_pos, pos.data(), tokens * sizeof(int32_t), cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(d_slots, slots.data(), tokens * sizeof(int64_t), cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(d_freq, inv_freq.data(), inv_freq.size() * sizeof(float), cudaMemcpyHostToDevice));
  cuda::QkvPostArgs a;
  a.qkv = qkv;
  a.positions = d_pos;
  a.inv_freq = d_freq;
  a.slot_mapping = d_slots;
  a.k_cache = kc;
  a.v_cache = vc;
  a.tokens = tokens;
  a.hq = hq;
  a.hkv = hkv;
  a.head_dim = D;
  for (const int32_t step_tokens : {64, 128, 256, tokens}) {
    a.tokens = step_tokens;
    // read every head; write q and k back (v without a bias is not rewritten) and k, v to the cache
    const double bytes = 2.0 * step_tokens * D * (heads + (hq + hkv) + 2.0 * hkv);
    for (cuda::QkvPostLayout layout : {cuda::QkvPostLayout::kOneHeadPerWarp, cuda::QkvPostLayout::kTwoHeadsPerWarp,
                                       cuda::QkvPostLayout::kFourHeadsPerWarp, cuda::QkvPostLayout::kFourPairsPerLane}) {
      a.layout = layout;
      // Each call rotates q and k once more: values stay bounded (a rotation), never zeros.
      const double t = median_s(s, 20, [&](int) { cuda::qkv_post(a, s); });
      std::cout << nlohmann::json{{"kernel", "prefill_qkv_post"}, {"tokens", step_tokens},
                                  {"layout", static_cast<int32_t>(layout)}, {"us", t * 1e6},
                                  {"pct_bw", 100.0 * bytes / t / lim.copy_bytes_per_s}}
                       .dump()
                << std::endl;
    }
  }
  for (void* p : {(void*)qkv, (void*)kc, (void*)vc, (void*)d_pos, (void*)d_slots, (void*)d_freq}) cudaFree(p);
}

}  // namespace tessera::bench::kernels
