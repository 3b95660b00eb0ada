// tessera_cuda_kernel_bench's `decode_waves` part: batch decode attention (8B shape: 32 q / 8 kv heads,
// head_dim 128, blocks of 16) at batch sizes whose one-split launch fills the GPU's resident slots
// badly (b80: 640 blocks on 528 slots), for every split count 1..8 on the TMA kernel and at the old
// and the whole-wave rule's splits on the tensor-core kernel, each launch (+ its split merge) replayed
// from a CUDA graph, next to the copy bandwidth measured in the same run. Benchmark code only.
#include <cuda_runtime.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "bench/cuda/decode_bench_batch.h"
#include "bench/cuda/kernel_bench_util.h"
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention_decode.cuh"
#include "kernels/cuda/attention_decode_tma.cuh"
#include "kernels/cuda/cuda_check.h"

namespace tessera::bench::kernels {

using namespace tessera::cuda;

namespace {

constexpr int32_t kHq = DecodeBenchBatch::kHq, kHkv = DecodeBenchBatch::kHkv, kD = DecodeBenchBatch::kD;

// Median seconds of one launch of `w` at `splits`, replayed from a graph per K/V copy (tma: the TMA
// kernel; else the tensor-core kernel, one kv head per block), the merge included where splits > 1.
double time_at(DecodeBenchBatch& w, int32_t splits, bool tma, const DecodeDevice& device, cudaStream_t s) {
  w.a.splits = splits;
  return decode_graph_median_s(w.a, w.kv, tma, device, s);
}

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
    DecodeBenchBatch w(ctx, 8, s);
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
      for (int32_t sp = 1; sp <= 8; ++sp) put("tma_splits_" + std::to_string(sp), time_at(w, sp, true, device, s));
      put("tma_splits_1_again", time_at(w, 1, true, device, s));  // the spread between two timings
      put("tma_waves_rule_again", time_at(w, waves_rule, true, device, s));
    }
    put("mma_old_rule", time_at(w, old_rule, false, device, s));
    put("mma_waves_rule", time_at(w, waves_rule, false, device, s));
    std::cout << row.dump() << std::endl;
  }
}

}  // namespace tessera::bench::kernels
