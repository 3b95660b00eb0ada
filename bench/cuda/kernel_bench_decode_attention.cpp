// tessera_cuda_kernel_bench's decode attention rows: the decode kernels (tensor-core, CUDA-core and
// their variants) per shape and split count, alone and as the runner's attention stage, each figure
// next to the copy bandwidth measured in the same run. Benchmark code only.
#include <cuda_runtime.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "bench/cuda/decode_bench_batch.h"
#include "bench/cuda/kernel_bench_util.h"
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention_decode.cuh"
#include "kernels/cuda/attention_decode_tma.cuh"
#include "kernels/cuda/attention_prefill_tc.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/fill_random.cuh"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemm_skinny.cuh"
#include "kernels/cuda/gemv.cuh"
#include "kernels/cuda/qkv_post.cuh"
#include "kernels/cuda/rmsnorm.cuh"
#include "kernels/cuda/silu_mul.cuh"

namespace tessera::bench::kernels {

using namespace tessera::cuda;

double decode_graph_median_s(AttentionArgs a, const std::vector<__nv_bfloat16*>& kv, bool tma,
                             const DecodeDevice& device, cudaStream_t s) {
  const int copies = static_cast<int>(kv.size() / 2);
  std::vector<cudaGraphExec_t> exec(copies);
  for (int c = 0; c < copies; ++c) {
    a.k_cache = kv[2 * c];
    a.v_cache = kv[2 * c + 1];
    cudaGraph_t g = nullptr;
    CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    if (tma)
      paged_attention_decode_tma(a, device, s);
    else
      paged_attention_decode_tc(a, 1, s);
    CUDA_CHECK(cudaStreamEndCapture(s, &g));
    CUDA_CHECK(cudaGraphInstantiate(&exec[c], g, 0));
    CUDA_CHECK(cudaGraphDestroy(g));
  }
  const double t = median_s(s, 20, [&](int i) { CUDA_CHECK(cudaGraphLaunch(exec[i % copies], s)); });
  for (auto e : exec) CUDA_CHECK(cudaGraphExecDestroy(e));
  return t;
}

// The decode kernel on the 8B shape (32 q / 8 kv heads, head_dim 128, block 16): % of copy bandwidth
// for its heuristic's split count and the neighbouring powers of two. K/V live in enough copies
// (>= 1 GiB together) that each timed launch reads a copy L2 does not hold.
// `only_shape` (batch, context; 0 = all) runs one of the shapes (a single row to profile).
void bench_decode_attention(const DeviceLimits& lim, cudaStream_t s, std::pair<int32_t, int32_t> only_shape) {
  constexpr int32_t hq = DecodeBenchBatch::kHq, hkv = DecodeBenchBatch::kHkv, D = DecodeBenchBatch::kD,
                    bs = DecodeBenchBatch::kBs;
  const DecodeDevice device = decode_device(0);
  const int32_t sms = device.sm_count;
  for (const auto& [batch, ctx] : std::vector<std::pair<int32_t, int32_t>>{{1, 32768}, {64, 1024}, {16, 8192}, {1, 4096}, {1, 512}}) {
    if (only_shape.first > 0 && (batch != only_shape.first || ctx != only_shape.second)) continue;
    DecodeBenchBatch w(std::vector<int32_t>(batch, ctx), 256, s);
    AttentionArgs& a = w.a;
    const std::vector<__nv_bfloat16*>& kv = w.kv;
    const int copies = w.copies;
    const int32_t blocks_per_seq = w.blocks_per_seq;
    const std::vector<int32_t>& tables = w.tables;
    __nv_bfloat16* q = w.q;
    const double kv_bytes = w.kv_bytes;
    const int32_t hs = attention_decode_splits(batch, hq, hkv, D, sms, ctx);
    nlohmann::json row{{"kernel", "attention_decode"}, {"batch", batch}, {"context", ctx}, {"kv_MB", kv_bytes / 1e6},
                       {"kv_copies", copies}, {"heuristic_splits", hs}};
    // Short contexts (latency-bound, few blocks): every power of two up to 16 splits.
    const std::vector<int32_t> sweep = ctx <= 4096 ? std::vector<int32_t>{1, 2, 4, 8, 16}
                                                   : std::vector<int32_t>{std::max(1, hs / 2), hs, std::min(256, hs * 2)};
    for (int32_t sp : sweep) {
      a.splits = sp;
      const double t = median_s(s, 20, [&](int i) {
        a.k_cache = kv[2 * (i % copies)];
        a.v_cache = kv[2 * (i % copies) + 1];
        paged_attention_decode(a, device, s);
      });
      row["splits_" + std::to_string(sp) + "_us"] = t * 1e6;
      row["splits_" + std::to_string(sp) + "_pct_bw"] = 100.0 * kv_bytes / t / lim.copy_bytes_per_s;
    }
    // The tensor-core kernel with 1, 2, 4 kv heads per block at the heuristic's splits.
    for (int32_t sp : {hs})
      for (int32_t kvb : {1, 2, 4}) {
        a.splits = sp;
        const double t = median_s(s, 20, [&](int i) {
          a.k_cache = kv[2 * (i % copies)];
          a.v_cache = kv[2 * (i % copies) + 1];
          paged_attention_decode_tc(a, kvb, s);
        });
        const std::string k = "tc_kv" + std::to_string(kvb) + "_splits_" + std::to_string(sp);
        row[k + "_us"] = t * 1e6;
        row[k + "_pct_bw"] = 100.0 * kv_bytes / t / lim.copy_bytes_per_s;
      }
    // The TMA kernel (attention_decode_tma.cuh) against the tensor-core kernel it replaces (1 kv head
    // per block), alternating mma, tma, mma, tma at each split count (the first-timed artifact). Each
    // launch is replayed from a CUDA graph (one per K/V copy), so the TMA launch's host work (tensor
    // map encoding) stays out of the figure, as in the engine's decode graphs.
    if (attention_decode_tma_takes(a, device)) {
      const std::vector<int32_t> tsweep = ctx <= 4096 ? std::vector<int32_t>{1, 2, 4, 8, 16}
                                                      : std::vector<int32_t>{std::max(1, hs / 2), hs, std::min(256, hs * 2)};
      for (int32_t sp : tsweep)
        for (int round = 1; round <= 2; ++round)
          for (const bool tma : {false, true}) {
            a.splits = sp;
            const double t = decode_graph_median_s(a, kv, tma, device, s);
            const std::string k = std::string(tma ? "tma" : "mma") + "_graph_splits_" + std::to_string(sp) + "_r" +
                                  std::to_string(round);
            row[k + "_us"] = t * 1e6;
            row[k + "_pct_bw"] = 100.0 * kv_bytes / t / lim.copy_bytes_per_s;
          }
    }
    {  // the CUDA-core kernel (the tensor-core path's predecessor) at the heuristic's splits
      a.splits = hs;
      const double t = median_s(s, 20, [&](int i) {
        a.k_cache = kv[2 * (i % copies)];
        a.v_cache = kv[2 * (i % copies) + 1];
        paged_attention_decode_cuda_cores(a, s);
      });
      row["cuda_cores_splits_" + std::to_string(hs) + "_us"] = t * 1e6;
      row["cuda_cores_splits_" + std::to_string(hs) + "_pct_bw"] = 100.0 * kv_bytes / t / lim.copy_bytes_per_s;
    }
    // The decode chain's attention stage as the runner runs it: qkv_post + the decode kernel (+ merge)
    // against the fused launch on the raw qkv rows, at the heuristic's splits (short contexts: every
    // power of two up to 16). Each new key goes into the last position of its sequence.
    std::vector<int32_t> pos(batch, ctx - 1);
    std::vector<int64_t> slots(batch);
    for (int32_t b = 0; b < batch; ++b)
      slots[b] = static_cast<int64_t>(tables[b * blocks_per_seq + (ctx - 1) / bs]) * bs + (ctx - 1) % bs;
    std::vector<float> freq(D / 2);
    for (int32_t i = 0; i < D / 2; ++i) freq[i] = std::pow(500000.0f, -2.0f * i / D);
    int32_t* d_pos = nullptr;
    int64_t* d_slots = nullptr;
    float* d_freq = nullptr;
    int32_t* counters = nullptr;
    const int64_t ncount = attention_decode_counters(batch, hq, hkv);
    CUDA_CHECK(cudaMalloc(&d_pos, batch * 4));
    CUDA_CHECK(cudaMalloc(&d_slots, batch * 8));
    CUDA_CHECK(cudaMalloc(&d_freq, D / 2 * 4));
    CUDA_CHECK(cudaMalloc(&counters, ncount * 4));
    CUDA_CHECK(cudaMemset(counters, 0, ncount * 4));
    CUDA_CHECK(cudaMemcpy(d_pos, pos.data(), batch * 4, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(d_slots, slots.data(), batch * 8, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(d_freq, freq.data(), D / 2 * 4, cudaMemcpyHostToDevice));
    const std::vector<int32_t> fsweep = ctx <= 4096 ? std::vector<int32_t>{1, 2, 4, 8, 16} : std::vector<int32_t>{hs};
    for (int32_t sp : fsweep) {
      a.splits = sp;
      const double tu = median_s(s, 20, [&](int i) {
        a.k_cache = kv[2 * (i % copies)];
        a.v_cache = kv[2 * (i % copies) + 1];
        QkvPostArgs qp;
        qp.qkv = q;  // rewritten in place each call: RoPE keeps the rows' norms, so values stay sane
        qp.positions = d_pos;
        qp.inv_freq = d_freq;
        qp.slot_mapping = d_slots;
        qp.k_cache = kv[2 * (i % copies)];
        qp.v_cache = kv[2 * (i % copies) + 1];
        qp.tokens = batch;
        qp.hq = hq;
        qp.hkv = hkv;
        qp.head_dim = D;
        qkv_post(qp, s);
        paged_attention_decode(a, device, s);
      });
      const double tf = median_s(s, 20, [&](int i) {
        a.k_cache = kv[2 * (i % copies)];
        a.v_cache = kv[2 * (i % copies) + 1];
        DecodeQkvArgs f;
        f.k_cache = kv[2 * (i % copies)];
        f.v_cache = kv[2 * (i % copies) + 1];
        f.inv_freq = d_freq;
        f.counters = counters;
        f.num_counters = ncount;
        paged_attention_decode_fused(a, f, s);
      });
      const std::string k = "qkv_post_plus_splits_" + std::to_string(sp), kf = "fused_splits_" + std::to_string(sp);
      row[k + "_us"] = tu * 1e6;
      row[k + "_pct_bw"] = 100.0 * kv_bytes / tu / lim.copy_bytes_per_s;
      row[kf + "_us"] = tf * 1e6;
      row[kf + "_pct_bw"] = 100.0 * kv_bytes / tf / lim.copy_bytes_per_s;
    }
    std::cout << row.dump() << std::endl;
    for (void* p : {(void*)d_pos, (void*)d_slots, (void*)d_freq, (void*)counters}) cudaFree(p);
  }
}

}  // namespace tessera::bench::kernels
