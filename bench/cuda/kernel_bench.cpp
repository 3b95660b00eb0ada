// tessera_cuda_kernel_bench: kernel microbenchmarks on the 8B shape, each figure next to the limit
// measured in the same run (copy bandwidth, 8192³ matmul rate). Prints one JSON object per line:
//   projections at m=1 and 8 (cuBLASLt vs every gemv variant and the skinny tensor-core kernel; weights
//   rotated across copies so L2 holds none), the SiLU-fused down projection, cuBLASLt, every skinny
//   kernel variant and the L2-cold tuner's choice at m=64 (argument `projections`: only these), the
//   decode chain of 32 layers' projections (with norms; then with qkv_post and decode attention)
//   replayed from a graph with and without PDL, split-K variants and SiLU fusion,
//   prefill projections at m=4096 (% of the matmul rate), silu_mul and add_rmsnorm at 4096 rows,
//   decode attention (1 x 32k, 64 x 1k, 16 x 8k) for each split count, prefill attention (1 x 4096,
//   4 x 1024, and 1 x 512 after 3584 cached tokens; FLOPs count only the causal keys each query sees),
//   the decode kernel (attention_decode.cuh; 1 x 32k, 64 x 1k, 16 x 8k, 1 x 4k, 1 x 512, KV rotated across
//   copies), alone and as the runner's attention stage: qkv_post + kernel (+ merge) vs the fused launch.
// An optional argument runs one part: `projections` (the decode-sized projection rows),
// `--prefill-only` (m=4096 projections, elementwise rows, prefill attention), `decode_attention` (optionally
// `decode_attention BATCH CONTEXT`: one of its shapes), `chain`.
#include <cuda_runtime.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "bench/cuda/device_limits.h"
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention_decode.cuh"
#include "kernels/cuda/attention_prefill_tc.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/fill_random.cuh"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemm_skinny.cuh"
#include "kernels/cuda/gemv.cuh"
#include "kernels/cuda/qkv_post.cuh"
#include "kernels/cuda/rmsnorm.cuh"
#include "kernels/cuda/silu_mul.cuh"

using namespace tessera;
using namespace tessera::cuda;
using tessera::bench::DeviceLimits;
using tessera::bench::measure_device_limits;

namespace {

template <typename F>
double median_s(cudaStream_t s, int reps, F&& body) {
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  for (int i = 0; i < 3; ++i) body(i);
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    CUDA_CHECK(cudaEventRecord(a, s));
    body(i);
    CUDA_CHECK(cudaEventRecord(b, s));
    CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms * 1e-3);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

__nv_bfloat16* alloc_random(int64_t n, uint64_t seed, cudaStream_t s) {
  __nv_bfloat16* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, n * 2));
  fill_random_bf16(p, n, seed, 0.0f, 0.5f, s);
  return p;
}

