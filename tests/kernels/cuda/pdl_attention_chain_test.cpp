// Programmatic dependent launch through the attention half of a decode layer: qkv gemv -> qkv_post
// (RoPE, this step's K/V written into the paged cache) -> attention_decode (+ split merge) -> o gemv,
// each PDL-launched, attention copying its first K/V stages before it waits on qkv_post. Every run
// first poisons the intermediates and this step's cache slots, so a kernel that read before its
// predecessor finished would see NaN. The eager chain and its CUDA-graph replays must equal, bit for
// bit, the same kernels run one at a time with the stream synchronized in between; so must the chain
// with the fused decode launch (qkv_post + attention + merge in one kernel). Runs on a GPU only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "kernels/cuda/attention_decode.cuh"
#include "kernels/cuda/gemv.cuh"
#include "kernels/cuda/qkv_post.cuh"
#include "tests/kernels/cuda/device_buffer.h"

namespace tessera::cuda::test {
namespace {

constexpr int32_t kBlock = 16;

struct AttentionChain {
  int32_t h = 512, hq = 8, hkv = 2, d = 128;
  std::vector<int32_t> contexts{300, 77, 33};  // keys including this step's
  int32_t max_blocks = 0, qkv_n = 0;
  std::vector<int32_t> tables;
  std::vector<int64_t> slots;
  std::vector<float> unused;
  DeviceBuffer<__nv_bfloat16> x, w_qkv, w_o, qkv, kc, vc, attn;
  DeviceBuffer<float> inv_freq, o_part, ml_part, y;
  DeviceBuffer<int32_t> positions, d_tables;
  DeviceBuffer<int64_t> d_slots;
  DeviceBuffer<AttentionTile> tiles;
  DeviceBuffer<int32_t> counters;  // the fused launch's arrival counters

  static int32_t total_blocks(const std::vector<int32_t>& ctx) {
    int32_t n = 0;
    for (int32_t c : ctx) n += (c + kBlock - 1) / kBlock;
    return n;
  }
  static int32_t most_blocks(const std::vector<int32_t>& ctx) {
    int32_t n = 0;
    for (int32_t c : ctx) n = std::max(n, (c + kBlock - 1) / kBlock);
    return n;
  }

  explicit AttentionChain(std::mt19937& rng)
      : max_blocks(most_blocks(contexts)),
        qkv_n((hq + 2 * hkv) * d),
        x(random_bf16(static_cast<size_t>(contexts.size()) * h, rng, 1.0f, &unused)),
        w_qkv(random_bf16(static_cast<size_t>(qkv_n) * h, rng, 0.1f, &unused)),
        w_o(random_bf16(static_cast<size_t>(h) * hq * d, rng, 0.1f, &unused)),
        qkv(contexts.size() * qkv_n),
        kc(random_bf16(static_cast<size_t>(total_blocks(contexts)) * kBlock * hkv * d, rng, 1.0f, &unused)),
        vc(random_bf16(static_cast<size_t>(total_blocks(contexts)) * kBlock * hkv * d, rng, 1.0f, &unused)),
        attn(contexts.size() * hq * d),
        inv_freq(d / 2),
        o_part(static_cast<size_t>(8) * contexts.size() * hq * d),
        ml_part(static_cast<size_t>(8) * contexts.size() * hq * 2),
        y(contexts.size() * h),
        positions(contexts.size()),
        d_tables(contexts.size() * max_blocks),
        d_slots(contexts.size()),
        tiles(contexts.size()),
        counters(std::vector<int32_t>(attention_decode_counters(static_cast<int32_t>(contexts.size()), hq, hkv), 0)) {
    const int32_t nseq = static_cast<int32_t>(contexts.size());
    tables.assign(static_cast<size_t>(nseq) * max_blocks, 0);
    int32_t next = total_blocks(contexts) - 1;  // blocks handed out backwards: tables are not the identity
    std::vector<int32_t> pos;
    std::vector<AttentionTile> t;
    for (int32_t s = 0; s < nseq; ++s) {
      for (int32_t b = 0; b < (contexts[s] + kBlock - 1) / kBlock; ++b) tables[s * max_blocks + b] = next--;
      const int32_t p = contexts[s] - 1;
      pos.push_back(p);
      slots.push_back(static_cast<int64_t>(tables[s * max_blocks + p / kBlock]) * kBlock + p % kBlock);
      t.push_back(AttentionTile{s, s, 1, p});
    }
    std::vector<float> f(d / 2);
    for (int32_t i = 0; i < d / 2; ++i) f[i] = std::pow(10000.0f, -2.0f * i / d);
    inv_freq.upload(f);
    positions.upload(pos);
    d_tables.upload(tables);
    d_slots.upload(slots);
    tiles.upload(t);
  }

