// The decode benchmarks' device batch (decode_bench_batch.h).
#include "bench/cuda/decode_bench_batch.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "bench/cuda/kernel_bench_util.h"
#include "kernels/cuda/cuda_check.h"

namespace tessera::bench::kernels {

using tessera::cuda::AttentionTile;

DecodeBenchBatch::DecodeBenchBatch(const std::vector<int32_t>& ctx, int32_t max_splits, cudaStream_t s) {
  const int32_t batch = static_cast<int32_t>(ctx.size());
  const int32_t longest = *std::max_element(ctx.begin(), ctx.end());
  blocks_per_seq = (longest + kBs - 1) / kBs;
  const int64_t nblocks = static_cast<int64_t>(batch) * blocks_per_seq;
  const int64_t elems = nblocks * kBs * kHkv * kD;
  copies = static_cast<int>(std::clamp<int64_t>((1LL << 30) / (elems * 4), 1, 16));
  for (int c = 0; c < 2 * copies; ++c) kv.push_back(alloc_random(elems, 10 + c, s));
  const int64_t qstride = (kHq + 2 * kHkv) * kD;
  q = alloc_random(batch * qstride, 3, s);
  tables.resize(nblocks);
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
  CUDA_CHECK(cudaMalloc(&op, static_cast<int64_t>(max_splits) * batch * kHq * kD * 4));
  CUDA_CHECK(cudaMalloc(&ml, static_cast<int64_t>(max_splits) * batch * kHq * 2 * 4));
  CUDA_CHECK(cudaMalloc(&out, static_cast<int64_t>(batch) * kHq * kD * 2));
  owned_ = {q, d_tables, d_tiles, op, ml, out};
  a.q = q;
  a.q_row_stride = qstride;
  a.k_cache = kv[0];
  a.v_cache = kv[1];
  a.block_tables = d_tables;
  a.max_blocks_per_seq = blocks_per_seq;
  a.block_size = kBs;
  a.tiles = d_tiles;
  a.num_tiles = batch;
  a.max_q_len = 1;
  a.hq = kHq;
  a.hkv = kHkv;
  a.head_dim = kD;
  a.scale = 0.088f;
  a.splits = 1;
  a.tokens = batch;
  a.o_part = op;
  a.ml_part = ml;
  a.out = out;
}

DecodeBenchBatch::~DecodeBenchBatch() {
  for (void* p : owned_) cudaFree(p);
  for (auto* p : kv) cudaFree(p);
}

}  // namespace tessera::bench::kernels