// The decode kernel on the 8B shape (32 q / 8 kv heads, head_dim 128, block 16): % of copy bandwidth
// for its heuristic's split count and the neighbouring powers of two. K/V live in enough copies
// (>= 1 GiB together) that each timed launch reads a copy L2 does not hold.
// `only_shape` (batch, context; 0 = all) runs one of the shapes (a single row to profile).
void bench_decode_attention(const DeviceLimits& lim, cudaStream_t s, std::pair<int32_t, int32_t> only_shape = {0, 0}) {
  const int32_t hq = 32, hkv = 8, D = 128, bs = 16;
  int sms = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  for (const auto& [batch, ctx] : std::vector<std::pair<int32_t, int32_t>>{{1, 32768}, {64, 1024}, {16, 8192}, {1, 4096}, {1, 512}}) {
    if (only_shape.first > 0 && (batch != only_shape.first || ctx != only_shape.second)) continue;
    const int32_t blocks_per_seq = (ctx + bs - 1) / bs;
    const int64_t nblocks = static_cast<int64_t>(batch) * blocks_per_seq;
    const int64_t elems = nblocks * bs * hkv * D;
    const int copies = static_cast<int>(std::clamp<int64_t>((1LL << 30) / (elems * 4), 1, 16));
    std::vector<__nv_bfloat16*> kv;
    for (int c = 0; c < 2 * copies; ++c) kv.push_back(alloc_random(elems, 10 + c, s));
    const int64_t qstride = (hq + 2 * hkv) * D;
    __nv_bfloat16* q = alloc_random(batch * qstride, 3, s);
    std::vector<int32_t> tables(nblocks);
    std::iota(tables.begin(), tables.end(), 0);
    std::shuffle(tables.begin(), tables.end(), std::mt19937(1));
    std::vector<AttentionTile> tiles;
    for (int32_t b = 0; b < batch; ++b) tiles.push_back({b, b, 1, ctx - 1});
    int32_t* d_tables = nullptr;
    AttentionTile* d_tiles = nullptr;
    float *op = nullptr, *ml = nullptr;
    __nv_bfloat16* out = nullptr;
    CUDA_CHECK(cudaMalloc(&d_tables, nblocks * 4));
    CUDA_CHECK(cudaMemcpy(d_tables, tables.data(), nblocks * 4, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMalloc(&d_tiles, tiles.size() * sizeof(AttentionTile)));
    CUDA_CHECK(cudaMemcpy(d_tiles, tiles.data(), tiles.size() * sizeof(AttentionTile), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMalloc(&op, 256LL * batch * hq * D * 4));
    CUDA_CHECK(cudaMalloc(&ml, 256LL * batch * hq * 2 * 4));
    CUDA_CHECK(cudaMalloc(&out, static_cast<int64_t>(batch) * hq * D * 2));
    AttentionArgs a;
    a.q = q;
    a.q_row_stride = qstride;
    a.block_tables = d_tables;
    a.max_blocks_per_seq = blocks_per_seq;
    a.block_size = bs;
    a.tiles = d_tiles;
    a.num_tiles = batch;
    a.max_q_len = 1;
    a.hq = hq;
    a.hkv = hkv;
    a.head_dim = D;
    a.scale = 0.088f;
    a.tokens = batch;
    a.o_part = op;
    a.ml_part = ml;
    a.out = out;
    const double kv_bytes = 2.0 * elems * 2;
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
        paged_attention_decode(a, s);
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
        paged_attention_decode(a, s);
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
    for (void* p : {(void*)q, (void*)d_tables, (void*)d_tiles, (void*)op, (void*)ml, (void*)out, (void*)d_pos,
                    (void*)d_slots, (void*)d_freq, (void*)counters})
      cudaFree(p);
    for (auto* p : kv) cudaFree(p);
  }
}

// The projections of `layers` Llama-3-8B layers with their norms and activation (attention left out),
// each layer with its own weights (14 GB for 32: none stays in L2), replayed from a CUDA graph.
// Modes: gemv variants autotuned by Gemm (as the engine) or the best split-K variants (timed here over
// all layers' weights); pdl: the gemvs launched with programmatic dependent launch (the norms and
// silu_mul always are); fuse: SiLU-and-multiply inside the down gemv; attention: qkv_post + decode
// attention over a 512-token context added per layer (the engine's layer without embedding, lm_head
// and sampling; its bytes are not added to the bound). Prints ms per pass and % of copy bandwidth.
void bench_chain(cudaStream_t s, const DeviceLimits& lim, void* ws) {
  const int32_t H = 4096, I = 14336, QKV = 6144, layers = 32, ctx = 512, bs = 16, hq = 32, hkv = 8, D = 128;
  struct Layer {
    __nv_bfloat16 *qkv, *o, *gu, *down, *n1, *n2, *kc, *vc;
  };
  std::vector<Layer> L(layers);
  for (int i = 0; i < layers; ++i)
    L[i] = {alloc_random(int64_t{QKV} * H, 10 * i + 1, s), alloc_random(int64_t{H} * H, 10 * i + 2, s),
            alloc_random(int64_t{2} * I * H, 10 * i + 3, s), alloc_random(int64_t{H} * I, 10 * i + 4, s),
            alloc_random(H, 10 * i + 5, s),                    alloc_random(H, 10 * i + 6, s),
            alloc_random(int64_t{ctx} * hkv * D, 10 * i + 7, s), alloc_random(int64_t{ctx} * hkv * D, 10 * i + 8, s)};
  // One sequence at position ctx - 1 in blocks 0..ctx/bs-1.
  int32_t *d_pos = nullptr, *d_tables = nullptr;
  int64_t* d_slot = nullptr;
  float *inv_freq = nullptr, *o_part = nullptr, *ml_part = nullptr;
  AttentionTile* d_tile = nullptr;
  std::vector<int32_t> tables(ctx / bs);
  std::iota(tables.begin(), tables.end(), 0);
  std::vector<float> freq(D / 2);
  for (int32_t i = 0; i < D / 2; ++i) freq[i] = std::pow(500000.0f, -2.0f * i / D);
  const int32_t pos = ctx - 1;
  const int64_t slot = ctx - 1;
  const AttentionTile tile{0, 0, 1, ctx - 1};
  const int32_t splits = attention_splits(1, hq, hkv, D, 132, ctx), max_splits = 32;
  const int32_t decode_splits = attention_decode_splits(1, hq, hkv, D, 132, ctx);  // 8 at 512 keys
  int32_t* counters = nullptr;  // the fused launch's arrival counters
  CUDA_CHECK(cudaMalloc(&counters, attention_decode_counters(1, hq, hkv) * 4));
  CUDA_CHECK(cudaMemset(counters, 0, attention_decode_counters(1, hq, hkv) * 4));
  CUDA_CHECK(cudaMalloc(&d_pos, 4));
  CUDA_CHECK(cudaMalloc(&d_slot, 8));
  CUDA_CHECK(cudaMalloc(&d_tables, tables.size() * 4));
  CUDA_CHECK(cudaMalloc(&d_tile, sizeof(AttentionTile)));
  CUDA_CHECK(cudaMalloc(&inv_freq, freq.size() * 4));
  CUDA_CHECK(cudaMalloc(&o_part, int64_t{max_splits} * hq * D * 4));
  CUDA_CHECK(cudaMalloc(&ml_part, int64_t{max_splits} * hq * 2 * 4));
  CUDA_CHECK(cudaMemcpy(d_pos, &pos, 4, cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(d_slot, &slot, 8, cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(d_tables, tables.data(), tables.size() * 4, cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(d_tile, &tile, sizeof(tile), cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(inv_freq, freq.data(), freq.size() * 4, cudaMemcpyHostToDevice));
  __nv_bfloat16* attn = alloc_random(int64_t{hq} * D, 13, s);
  __nv_bfloat16* proj = alloc_random(H, 7, s);
  __nv_bfloat16* hidden = alloc_random(H, 8, s);
  __nv_bfloat16* qkv = alloc_random(QKV, 9, s);
  __nv_bfloat16* gu = alloc_random(2 * I, 11, s);
  __nv_bfloat16* act = alloc_random(I, 12, s);
  float* residual = nullptr;
  CUDA_CHECK(cudaMalloc(&residual, H * 4));
  CUDA_CHECK(cudaMemset(residual, 0, H * 4));
  Gemm gemm(ws, 32u << 20);  // picks the variants (all gemv at m = 1)
  gemm.warm(1, QKV, H, false, hidden, L[0].qkv, qkv, s);
  gemm.warm(1, H, H, false, qkv, L[0].o, proj, s);
  gemm.warm(1, 2 * I, H, false, hidden, L[0].gu, gu, s);
  gemm.run_silu_mul(gu, act, L[0].down, proj, 1, H, I, s);
  const int v_qkv = gemm.chosen_gemv_variant(1, QKV, H, false), v_o = gemm.chosen_gemv_variant(1, H, H, false);
  const int v_gu = gemm.chosen_gemv_variant(1, 2 * I, H, false), v_down = gemm.chosen_gemv_variant(1, H, I, false);
  const int v_silu = gemm.chosen_silu_variant(1, H, I);
  // The fastest split-K variant per shape, each call on the next layer's weights (none in L2).
  auto best_splitk = [&](int32_t n, int32_t k, __nv_bfloat16* Layer::*wm, const __nv_bfloat16* x, void* y,
                         GemvInput in) {
    int best = kGemvFirstSplitK;
    double best_t = 1e30;
    for (int v = kGemvFirstSplitK; v < kGemvVariants; ++v) {
      const double t = median_s(s, 20, [&](int i) { gemv(x, L[i % layers].*wm, y, 1, n, k, false, v, s, in); });
      if (t < best_t) {
        best_t = t;
        best = v;
      }
    }
    return best;
  };
  const int s_qkv = best_splitk(QKV, H, &Layer::qkv, hidden, qkv, GemvInput::kPlain);
  const int s_o = best_splitk(H, H, &Layer::o, qkv, proj, GemvInput::kPlain);
  const int s_gu = best_splitk(2 * I, H, &Layer::gu, hidden, gu, GemvInput::kPlain);
  const int s_down = best_splitk(H, I, &Layer::down, act, proj, GemvInput::kPlain);
  const int s_silu = best_splitk(H, I, &Layer::down, gu, proj, GemvInput::kSiluMul);
  const double bytes = 2.0 * layers * (double(QKV) * H + double(H) * H + 2.0 * I * H + double(H) * I);
  nlohmann::json row{{"kernel", "decode_chain_projections"}, {"layers", layers},   {"gemv_qkv", v_qkv},
                     {"gemv_o", v_o},                         {"gemv_gate_up", v_gu}, {"gemv_down", v_down},
                     {"gemv_down_silu", v_silu},              {"weight_GB", bytes / 1e9},
                     {"splitk_qkv", s_qkv}, {"splitk_o", s_o}, {"splitk_gate_up", s_gu}, {"splitk_down", s_down},
                     {"splitk_down_silu", s_silu}, {"attention_splits", splits}, {"decode_splits", decode_splits}};
  struct Mode {
    const char* name;
    bool splitk, pdl, fuse, attention;
    int32_t attn_splits = 0;  // 0: the heuristic's (attention_splits); -1: qkv_post only, no attention
    int decode = 0;           // 1: qkv_post + attention_decode at its heuristic's splits; 2: the fused launch
  };
  for (const Mode md : {Mode{"plain", false, false, false, false}, Mode{"pdl", false, true, false, false},
                        Mode{"pdl_silu_fused", false, true, true, false}, Mode{"splitk", true, false, false, false},
                        Mode{"splitk_pdl", true, true, false, false}, Mode{"splitk_pdl_silu_fused", true, true, true, false},
                        Mode{"pdl_with_attention", false, true, false, true},
                        Mode{"pdl_with_qkv_post_only", false, true, false, true, -1},
                        Mode{"pdl_with_attention_8_splits", false, true, false, true, 8},
                        Mode{"pdl_with_attention_32_splits", false, true, false, true, 32},
                        Mode{"splitk_pdl_with_decode_attention", true, true, false, true, 0, 1},
                        Mode{"splitk_pdl_with_fused_decode_attention", true, true, false, true, 0, 2}}) {
    const bool pdl = md.pdl, fuse = md.fuse;
    const int a_qkv = md.splitk ? s_qkv : v_qkv, a_o = md.splitk ? s_o : v_o, a_gu = md.splitk ? s_gu : v_gu;
    const int a_down = md.splitk ? s_down : v_down, a_silu = md.splitk ? s_silu : v_silu;
    if (a_qkv < 0 || a_o < 0 || a_gu < 0 || a_down < 0 || (fuse && a_silu < 0)) continue;  // cuBLASLt won
    cudaGraph_t graph = nullptr;
    CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    for (const Layer& l : L) {
      add_rmsnorm(proj, residual, l.n1, hidden, 1, H, 1e-5f, false, s);
      gemv(hidden, l.qkv, qkv, 1, QKV, H, false, a_qkv, s, GemvInput::kPlain, pdl);
      const __nv_bfloat16* o_in = qkv;  // without attention the q part stands in for its output
      if (md.attention) {
        QkvPostArgs q;
        q.qkv = qkv;
        q.positions = d_pos;
        q.inv_freq = inv_freq;
        q.slot_mapping = d_slot;
        q.k_cache = l.kc;
        q.v_cache = l.vc;
        q.tokens = 1;
        q.hq = hq;
        q.hkv = hkv;
        q.head_dim = D;
        if (md.decode != 2) qkv_post(q, s);
        if (md.attn_splits >= 0) {  // -1: qkv_post alone
          AttentionArgs a;
          a.q = qkv;
          a.q_row_stride = QKV;
          a.k_cache = l.kc;
          a.v_cache = l.vc;
          a.block_tables = d_tables;
          a.max_blocks_per_seq = ctx / bs;
          a.block_size = bs;
          a.tiles = d_tile;
          a.num_tiles = 1;
          a.hq = hq;
          a.hkv = hkv;
          a.head_dim = D;
          a.scale = 0.088f;
          a.splits = md.attn_splits > 0 ? md.attn_splits : splits;
          a.tokens = 1;
          a.o_part = o_part;
          a.ml_part = ml_part;
          a.out = attn;
          a.max_q_len = 1;
          if (md.decode == 0) {
            paged_attention(a, s);
          } else {
            a.splits = decode_splits;
            if (md.decode == 1) {
              paged_attention_decode(a, s);
            } else {
              DecodeQkvArgs f;
              f.k_cache = l.kc;
              f.v_cache = l.vc;
              f.inv_freq = inv_freq;
              f.counters = counters;
              f.num_counters = attention_decode_counters(1, hq, hkv);
              paged_attention_decode_fused(a, f, s);
            }
          }
          o_in = attn;
        }
      }
      gemv(o_in, l.o, proj, 1, H, H, false, a_o, s, GemvInput::kPlain, pdl);
      add_rmsnorm(proj, residual, l.n2, hidden, 1, H, 1e-5f, false, s);
      gemv(hidden, l.gu, gu, 1, 2 * I, H, false, a_gu, s, GemvInput::kPlain, pdl);
      if (fuse) {
        gemv(gu, l.down, proj, 1, H, I, false, a_silu, s, GemvInput::kSiluMul, pdl);
      } else {
        silu_mul(gu, 1, I, act, s);
        gemv(act, l.down, proj, 1, H, I, false, a_down, s, GemvInput::kPlain, pdl);
      }
    }
    CUDA_CHECK(cudaStreamEndCapture(s, &graph));
    cudaGraphExec_t exec = nullptr;
    CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    CUDA_CHECK(cudaMemset(residual, 0, H * 4));
    const double t = median_s(s, 20, [&](int) { CUDA_CHECK(cudaGraphLaunch(exec, s)); });
    row[std::string(md.name) + "_ms"] = t * 1e3;
    row[std::string(md.name) + "_pct_bw"] = 100.0 * bytes / t / lim.copy_bytes_per_s;
    CUDA_CHECK(cudaGraphExecDestroy(exec));
    CUDA_CHECK(cudaGraphDestroy(graph));
  }
  std::cout << row.dump() << std::endl;
  for (const Layer& l : L)
    for (void* p : {(void*)l.qkv, (void*)l.o, (void*)l.gu, (void*)l.down, (void*)l.n1, (void*)l.n2, (void*)l.kc,
                    (void*)l.vc})
      cudaFree(p);
  for (void* p : {(void*)proj, (void*)hidden, (void*)qkv, (void*)gu, (void*)act, (void*)residual, (void*)attn,
                  (void*)d_pos, (void*)d_slot, (void*)d_tables, (void*)d_tile, (void*)inv_freq, (void*)o_part,
                  (void*)ml_part, (void*)counters})
    cudaFree(p);
}

}  // namespace

int main(int argc, char** argv) {
  // An optional argument runs one part (see the top of this file).
  const std::string only = argc > 1 ? argv[1] : "";
  const bool only_projections = only == "projections";
  const bool prefill_only = only == "--prefill-only";
  if (!only.empty() && !only_projections && !prefill_only && only != "decode_attention" && only != "chain") {
    std::cerr << "unknown part '" << only << "' (projections, --prefill-only, decode_attention or chain)" << std::endl;
    return 2;
  }
  cudaStream_t s;
  CUDA_CHECK(cudaStreamCreate(&s));
  const DeviceLimits lim = measure_device_limits(s);
  std::cout << nlohmann::json{{"copy_bandwidth_GBps", lim.copy_bytes_per_s / 1e9},
                              {"matmul_8192_bf16_TFLOPs", lim.matmul_flops / 1e12}}
                   .dump()
            << std::endl;
  void* ws = nullptr;
  CUDA_CHECK(cudaMalloc(&ws, 32u << 20));
  if (only == "decode_attention" || only == "chain") {
    if (only == "chain") bench_chain(s, lim, ws);
    if (only == "decode_attention")  // `decode_attention BATCH CONTEXT`: that shape's row only
      bench_decode_attention(lim, s, argc > 3 ? std::pair{std::atoi(argv[2]), std::atoi(argv[3])} : std::pair{0, 0});
    return 0;
  }
  void* flush = nullptr;  // overwritten by the tuner before each timed call (more than the L2)
  CUDA_CHECK(cudaMalloc(&flush, 64u << 20));
  // The skinny tensor-core kernel's variants, as "skinny<v>_pct_bw", and the best as skinny_best_*.
  auto time_skinny = [&](nlohmann::json& row, int32_t m, int32_t n, int32_t k, const __nv_bfloat16* x,
                         const std::vector<__nv_bfloat16*>& wc, void* y) {
    double best = 0;
    for (int v = 0; v < kSkinnyVariants; ++v) {
      if (!gemm_skinny_fits(m, n, k, v)) continue;
      const double t = median_s(s, 20, [&](int i) { gemm_skinny(x, wc[i % wc.size()], y, m, n, k, false, v, s); });
      const double pct = 100.0 * 2.0 * n * k / t / lim.copy_bytes_per_s;
      row["skinny" + std::to_string(v) + "_pct_bw"] = pct;
      if (pct > best) {
        best = pct;
        row["skinny_best_variant"] = v;
        row["skinny_best_rows"] = skinny_variant_rows(v);
        row["skinny_best_splits"] = skinny_variant_splits(v);
        row["skinny_best_us"] = t * 1e6;
      }
    }
    row["skinny_best_pct_bw"] = best;
  };
  const std::vector<std::pair<int32_t, int32_t>> shapes = {
      {6144, 4096}, {4096, 4096}, {28672, 4096}, {4096, 14336}, {128256, 4096}};
  for (const auto& [n, k] : shapes) {
    if (prefill_only) break;
    const int64_t wn = static_cast<int64_t>(n) * k;
    const int copies = static_cast<int>(std::clamp<int64_t>((1LL << 30) / (wn * 2), 2, 16));
    std::vector<__nv_bfloat16*> ws_copies;
    for (int c = 0; c < copies; ++c) ws_copies.push_back(alloc_random(wn, 100 + c, s));
    __nv_bfloat16* x = alloc_random(64LL * 2 * k, 5, s);  // up to 64 rows; [1, 2k] for the SiLU input
    float* y = nullptr;
    CUDA_CHECK(cudaMalloc(&y, 64LL * n * 4));
    {  // m = 64 (batch-64 decode): cuBLASLt alone, the skinny kernel's variants, and the tuner's choice
      Gemm cublas(ws, 32u << 20);
      cublas.set_allow_gemv(false);
      const double tc = median_s(s, 20, [&](int i) { cublas.run(x, ws_copies[i % copies], y, 64, n, k, false, s); });
      nlohmann::json row{{"kernel", "projection"}, {"m", 64}, {"n", n}, {"k", k}, {"cublas_us", tc * 1e6},
                         {"cublas_pct_bw", 100.0 * 2.0 * wn / tc / lim.copy_bytes_per_s},
                         {"cublas_candidates", cublas.num_cublas_candidates(64, n, k, false)},
                         {"cublas_split_k", cublas.chosen_cublas_split_k(64, n, k, false)},
                         {"copy_GBps", lim.copy_bytes_per_s / 1e9}};
      time_skinny(row, 64, n, k, x, ws_copies, y);
      Gemm tuned(ws, 32u << 20, flush, 64u << 20);  // as the runner's: L2-cold timing, every candidate
      const double tt = median_s(s, 20, [&](int i) { tuned.run(x, ws_copies[i % copies], y, 64, n, k, false, s); });
      row["tuned_us"] = tt * 1e6;
      row["tuned_pct_bw"] = 100.0 * 2.0 * wn / tt / lim.copy_bytes_per_s;
      row["tuned_skinny_variant"] = tuned.chosen_skinny_variant(64, n, k, false);
      std::cout << row.dump() << std::endl;
    }
    if (n == 4096 && k == 14336) {  // the down projection with SiLU-and-multiply: fused vs silu_mul + gemv
      nlohmann::json row{{"kernel", "down_silu"}, {"m", 1}, {"n", n}, {"k", k}};
      __nv_bfloat16* act = alloc_random(k, 6, s);
      for (int v = kGemvFirstSplitK; v < kGemvVariants; ++v) {
        const double tf = median_s(s, 20, [&](int i) {
          gemv(x, ws_copies[i % copies], y, 1, n, k, false, v, s, GemvInput::kSiluMul);
        });
        const double tu = median_s(s, 20, [&](int i) {
          silu_mul(x, 1, k, act, s);
          gemv(act, ws_copies[i % copies], y, 1, n, k, false, v, s);
        });
        row["fused" + std::to_string(v) + "_pct_bw"] = 100.0 * 2.0 * wn / tf / lim.copy_bytes_per_s;
        row["unfused" + std::to_string(v) + "_pct_bw"] = 100.0 * 2.0 * wn / tu / lim.copy_bytes_per_s;
      }
      std::cout << row.dump() << std::endl;
      cudaFree(act);
    }
    for (int m : {1, 8}) {
      nlohmann::json row{{"kernel", "projection"}, {"m", m}, {"n", n}, {"k", k}};
      const double bytes = 2.0 * wn;
      Gemm cublas(ws, 32u << 20);
      cublas.set_allow_gemv(false);
      const double tc = median_s(s, 20, [&](int i) { cublas.run(x, ws_copies[i % copies], y, m, n, k, false, s); });
      row["cublas_pct_bw"] = 100.0 * bytes / tc / lim.copy_bytes_per_s;
      for (int v = 0; v < kGemvVariants; ++v) {
        const double tg = median_s(s, 20, [&](int i) { gemv(x, ws_copies[i % copies], y, m, n, k, false, v, s); });
        row["gemv" + std::to_string(v) + "_pct_bw"] = 100.0 * bytes / tg / lim.copy_bytes_per_s;
      }
      time_skinny(row, m, n, k, x, ws_copies, y);
      std::cout << row.dump() << std::endl;
    }
    for (auto* p : ws_copies) cudaFree(p);
    cudaFree(x);
    cudaFree(y);
  }

  if (only_projections) return 0;

  // Prefill projections (m = 4096 rows, bf16 out) through the runner's Gemm (cuBLASLt, tuned per
  // shape): the matmul share of a 4,096-token prefill, as % of the 8192^3 rate.
  for (const auto& [n, k] : shapes) {
    if (n == 128256) continue;  // the prefill's lm_head sees one row
    const int32_t m = 4096;
    __nv_bfloat16* w = alloc_random(static_cast<int64_t>(n) * k, 7, s);
    __nv_bfloat16* x = alloc_random(static_cast<int64_t>(m) * k, 8, s);
    __nv_bfloat16* y = nullptr;
    CUDA_CHECK(cudaMalloc(&y, static_cast<int64_t>(m) * n * 2));
    Gemm g(ws, 32u << 20);
    const double t = median_s(s, 20, [&](int) { g.run(x, w, y, m, n, k, false, s); });
    const double flops = 2.0 * m * n * k;
    std::cout << nlohmann::json{{"kernel", "prefill_projection"}, {"m", m}, {"n", n}, {"k", k}, {"us", t * 1e6},
                                {"pct_matmul", 100.0 * flops / t / lim.matmul_flops}}
                     .dump()
              << std::endl;
    for (void* p : {(void*)w, (void*)x, (void*)y}) cudaFree(p);
  }

  // Prefill elementwise kernels at 4,096 rows (% of copy bandwidth, bytes read + written once).
  {
    const int32_t rows = 4096, hidden = 4096, inter = 14336;
    __nv_bfloat16* gu = alloc_random(static_cast<int64_t>(rows) * 2 * inter, 9, s);
    __nv_bfloat16* act = alloc_random(static_cast<int64_t>(rows) * inter, 10, s);
    __nv_bfloat16* x = alloc_random(static_cast<int64_t>(rows) * hidden, 11, s);
    __nv_bfloat16* nw = alloc_random(hidden, 12, s);
    float* res = nullptr;
    CUDA_CHECK(cudaMalloc(&res, static_cast<int64_t>(rows) * hidden * 4));
    add_rmsnorm(x, res, nw, act, rows, hidden, 1e-5f, true, s);  // a real residual to add to
    const double ts = median_s(s, 20, [&](int) { silu_mul(gu, rows, inter, act, s); });
    const double silu_bytes = 3.0 * rows * inter * 2;
    const double tn = median_s(s, 20, [&](int) { add_rmsnorm(x, res, nw, act, rows, hidden, 1e-5f, false, s); });
    const double norm_bytes = 12.0 * rows * hidden;
    std::cout << nlohmann::json{{"kernel", "prefill_elementwise"}, {"rows", rows}, {"silu_mul_us", ts * 1e6},
                                {"silu_mul_pct_bw", 100.0 * silu_bytes / ts / lim.copy_bytes_per_s},
                                {"add_rmsnorm_us", tn * 1e6},
                                {"add_rmsnorm_pct_bw", 100.0 * norm_bytes / tn / lim.copy_bytes_per_s}}
                     .dump()
              << std::endl;
    for (void* p : {(void*)gu, (void*)act, (void*)x, (void*)nw, (void*)res}) cudaFree(p);
  }

  if (!prefill_only) bench_chain(s, lim, ws);

  // Attention: 32 q heads, 8 kv heads, head_dim 128, block size 16.
  const int32_t hq = 32, hkv = 8, D = 128, bs = 16;
  struct Case {
    int32_t batch, ctx, q_len;
  };
  for (const Case c : {Case{1, 32768, 1}, Case{64, 1024, 1}, Case{16, 8192, 1}, Case{1, 4096, 4096},
                       Case{4, 1024, 1024}, Case{1, 4096, 512}}) {
    if (prefill_only && c.q_len == 1) continue;
    const int32_t blocks_per_seq = (c.ctx + bs - 1) / bs;
    const int64_t nblocks = static_cast<int64_t>(c.batch) * blocks_per_seq;
    __nv_bfloat16* kc = alloc_random(nblocks * bs * hkv * D, 1, s);
    __nv_bfloat16* vc = alloc_random(nblocks * bs * hkv * D, 2, s);
    const int32_t tokens = c.batch * c.q_len;
    const int64_t qstride = (hq + 2 * hkv) * D;
    __nv_bfloat16* q = alloc_random(tokens * qstride, 3, s);
    std::vector<int32_t> tables(nblocks);
    std::iota(tables.begin(), tables.end(), 0);
    std::shuffle(tables.begin(), tables.end(), std::mt19937(1));
    int32_t* d_tables = nullptr;
    CUDA_CHECK(cudaMalloc(&d_tables, nblocks * 4));
    CUDA_CHECK(cudaMemcpy(d_tables, tables.data(), nblocks * 4, cudaMemcpyHostToDevice));
    const int32_t tt = c.q_len == 1 ? 1 : attention_tile_tokens(hq, hkv, D);
    std::vector<AttentionTile> tiles;
    for (int32_t b = 0; b < c.batch; ++b)
      for (int32_t off = 0; off < c.q_len; off += tt)
        tiles.push_back({b, b * c.q_len + off, std::min(tt, c.q_len - off), c.ctx - c.q_len + off});
    AttentionTile* d_tiles = nullptr;
    CUDA_CHECK(cudaMalloc(&d_tiles, tiles.size() * sizeof(AttentionTile)));
    CUDA_CHECK(cudaMemcpy(d_tiles, tiles.data(), tiles.size() * sizeof(AttentionTile), cudaMemcpyHostToDevice));
    const int32_t max_splits = c.q_len == 1 ? 256 : 1;
    float *op = nullptr, *ml = nullptr;
    CUDA_CHECK(cudaMalloc(&op, static_cast<int64_t>(max_splits) * tokens * hq * D * 4));
    CUDA_CHECK(cudaMalloc(&ml, static_cast<int64_t>(max_splits) * tokens * hq * 2 * 4));
    __nv_bfloat16* out = nullptr;
    CUDA_CHECK(cudaMalloc(&out, static_cast<int64_t>(tokens) * hq * D * 2));
    AttentionArgs a;
    a.q = q;
    a.q_row_stride = qstride;
    a.k_cache = kc;
    a.v_cache = vc;
    a.block_tables = d_tables;
    a.max_blocks_per_seq = blocks_per_seq;
    a.block_size = bs;
    a.tiles = d_tiles;
    a.num_tiles = static_cast<int32_t>(tiles.size());
    a.max_q_len = tt;
    a.hq = hq;
    a.hkv = hkv;
    a.head_dim = D;
    a.scale = 0.088f;
    a.tokens = tokens;
    a.o_part = op;
    a.ml_part = ml;
    a.out = out;
    const double kv_bytes = 2.0 * nblocks * bs * hkv * D * 2;
    // Query i of the chunk (position ctx - q_len + i) sees ctx - q_len + i + 1 keys.
    const double keys_seen = double(c.q_len) * c.ctx - double(c.q_len) * (c.q_len - 1) / 2;
    const double flops = 4.0 * D * hq * c.batch * keys_seen;
    nlohmann::json row{{"kernel", "attention"}, {"batch", c.batch}, {"context", c.ctx}, {"q_len", c.q_len},
                       {"heuristic_splits", attention_splits(a.num_tiles, hq, hkv, D, 132, c.ctx)}};
    for (int32_t sp = 1; sp <= max_splits; sp *= 2) {
      a.splits = sp;
      const double t = median_s(s, 10, [&](int) { paged_attention(a, s); });
      row["splits_" + std::to_string(sp) + "_us"] = t * 1e6;
      row["splits_" + std::to_string(sp) + (c.q_len == 1 ? "_pct_bw" : "_pct_matmul")] =
          c.q_len == 1 ? 100.0 * kv_bytes / t / lim.copy_bytes_per_s : 100.0 * flops / t / lim.matmul_flops;
    }
    for (int v = 0; c.q_len > 1 && v < kPrefillTcVariants; ++v) {
      const double t = median_s(s, 10, [&](int) { paged_attention_prefill_tc(a, s, v); });
      row["tc_variant" + std::to_string(v) + "_us"] = t * 1e6;
      row["tc_variant" + std::to_string(v) + "_pct_matmul"] = 100.0 * flops / t / lim.matmul_flops;
      // Also one line per variant as it is timed, so a variant that faults leaves the others' figures.
      std::cout << nlohmann::json{{"kernel", "attention_prefill_variant"}, {"batch", c.batch}, {"context", c.ctx},
                                  {"q_len", c.q_len}, {"variant", v}, {"us", t * 1e6},
                                  {"pct_matmul", 100.0 * flops / t / lim.matmul_flops}}
                       .dump()
                << std::endl;
    }
    std::cout << row.dump() << std::endl;
    for (void* p : {(void*)kc, (void*)vc, (void*)q, (void*)d_tables, (void*)d_tiles, (void*)op, (void*)ml, (void*)out})
      cudaFree(p);
  }
  if (!prefill_only) bench_decode_attention(lim, s);
  return 0;
}
