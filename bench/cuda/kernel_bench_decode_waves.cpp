// tessera_cuda_kernel_bench's `decode_waves` part: batch decode attention (8B shape: 32 q / 8 kv heads,
// head_dim 128, blocks of 16) at batch sizes whose one-split launch fills the GPU's resident slots
// badly (b80: 640 blocks on 528 slots), for every split count 1..8 on the TMA kernel and at the old
// and the whole-wave rule's splits on the tensor-core kernel, each launch (+ its split merge) replayed
// from a CUDA graph, next to the copy bandwidth measured in the same run. Benchmark code only.
#include <cuda_runtime.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "bench/cuda/kernel_bench_util.h"
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention_decode.cuh"
#include "kernels/cuda/attention_decode_tma.cuh"
#include "kernels/cuda/cuda_check.h"

namespace tessera::bench::kernels {

using namespace tessera::cuda;

namespace {

constexpr int32_t kHq = 32, kHkv = 8, kD = 128, kBs = 16;

// One batch's K/V copies, tables, tiles and buffers on the device.
struct WaveBatch {
  std::vector<__nv_bfloat16*> kv;  // 2 x copies (K, V)
  int copies = 1;
  double kv_bytes = 0;  // K/V bytes one launch reads
  AttentionArgs a;
  std::vector<void*> owned;

  WaveBatch(const std::vector<int32_t>& ctx, cudaStream_t s) {
    const int32_t batch = static_cast<int32_t>(ctx.size());
    const int32_t longest = *std::max_element(ctx.begin(), ctx.end());
    const int32_t per_seq = (longest + kBs - 1) / kBs;
    const int64_t nblocks = static_cast<int64_t>(batch) * per_seq;
    const int64_t elems = nblocks * kBs * kHkv * kD;
    copies = static_cast<int>(std::clamp<int64_t>((1LL << 30) / (elems * 4), 1, 16));
    for (int c = 0; c < 2 * copies; ++c) kv.push_back(alloc_random(elems, 10 + c, s));
    const int64_t qstride = (kHq + 2 * kHkv) * kD;
    __nv_bfloat16* q = alloc_random(batch * qstride, 3, s);
    std::vector<int32_t> tables(nblocks);
    std::iota(tables.begin(), tables.end(), 0);
    std::shuffle(tables.begin(), tables.end(), std::mt19937(1));
    std::vector<AttentionTile> tiles;
    for (int32_t b = 0; b < batch; ++b) {
      tiles.push_back({b, b, 1, ctx[b] - 1});
      kv_bytes += 2.0 * ctx[b] * kHkv * kD * 2;
    }
    int32_t* d_tables = nullptr;
    AttentionTile* d_tiles = nullptr;
    float *op = nullptr, *ml = nullptr;
    __nv_bfloat16* out = nullptr;
    CUDA_CHECK(cudaMalloc(&d_tables, nblocks * 4));
    CUDA_CHECK(cudaMemcpy(d_tables, tables.data(), nblocks * 4, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMalloc(&d_tiles, tiles.size() * sizeof(AttentionTile)));
    CUDA_CHECK(cudaMemcpy(d_tiles, tiles.data(), tiles.size() * sizeof(AttentionTile), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMalloc(&op, 8LL * batch * kHq * kD * 4));
    CUDA_CHECK(cudaMalloc(&ml, 8LL * batch * kHq * 2 * 4));
    CUDA_CHECK(cudaMalloc(&out, static_cast<int64_t>(batch) * kHq * kD * 2));
    owned = {q, d_tables, d_tiles, op, ml, out};
    a.q = q;
    a.q_row_stride = qstride;
    a.block_tables = d_tables;
    a.max_blocks_per_seq = per_seq;
    a.block_size = kBs;
    a.tiles = d_tiles;
    a.num_tiles = batch;
    a.max_q_len = 1;
    a.hq = kHq;
    a.hkv = kHkv;
    a.head_dim = kD;
    a.scale = 0.088f;
    a.tokens = batch;
    a.o_part = op;
    a.ml_part = ml;
    a.out = out;
  }
  ~WaveBatch() {
    for (void* p : owned) cudaFree(p);
    for (auto* p : kv) cudaFree(p);
  }
  WaveBatch(const WaveBatch&) = delete;
  WaveBatch& operator=(const WaveBatch&) = delete;

  // Median seconds of one launch at `splits`, replayed from a graph per K/V copy (tma: the TMA kernel;
  // else the tensor-core kernel, one kv head per block), the merge included where splits > 1.
  double time(int32_t splits, bool tma, const DecodeDevice& device, cudaStream_t s) {
    a.splits = splits;
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
};

}  // namespace

void bench_decode_waves(const DeviceLimits& lim, cudaStream_t s) {
  const DecodeDevice device = decode_device(0);
  const int32_t sms = device.sm_count;
  struct Shape {
    int32_t batch;
    bool mixed;  // contexts uniform in [256, 1792] (mean ~1k) instead of 1,024 each
  };
  std::vector<Shape> shapes;
  for (int32_t b : {16, 24, 32, 40, 48, 64, 80, 96, 112, 128}) shapes.push_back({b, false});
  for (int32_t b : {80, 96}) shapes.push_back({b, true});
  for (const Shape& sh : shapes) {
    std::vector<int32_t> ctx(sh.batch, 1024);
    if (sh.mixed) {
      std::mt19937 rng(7);
      std::uniform_int_distribution<int32_t> len(256, 1792);
      for (auto& c : ctx) c = len(rng);
    }
    WaveBatch w(ctx, s);
    const int32_t longest = *std::max_element(ctx.begin(), ctx.end());
    const int32_t old_rule = attention_decode_splits(sh.batch, kHq, kHkv, kD, sms, longest, 0, false);
    const int32_t waves_rule = attention_decode_splits(sh.batch, kHq, kHkv, kD, sms, longest, 0, true);
    const int64_t blocks = static_cast<int64_t>(sh.batch) * kHkv;
    nlohmann::json row{{"kernel", "attention_decode_waves"}, {"batch", sh.batch},       {"mixed", sh.mixed},
                       {"kv_MB", w.kv_bytes / 1e6},          {"old_rule_splits", old_rule},
                       {"waves_rule_splits", waves_rule},    {"blocks_one_split", blocks},
                       {"tma_taken", attention_decode_tma_takes(w.a, device)}};
    auto put = [&](const std::string& k, double t) {
      row[k + "_us"] = t * 1e6;
      row[k + "_pct_bw"] = 100.0 * w.kv_bytes / t / lim.copy_bytes_per_s;
    };
    if (attention_decode_tma_takes(w.a, device)) {
      for (int32_t sp = 1; sp <= 8; ++sp) put("tma_splits_" + std::to_string(sp), w.time(sp, true, device, s));
      put("tma_splits_1_again", w.time(1, true, device, s));  // the spread between two timings
      put("tma_waves_rule_again", w.time(waves_rule, true, device, s));
    }
    put("mma_old_rule", w.time(old_rule, false, device, s));
    put("mma_waves_rule", w.time(waves_rule, false, device, s));
    std::cout << row.dump() << std::endl;
  }
}

}  // namespace tessera::bench::kernels
