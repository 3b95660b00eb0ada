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
// `decode_attention BATCH CONTEXT`: one of its shapes), `chain`, `gemm_sustained` (the m=4,096 projections'
// cuBLASLt candidates in bursts and at the power cap: kernel_bench_gemm_sustained.cpp), `qkv_post` (every
// layout at 64 to 4,096 tokens: kernel_bench_qkv_post.cpp), `decode_waves` (batch decode attention at
// every split count 1..8 and both split rules: kernel_bench_decode_waves.cpp; not in the full run), `swiglu`
// (the m=4,096 gate/up projection: the fused SwiGLU GEMM vs cuBLASLt + silu_mul, bursts and at the power
// cap: kernel_bench_swiglu.cpp), `swiglu_profile` (each of its kernels once inside cudaProfilerStart/Stop,
// for ncu --profile-from-start off), `mid_projections` (the decode projections at m = 80-128 rows: the
// tuner's choice at m vs the 128-row plan padded, every cuBLASLt candidate: kernel_bench_mid_projections.cpp).
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

using namespace tessera;
using namespace tessera::cuda;
using tessera::bench::DeviceLimits;
using tessera::bench::measure_device_limits;

using namespace tessera::bench::kernels;

int main(int argc, char** argv) {
  // An optional argument runs one part (see the top of this file).
  const std::string only = argc > 1 ? argv[1] : "";
  const bool only_projections = only == "projections";
  const bool prefill_only = only == "--prefill-only";
  if (!only.empty() && !only_projections && !prefill_only && only != "decode_attention" && only != "chain" &&
      only != "gemm_sustained" && only != "qkv_post" && only != "decode_waves" && only != "swiglu" &&
      only != "swiglu_profile" && only != "mid_projections") {
    std::cerr << "unknown part '" << only
              << "' (projections, --prefill-only, decode_attention, chain, gemm_sustained, qkv_post, decode_waves, swiglu, swiglu_profile or mid_projections)" << std::endl;
    return 2;
  }
  cudaStream_t s;
  CUDA_CHECK(cudaStreamCreate(&s));
  const bool swiglu_profile = only == "swiglu_profile";
  const DeviceLimits lim = measure_device_limits(s, /*sustained=*/only == "swiglu");
  std::cout << nlohmann::json{{"copy_bandwidth_GBps", lim.copy_bytes_per_s / 1e9},
                              {"matmul_8192_bf16_TFLOPs", lim.matmul_flops / 1e12}}
                   .dump()
            << std::endl;
  void* ws = nullptr;
  CUDA_CHECK(cudaMalloc(&ws, 32u << 20));
  if (only == "mid_projections") {
    void* flush = nullptr;
    CUDA_CHECK(cudaMalloc(&flush, 64u << 20));
    bench_mid_projections(lim, s, ws, flush);
    return 0;
  }
  if (only == "decode_attention" || only == "chain" || only == "gemm_sustained" || only == "qkv_post" ||
      only == "decode_waves" || only == "swiglu" || swiglu_profile) {
    if (only == "swiglu" || swiglu_profile) bench_swiglu(lim, s, ws, swiglu_profile);
    if (only == "chain") bench_chain(s, lim, ws);
    if (only == "decode_waves") bench_decode_waves(lim, s);
    if (only == "qkv_post") bench_prefill_qkv_post(lim, s);
    if (only == "gemm_sustained") bench_gemm_sustained(lim, s, ws);
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
  bench_prefill_qkv_post(lim, s);

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
