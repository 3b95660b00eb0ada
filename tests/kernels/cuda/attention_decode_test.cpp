// The decode attention kernel (attention_decode.cuh) against a double-precision CPU reference: fresh
// random bf16 q/K/V, shuffled block tables whose unused entries point far outside the cache (a read
// past a sequence's keys is caught by memcheck), poisoned outputs and partials, contexts 1..32768,
// GQA ratios 1/3/4/8/16, head_dim 64/128/256, forced and heuristic split counts, a padding tile, a
// CUDA-graph replay with new contexts, and the refusals. Runs on a GPU only.
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <numeric>
#include <random>

#include "common/error.h"
#include "kernels/cuda/attention_decode.cuh"
#include "tests/kernels/cuda/attention_reference.h"
#include "tests/kernels/cuda/device_buffer.h"

namespace tessera::cuda::test {
namespace {

constexpr int32_t kBlock = 16;

// One decode batch in host and device memory: sequence s attends to keys [0, contexts[s]).
struct DecodeBatch {
  int32_t hq, hkv, D, max_blocks = 0;
  std::vector<int32_t> contexts, tables;
  std::vector<float> q_f, k_f, v_f;
  int64_t q_stride = 0;
  std::unique_ptr<DeviceBuffer<__nv_bfloat16>> q, kc, vc;
  std::unique_ptr<DeviceBuffer<int32_t>> d_tables;

  DecodeBatch(int32_t hq_, int32_t hkv_, int32_t d_, std::vector<int32_t> ctx, std::mt19937& rng)
      : hq(hq_), hkv(hkv_), D(d_), contexts(std::move(ctx)) {
    const int32_t nseq = static_cast<int32_t>(contexts.size());
    int32_t total = 0;
    for (int32_t c : contexts) {
      max_blocks = std::max(max_blocks, (c + kBlock - 1) / kBlock + 2);  // spare entries, never read
      total += (c + kBlock - 1) / kBlock;
    }
    std::vector<int32_t> perm(total);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    tables.assign(static_cast<size_t>(nseq) * max_blocks, INT32_MAX / 2);
    int32_t next = 0;
    for (int32_t s = 0; s < nseq; ++s)
      for (int32_t b = 0; b < (contexts[s] + kBlock - 1) / kBlock; ++b) tables[s * max_blocks + b] = perm[next++];
    const size_t cache_elems = static_cast<size_t>(total) * kBlock * hkv * D;
    kc = std::make_unique<DeviceBuffer<__nv_bfloat16>>(random_bf16(cache_elems, rng, 1.0f, &k_f));
    vc = std::make_unique<DeviceBuffer<__nv_bfloat16>>(random_bf16(cache_elems, rng, 1.0f, &v_f));
    q_stride = static_cast<int64_t>(hq + 2 * hkv) * D;  // q inside a fused qkv row
    q = std::make_unique<DeviceBuffer<__nv_bfloat16>>(random_bf16(static_cast<size_t>(nseq) * q_stride, rng, 2.0f, &q_f));
    d_tables = std::make_unique<DeviceBuffer<int32_t>>(tables);
  }

  int32_t nseq() const { return static_cast<int32_t>(contexts.size()); }

  // Tiles (one token per sequence) plus `padding` empty tiles, as CUDA-graph buckets use.
  std::vector<AttentionTile> tiles(int32_t padding) const {
    std::vector<AttentionTile> t;
    for (int32_t s = 0; s < nseq(); ++s) t.push_back({s, s, 1, contexts[s] - 1});
    for (int32_t i = 0; i < padding; ++i) t.push_back({0, 0, 0, 0});
    return t;
  }

  // softmax(q.K / sqrt(D)) V in double, [nseq, hq, D].
  std::vector<double> reference() const {
    std::vector<ReferenceChunk> chunks;
    for (int32_t s = 0; s < nseq(); ++s) chunks.push_back({s, contexts[s] - 1, 1});
    return paged_attention_reference(q_f, q_stride, PagedKvView{k_f, v_f, tables, max_blocks, kBlock}, chunks, hq, hkv,
                                     D);
  }
};

// ||got - want|| / ||want|| for each sequence on its own (a long context's small outputs are not hidden
// behind a short one's), the worst of them.
double worst_sequence_error(const std::vector<float>& got, const std::vector<double>& want, int32_t nseq) {
  const size_t per = got.size() / nseq;
  double worst = 0;
  for (int32_t s = 0; s < nseq; ++s) {
    const std::vector<float> g(got.begin() + s * per, got.begin() + (s + 1) * per);
    const std::vector<double> w(want.begin() + s * per, want.begin() + (s + 1) * per);
    worst = std::max(worst, rel_error(g, w));
  }
  return worst;
}

// Device-side arguments and outputs for one launch over a batch; tiles and outputs poisoned fresh.
struct DecodeLaunch {
  DeviceBuffer<AttentionTile> tiles;
  DeviceBuffer<float> o_part, ml_part;
  DeviceBuffer<__nv_bfloat16> out;
  AttentionArgs a;

