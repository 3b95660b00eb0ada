// tessera_cuda_kernel_bench: kernel microbenchmarks on the 8B shape, each figure next to the limit
// measured in the same run (copy bandwidth, 8192³ matmul rate). Prints one JSON object per line:
//   projections at m=1 (cuBLASLt vs every gemv variant; weights rotated across copies so L2 holds none),
//   prefill projections at m=4096 (% of the matmul rate), silu_mul and add_rmsnorm at 4096 rows,
//   decode attention (1 x 32k, 64 x 1k, 16 x 8k) for each split count, prefill attention (1 x 4096,
//   4 x 1024, and 1 x 512 after 3584 cached tokens; FLOPs count only the causal keys each query sees),
//   the decode kernel (attention_decode.cuh; 1 x 32k, 64 x 1k, 16 x 8k, 1 x 4k, KV rotated across copies).
#include <cuda_runtime.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>
#include <numeric>
#include <random>
#include <vector>

#include "bench/cuda/device_limits.h"
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention_decode.cuh"
#include "kernels/cuda/attention_prefill_tc.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/fill_random.cuh"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemv.cuh"
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
void bench_decode_attention(const DeviceLimits& lim, cudaStream_t s) {
  const int32_t hq = 32, hkv = 8, D = 128, bs = 16;
  int sms = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  for (const auto& [batch, ctx] : std::vector<std::pair<int32_t, int32_t>>{{1, 32768}, {64, 1024}, {16, 8192}, {1, 4096}}) {
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
    for (int32_t sp : {std::max(1, hs / 2), hs, std::min(256, hs * 2)}) {
      a.splits = sp;
      const double t = median_s(s, 20, [&](int i) {
        a.k_cache = kv[2 * (i % copies)];
        a.v_cache = kv[2 * (i % copies) + 1];
        paged_attention_decode(a, s);
      });
      row["splits_" + std::to_string(sp) + "_us"] = t * 1e6;
      row["splits_" + std::to_string(sp) + "_pct_bw"] = 100.0 * kv_bytes / t / lim.copy_bytes_per_s;
    }
    std::cout << row.dump() << std::endl;
    for (void* p : {(void*)q, (void*)d_tables, (void*)d_tiles, (void*)op, (void*)ml, (void*)out}) cudaFree(p);
    for (auto* p : kv) cudaFree(p);
  }
}

}  // namespace

int main() {
  cudaStream_t s;
  CUDA_CHECK(cudaStreamCreate(&s));
  const DeviceLimits lim = measure_device_limits(s);
  std::cout << nlohmann::json{{"copy_bandwidth_GBps", lim.copy_bytes_per_s / 1e9},
                              {"matmul_8192_bf16_TFLOPs", lim.matmul_flops / 1e12}}
                   .dump()
            << std::endl;
  void* ws = nullptr;
  CUDA_CHECK(cudaMalloc(&ws, 32u << 20));
  const std::vector<std::pair<int32_t, int32_t>> shapes = {
      {6144, 4096}, {4096, 4096}, {28672, 4096}, {4096, 14336}, {128256, 4096}};
  for (const auto& [n, k] : shapes) {
    const int64_t wn = static_cast<int64_t>(n) * k;
    const int copies = static_cast<int>(std::clamp<int64_t>((1LL << 30) / (wn * 2), 2, 16));
    std::vector<__nv_bfloat16*> ws_copies;
    for (int c = 0; c < copies; ++c) ws_copies.push_back(alloc_random(wn, 100 + c, s));
    __nv_bfloat16* x = alloc_random(8LL * k, 5, s);
    float* y = nullptr;
    CUDA_CHECK(cudaMalloc(&y, 8LL * n * 4));
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
      std::cout << row.dump() << std::endl;
    }
    for (auto* p : ws_copies) cudaFree(p);
    cudaFree(x);
    cudaFree(y);
  }

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

  // Attention: 32 q heads, 8 kv heads, head_dim 128, block size 16.
  const int32_t hq = 32, hkv = 8, D = 128, bs = 16;
  struct Case {
    int32_t batch, ctx, q_len;
  };
  for (const Case c : {Case{1, 32768, 1}, Case{64, 1024, 1}, Case{16, 8192, 1}, Case{1, 4096, 4096},
                       Case{4, 1024, 1024}, Case{1, 4096, 512}}) {
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
    }
    std::cout << row.dump() << std::endl;
    for (void* p : {(void*)kc, (void*)vc, (void*)q, (void*)d_tables, (void*)d_tiles, (void*)op, (void*)ml, (void*)out})
      cudaFree(p);
  }
  bench_decode_attention(lim, s);
  return 0;
}
