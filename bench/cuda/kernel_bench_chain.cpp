// tessera_cuda_kernel_bench's decode-chain rows: 32 layers' projections and norms (then with the
// attention stage) replayed from CUDA graphs with and without PDL, each figure next to the copy
// bandwidth measured in the same run. Benchmark code only.
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

#include "bench/cuda/kernel_bench_util.h"
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

namespace tessera::bench::kernels {

using namespace tessera::cuda;

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
  const int32_t decode_splits = attention_decode_splits(1, hq, hkv, D, 132, ctx);  // 16 at 512 keys
  const DecodeDevice device = decode_device(0);
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
    bool glu = false;         // gate/up through gemv_silu_mul (SiLU stored by the gate/up gemv), down plain
  };
  for (const Mode md : {Mode{"plain", false, false, false, false}, Mode{"pdl", false, true, false, false},
                        Mode{"pdl_silu_fused", false, true, true, false}, Mode{"splitk", true, false, false, false},
                        Mode{"splitk_pdl", true, true, false, false}, Mode{"splitk_pdl_silu_fused", true, true, true, false},
                        Mode{"pdl_with_attention", false, true, false, true},
                        Mode{"pdl_with_qkv_post_only", false, true, false, true, -1},
                        Mode{"pdl_with_attention_8_splits", false, true, false, true, 8},
                        Mode{"pdl_with_attention_32_splits", false, true, false, true, 32},
                        Mode{"splitk_pdl_with_decode_attention", true, true, false, true, 0, 1},
                        Mode{"splitk_pdl_with_fused_decode_attention", true, true, false, true, 0, 2},
                        Mode{"splitk_pdl_silu_in_gate_up", true, true, false, false, 0, 0, true},
                        Mode{"splitk_pdl_with_decode_attention_silu_in_gate_up", true, true, false, true, 0, 1, true}}) {
    if (md.glu && !gemv_silu_mul_supported(s_gu)) continue;
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
              paged_attention_decode(a, device, s);
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
      if (md.glu) {
        gemv_silu_mul(hidden, l.gu, act, 1, I, H, a_gu, s, pdl);
        gemv(act, l.down, proj, 1, H, I, false, a_down, s, GemvInput::kPlain, pdl);
        continue;
      }
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

}  // namespace tessera::bench::kernels