  DecodeLaunch(const DecodeBatch& b, const std::vector<AttentionTile>& t, int32_t splits)
      : tiles(t),
        o_part(static_cast<size_t>(splits) * b.nseq() * b.hq * b.D),
        ml_part(static_cast<size_t>(splits) * b.nseq() * b.hq * 2),
        out(static_cast<size_t>(b.nseq()) * b.hq * b.D) {
    out.poison();
    o_part.poison();
    ml_part.poison();
    a.q = b.q->get();
    a.q_row_stride = b.q_stride;
    a.k_cache = b.kc->get();
    a.v_cache = b.vc->get();
    a.block_tables = b.d_tables->get();
    a.max_blocks_per_seq = b.max_blocks;
    a.block_size = kBlock;
    a.tiles = tiles.get();
    a.num_tiles = static_cast<int32_t>(t.size());
    a.max_q_len = 1;
    a.hq = b.hq;
    a.hkv = b.hkv;
    a.head_dim = b.D;
    a.scale = 1.0f / std::sqrt(static_cast<float>(b.D));
    a.splits = splits;
    a.tokens = b.nseq();
    a.o_part = o_part.get();
    a.ml_part = ml_part.get();
    a.out = out.get();
  }
};

struct DecodeCase {
  int32_t hq, hkv, head_dim;
  int32_t splits;  // 0: attention_decode_splits' choice for 132 SMs
};

class CudaDecodeAttention : public ::testing::TestWithParam<DecodeCase> {};

TEST_P(CudaDecodeAttention, EveryContextLengthMatchesReference) {
  const DecodeCase c = GetParam();
  std::mt19937 rng(std::random_device{}());
  DecodeBatch b(c.hq, c.hkv, c.head_dim, {1, 15, 16, 17, 1000, 32768}, rng);
  const auto tiles = b.tiles(1);
  const int32_t splits = c.splits > 0 ? c.splits
                                      : attention_decode_splits(static_cast<int32_t>(tiles.size()), c.hq, c.hkv,
                                                                c.head_dim, 132, 32768);
  const std::vector<double> want = b.reference();
  // The default path (tensor cores for GQA groups at head_dim 64/128), the CUDA-core kernel (-1), and
  // the tensor-core kernel with 1, 2 and 4 kv heads per block where they divide hkv.
  for (const int32_t variant : {0, -1, 1, 2, 4}) {
    if (variant > 0 && c.hkv % variant != 0) continue;
    DecodeLaunch l(b, tiles, splits);
    if (variant == 0)
      paged_attention_decode(l.a, nullptr);
    else if (variant < 0)
      paged_attention_decode_cuda_cores(l.a, nullptr);
    else
      paged_attention_decode_tc(l.a, variant, nullptr);
    const auto got = to_float(l.out.download());
    EXPECT_LT(worst_sequence_error(got, want, b.nseq()), 8e-3) << "splits " << splits << " variant " << variant;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaDecodeAttention,
                         ::testing::Values(DecodeCase{32, 8, 128, 1}, DecodeCase{32, 8, 128, 0},
                                           DecodeCase{32, 8, 128, 64}, DecodeCase{8, 8, 64, 0},
                                           DecodeCase{8, 8, 64, 5}, DecodeCase{16, 2, 256, 0},
                                           DecodeCase{16, 2, 256, 3}, DecodeCase{32, 4, 128, 16},
                                           DecodeCase{6, 2, 128, 7}, DecodeCase{32, 2, 64, 4},
                                           DecodeCase{16, 8, 64, 0}, DecodeCase{16, 8, 64, 2},
                                           DecodeCase{12, 3, 128, 0}));

TEST(CudaDecodeAttention, HeuristicSplitsFillTheGpuOnlyForLongContexts) {
  // 32 q / 8 kv heads: one sequence at 32k spreads over 64 splits; 64 sequences at 1k need none.
  EXPECT_EQ(attention_decode_splits(1, 32, 8, 128, 132, 32768), 64);
  EXPECT_EQ(attention_decode_splits(64, 32, 8, 128, 132, 1024), 1);
  EXPECT_EQ(attention_decode_splits(30, 32, 8, 128, 132, 1024), 2);  // 240 blocks: two splits fit
  EXPECT_EQ(attention_decode_splits(16, 32, 8, 128, 132, 8192), 4);
  EXPECT_EQ(attention_decode_splits(1, 32, 8, 128, 132, 300), 4);  // no split under 64 keys
  EXPECT_EQ(attention_decode_splits(1, 32, 8, 128, 132, 100), 1);
  EXPECT_EQ(attention_decode_splits(1, 32, 8, 128, 132, 512), 8);  // 1 x 512 keys in 8 splits of 64
  // Another minimum split (the runner's decode_min_split_keys).
  EXPECT_EQ(attention_decode_splits(1, 32, 8, 128, 132, 512, 256), 2);
  EXPECT_EQ(attention_decode_splits(64, 32, 8, 128, 132, 1024, 16), 1);  // residency still caps it
}

// 64 sequences x 8 kv heads (the b64 engine shape's 512 blocks) at 1 and 2 splits: every variant
// against the reference, on contexts of every length up to 600 (empty second splits included).
TEST(CudaDecodeAttention, FullWaveOfSequencesMatchesReference) {
  std::mt19937 rng(std::random_device{}());
  std::vector<int32_t> ctx = {1, 17, 31, 32, 33, 64, 95, 600};
  std::uniform_int_distribution<int32_t> len(1, 600);
  while (ctx.size() < 64) ctx.push_back(len(rng));
  DecodeBatch b(32, 8, 128, ctx, rng);
  const auto tiles = b.tiles(1);
  const std::vector<double> want = b.reference();
  for (const int32_t splits : {1, 2})
    for (const int32_t variant : {0, -1, 1, 2, 4}) {
      DecodeLaunch l(b, tiles, splits);
      if (variant == 0)
        paged_attention_decode(l.a, nullptr);
      else if (variant < 0)
        paged_attention_decode_cuda_cores(l.a, nullptr);
      else
        paged_attention_decode_tc(l.a, variant, nullptr);
      const auto got = to_float(l.out.download());
      EXPECT_LT(worst_sequence_error(got, want, b.nseq()), 8e-3) << "splits " << splits << " variant " << variant;
    }
}

TEST(CudaDecodeAttention, GraphReplayReadsNewContextsFromDeviceMemory) {
  std::mt19937 rng(std::random_device{}());
  DecodeBatch b(32, 8, 128, {3000, 700, 5000}, rng);
  std::vector<AttentionTile> t = b.tiles(1);
  DecodeLaunch l(b, t, 8);
  cudaStream_t s = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  paged_attention_decode(l.a, s);
  CUDA_CHECK(cudaStreamEndCapture(s, &graph));
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  // The next step: each sequence shorter or longer than at capture, the same split count.
  for (auto& ctx : b.contexts) ctx = ctx == 5000 ? 4999 : ctx + 1;
  for (int32_t i = 0; i < b.nseq(); ++i) t[i].first_pos = b.contexts[i] - 1;
  l.tiles.upload(t);
  l.out.poison();
  CUDA_CHECK(cudaGraphLaunch(exec, s));
  CUDA_CHECK(cudaStreamSynchronize(s));
  const auto got = to_float(l.out.download());
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(s);
  EXPECT_LT(worst_sequence_error(got, b.reference(), b.nseq()), 8e-3);
}

TEST(CudaDecodeAttention, RefusesWhatItDoesNotTake) {
  std::mt19937 rng(std::random_device{}());
  DecodeBatch b(8, 2, 64, {40}, rng);
  DecodeLaunch l(b, b.tiles(0), 2);
  AttentionArgs bad = l.a;
  bad.head_dim = 96;
  EXPECT_THROW(paged_attention_decode(bad, nullptr), Error);
  bad = l.a;
  bad.max_q_len = 2;
  EXPECT_THROW(paged_attention_decode(bad, nullptr), Error);
  bad = l.a;
  bad.hq = 7;
  EXPECT_THROW(paged_attention_decode(bad, nullptr), Error);
  bad = l.a;
  bad.splits = 1025;
  EXPECT_THROW(paged_attention_decode(bad, nullptr), Error);
  bad = l.a;
  bad.o_part = nullptr;
  EXPECT_THROW(paged_attention_decode(bad, nullptr), Error);
  EXPECT_THROW(paged_attention_decode_tc(l.a, 4, nullptr), Error);  // 4 kv heads per block, hkv 2
  EXPECT_THROW(paged_attention_decode_tc(l.a, 3, nullptr), Error);
  EXPECT_THROW(paged_attention_decode_tc(l.a, 0, nullptr), Error);
  EXPECT_FALSE(attention_decode_supported(8, 2, 96));
  EXPECT_TRUE(attention_decode_supported(32, 8, 128));
}

}  // namespace
}  // namespace tessera::cuda::test