  // Poisons what the chain writes (this step's cache rows included), then runs it; `sync` puts a
  // stream synchronization after every kernel, so none overlaps another; `fused`: qkv_post, the
  // decode kernel and its merge as one launch (paged_attention_decode_fused) on the raw qkv rows.
  // cuda_cores: the unfused chain on the CUDA-core decode kernel (the fused launch's arithmetic).
  bool cuda_cores = false;
  void run(cudaStream_t s, int32_t splits, bool sync, bool fused = false) {
    const int32_t nseq = static_cast<int32_t>(contexts.size());
    CUDA_CHECK(cudaMemsetAsync(qkv.get(), 0xFF, qkv.size() * 2, s));
    CUDA_CHECK(cudaMemsetAsync(attn.get(), 0xFF, attn.size() * 2, s));
    CUDA_CHECK(cudaMemsetAsync(o_part.get(), 0xFF, o_part.size() * 4, s));
    CUDA_CHECK(cudaMemsetAsync(ml_part.get(), 0xFF, ml_part.size() * 4, s));
    CUDA_CHECK(cudaMemsetAsync(y.get(), 0xFF, y.size() * 4, s));
    for (int64_t slot : slots) {
      CUDA_CHECK(cudaMemsetAsync(kc.get() + slot * hkv * d, 0xFF, static_cast<size_t>(hkv) * d * 2, s));
      CUDA_CHECK(cudaMemsetAsync(vc.get() + slot * hkv * d, 0xFF, static_cast<size_t>(hkv) * d * 2, s));
    }
    auto step = [&] {
      if (sync) CUDA_CHECK(cudaStreamSynchronize(s));
    };
    gemv(x.get(), w_qkv.get(), qkv.get(), nseq, qkv_n, h, false, 7, s);
    step();
    QkvPostArgs q;
    q.qkv = qkv.get();
    q.positions = positions.get();
    q.inv_freq = inv_freq.get();
    q.slot_mapping = d_slots.get();
    q.k_cache = kc.get();
    q.v_cache = vc.get();
    q.tokens = nseq;
    q.hq = hq;
    q.hkv = hkv;
    q.head_dim = d;
    if (!fused) {
      qkv_post(q, s);
      step();
    }
    AttentionArgs a;
    a.q = qkv.get();
    a.q_row_stride = qkv_n;
    a.k_cache = kc.get();
    a.v_cache = vc.get();
    a.block_tables = d_tables.get();
    a.max_blocks_per_seq = max_blocks;
    a.block_size = kBlock;
    a.tiles = tiles.get();
    a.num_tiles = nseq;
    a.max_q_len = 1;
    a.hq = hq;
    a.hkv = hkv;
    a.head_dim = d;
    a.scale = 1.0f / std::sqrt(static_cast<float>(d));
    a.splits = splits;
    a.tokens = nseq;
    a.o_part = o_part.get();
    a.ml_part = ml_part.get();
    a.out = attn.get();
    if (fused) {
      DecodeQkvArgs f;
      f.k_cache = kc.get();
      f.v_cache = vc.get();
      f.inv_freq = inv_freq.get();
      f.counters = counters.get();
      f.num_counters = static_cast<int64_t>(counters.size());
      paged_attention_decode_fused(a, f, s);
    } else if (cuda_cores) {
      paged_attention_decode_cuda_cores(a, s);
    } else {
      paged_attention_decode(a, decode_device(0), s);
    }
    step();
    gemv(attn.get(), w_o.get(), y.get(), nseq, h, hq * d, true, 10, s);
    step();
  }
};

TEST(CudaPdlAttentionChain, EagerAndGraphReplaysEqualSerializedKernels) {
  std::mt19937 rng(std::random_device{}());
  AttentionChain c(rng);
  cudaStream_t s;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  for (int32_t splits : {1, 2, 8}) {  // 8: splits of 64 keys (stage-rounded), the last three of 300 keys empty
    c.run(s, splits, true);
    const auto want = c.y.download();
    for (float v : want) ASSERT_TRUE(std::isfinite(v)) << "serialized run, splits " << splits;
    const auto cache_k = c.kc.download();
    c.run(s, splits, false);
    CUDA_CHECK(cudaStreamSynchronize(s));
    ASSERT_EQ(c.y.download(), want) << "eager PDL chain, splits " << splits;
    ASSERT_EQ(to_float(c.kc.download()), to_float(cache_k)) << "cache after the eager chain, splits " << splits;

    cudaGraph_t graph = nullptr;
    CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    c.run(s, splits, false);
    CUDA_CHECK(cudaStreamEndCapture(s, &graph));
    cudaGraphExec_t exec = nullptr;
    CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    for (int rep = 0; rep < 20; ++rep) {
      CUDA_CHECK(cudaGraphLaunch(exec, s));
      CUDA_CHECK(cudaStreamSynchronize(s));
      ASSERT_EQ(c.y.download(), want) << "replay " << rep << ", splits " << splits;
    }
    CUDA_CHECK(cudaGraphExecDestroy(exec));
    CUDA_CHECK(cudaGraphDestroy(graph));
  }
  CUDA_CHECK(cudaStreamDestroy(s));
}

// The same chain with the fused decode launch (it waits on the qkv gemv itself): serialized, eager
// PDL and graph replays equal, and equal to the unfused chain on the CUDA-core decode kernel bit for
// bit (no bias or norm here, so the fused RoPE does qkv_post's arithmetic in the same order).
TEST(CudaPdlAttentionChain, FusedDecodeLaunchEqualsTheUnfusedChain) {
  std::mt19937 rng(std::random_device{}());
  AttentionChain c(rng);
  c.cuda_cores = true;
  cudaStream_t s;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  for (int32_t splits : {1, 2, 8}) {
    c.run(s, splits, true);
    const auto want = c.y.download();
    const auto cache_k = c.kc.download();
    c.run(s, splits, true, true);
    ASSERT_EQ(c.y.download(), want) << "serialized fused chain, splits " << splits;
    ASSERT_EQ(to_float(c.kc.download()), to_float(cache_k)) << "cache after the fused chain, splits " << splits;
    c.run(s, splits, false, true);
    CUDA_CHECK(cudaStreamSynchronize(s));
    ASSERT_EQ(c.y.download(), want) << "eager PDL fused chain, splits " << splits;
    cudaGraph_t graph = nullptr;
    CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    c.run(s, splits, false, true);
    CUDA_CHECK(cudaStreamEndCapture(s, &graph));
    cudaGraphExec_t exec = nullptr;
    CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    for (int rep = 0; rep < 20; ++rep) {
      CUDA_CHECK(cudaGraphLaunch(exec, s));
      CUDA_CHECK(cudaStreamSynchronize(s));
      ASSERT_EQ(c.y.download(), want) << "fused replay " << rep << ", splits " << splits;
    }
    CUDA_CHECK(cudaGraphExecDestroy(exec));
    CUDA_CHECK(cudaGraphDestroy(graph));
  }
  CUDA_CHECK(cudaStreamDestroy(s));
}

}  // namespace
}  // namespace tessera::cuda::test
