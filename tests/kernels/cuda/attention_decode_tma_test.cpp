// The TMA decode attention kernel (attention_decode_tma.cuh) against the double-precision reference:
// fresh random bf16 q/K/V; shuffled block tables whose unused entries point far outside the cache;
// the cache rows past each sequence's last key (the rest of its last page, which the kernel copies
// whole) poisoned with NaN; poisoned outputs and partials; cache blocks of 16 and 32 keys; contexts of
// 1..32,768 keys, not multiples of the page, and new keys at a page boundary; 1..64 sequences of mixed
// lengths; GQA groups of 2, 4, 8 and 12 heads at head_dim 64/128; forced and heuristic split counts;
// CUDA-graph replay bitwise equal to eager launches; the refusals. On a device other than compute
// capability 9.0 the kernel is not taken and the tests check that it refuses. Runs on a GPU only.
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>

#include "common/error.h"
#include "kernels/cuda/attention_decode.cuh"
#include "kernels/cuda/attention_decode_tma.cuh"
#include "tests/kernels/cuda/attention_reference.h"
#include "tests/kernels/cuda/decode_batch.h"
#include "tests/kernels/cuda/device_buffer.h"

namespace tessera::cuda::test {
namespace {

// A decode batch whose cache rows past each sequence's last key hold NaN (the kernel copies whole pages).
DecodeBatch tma_batch(int32_t hq, int32_t hkv, int32_t d, int32_t bs, std::vector<int32_t> ctx, std::mt19937& rng) {
  return DecodeBatch(hq, hkv, d, std::move(ctx), rng, bs, /*nan_past_end=*/true);
}

bool bitwise_equal(const std::vector<__nv_bfloat16>& x, const std::vector<__nv_bfloat16>& y) {
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(__nv_bfloat16)) == 0;
}

// Whether the kernel runs here (compute capability 9.0); elsewhere each test checks the refusal.
bool tma_here() { return this_device().compute_capability == 90; }

struct TmaCase {
  int32_t hq, hkv, head_dim, block_size;
  int32_t splits;  // 0: attention_decode_splits' choice for 132 SMs
};

class CudaDecodeTma : public ::testing::TestWithParam<TmaCase> {};

TEST_P(CudaDecodeTma, EveryContextLengthMatchesReference) {
  const TmaCase c = GetParam();
  std::mt19937 rng(std::random_device{}());
  // 17 / 33 / 1025: this step's key opens a new page; 1, 15, 31, 1000: a partial last page.
  DecodeBatch b =
      tma_batch(c.hq, c.hkv, c.head_dim, c.block_size, {1, 15, 16, 17, 31, 33, 1000, 1025, 32768}, rng);
  const auto tiles = b.tiles(1);
  const int32_t splits = c.splits > 0 ? c.splits
                                      : attention_decode_splits(static_cast<int32_t>(tiles.size()), c.hq, c.hkv,
                                                                c.head_dim, 132, 32768);
  DecodeLaunch l(b, tiles, splits);
  if (!tma_here()) {
    EXPECT_FALSE(attention_decode_tma_takes(l.a, this_device()));
    EXPECT_THROW(paged_attention_decode_tma(l.a, this_device(), nullptr), Error);
    return;
  }
  ASSERT_TRUE(attention_decode_tma_takes(l.a, this_device()));
  paged_attention_decode_tma(l.a, this_device(), nullptr);
  const auto got = l.out.download();
  EXPECT_LT(worst_sequence_error(to_float(got), b.reference(), b.nseq()), 8e-3) << "splits " << splits;
  l.out.poison();  // a second launch: the same bits (fixed split and merge order)
  paged_attention_decode_tma(l.a, this_device(), nullptr);
  EXPECT_TRUE(bitwise_equal(l.out.download(), got));
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaDecodeTma,
                         ::testing::Values(TmaCase{32, 8, 128, 16, 1}, TmaCase{32, 8, 128, 16, 0},
                                           TmaCase{32, 8, 128, 16, 64}, TmaCase{32, 8, 128, 32, 0},
                                           TmaCase{32, 8, 128, 32, 3}, TmaCase{8, 4, 64, 16, 0},
                                           TmaCase{16, 2, 128, 16, 7}, TmaCase{32, 4, 64, 16, 5},
                                           TmaCase{48, 4, 128, 16, 0}, TmaCase{48, 4, 64, 32, 2}));

// 1, 5 and 64 sequences of mixed lengths (64: the b64 engine shape's 512 blocks), 1 and 2 splits, the
// TMA kernel and the default entry point (which takes it on compute capability 9.0) against the
// reference.
TEST(CudaDecodeTma, MixedBatchesMatchReference) {
  std::mt19937 rng(std::random_device{}());
  for (const int32_t nseq : {1, 5, 64}) {
    std::vector<int32_t> ctx;
    std::uniform_int_distribution<int32_t> len(1, 2100);
    for (int32_t i = 0; i < nseq; ++i) ctx.push_back(len(rng));
    DecodeBatch b = tma_batch(32, 8, 128, 16, ctx, rng);
    const auto tiles = b.tiles(nseq == 64 ? 0 : 3);
    const std::vector<double> want = b.reference();
    for (const int32_t splits : {1, 2}) {
      DecodeLaunch l(b, tiles, splits);
      if (!tma_here()) {
        EXPECT_THROW(paged_attention_decode_tma(l.a, this_device(), nullptr), Error);
        continue;
      }
      paged_attention_decode_tma(l.a, this_device(), nullptr);
      EXPECT_LT(worst_sequence_error(to_float(l.out.download()), want, b.nseq()), 8e-3)
          << nseq << " sequences, splits " << splits;
      DecodeLaunch ref(b, tiles, splits);  // the default entry point agrees with the reference as well
      paged_attention_decode(ref.a, this_device(), nullptr);
      EXPECT_LT(worst_sequence_error(to_float(ref.out.download()), want, b.nseq()), 8e-3);
    }
  }
}

// Batches of a block per SM and more (40 and 80 sequences x 8 kv heads at ~1k keys: on an H200's 528
// resident slots attention_decode_splits picks 1 and 3 splits) at every split count 1..8 through the
// default entry point (the TMA kernel on compute capability 9.0, bitwise equal to calling it directly;
// the tensor-core kernel elsewhere) against the reference, graph-bucket padding tiles included.
TEST(CudaDecodeTma, BatchesAtEveryWholeWaveSplitCountMatchReference) {
  std::mt19937 rng(std::random_device{}());
  EXPECT_EQ(attention_decode_splits(40, 32, 8, 128, 132, 1100), 1);
  EXPECT_EQ(attention_decode_splits(80, 32, 8, 128, 132, 1100), 3);
  for (const int32_t nseq : {40, 80}) {
    std::vector<int32_t> ctx = {1, 16, 17, 33, 1100};  // an empty split or two at 8 splits of the short ones
    std::uniform_int_distribution<int32_t> len(900, 1100);
    while (static_cast<int32_t>(ctx.size()) < nseq) ctx.push_back(len(rng));
    DecodeBatch b = tma_batch(32, 8, 128, 16, ctx, rng);
    const auto tiles = b.tiles(nseq == 80 ? 0 : 8);
    const std::vector<double> want = b.reference();
    for (int32_t splits = 1; splits <= 8; ++splits) {
      DecodeLaunch l(b, tiles, splits);
      paged_attention_decode(l.a, this_device(), nullptr);
      const auto got = l.out.download();
      EXPECT_LT(worst_sequence_error(to_float(got), want, b.nseq()), 8e-3) << nseq << " sequences, splits " << splits;
      if (!tma_here()) continue;
      EXPECT_TRUE(attention_decode_tma_default(l.a, this_device()));
      l.out.poison();
      paged_attention_decode_tma(l.a, this_device(), nullptr);
      EXPECT_TRUE(bitwise_equal(l.out.download(), got)) << nseq << " sequences, splits " << splits;
    }
  }
}

// A launch captured in a CUDA graph: its replays read new contexts (each sequence one key longer,
// one crossing into a new page) from device memory and equal, bit for bit, an eager launch on them.
TEST(CudaDecodeTma, GraphReplayEqualsEagerBitwise) {
  std::mt19937 rng(std::random_device{}());
  // The last sequence's new key opens page 2.
  DecodeBatch b = tma_batch(32, 8, 128, 16, {3001, 701, 5000, 33}, rng);
  std::vector<AttentionTile> shorter = b.tiles(1), full = b.tiles(1);
  for (int32_t s = 0; s < b.nseq(); ++s) shorter[s].first_pos -= 1;  // the step before
  DecodeLaunch l(b, shorter, 8);
  if (!tma_here()) {
    EXPECT_THROW(paged_attention_decode_tma(l.a, this_device(), nullptr), Error);
    return;
  }
  cudaStream_t s = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  paged_attention_decode_tma(l.a, this_device(), s);
  CUDA_CHECK(cudaStreamEndCapture(s, &graph));
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  // Replay, then eager, on the same tiles; the uploads and poisoning (default stream) finish first.
  auto replay_and_eager = [&](std::vector<__nv_bfloat16>* replayed, std::vector<__nv_bfloat16>* eager) {
    l.out.poison();
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaGraphLaunch(exec, s));
    CUDA_CHECK(cudaStreamSynchronize(s));
    *replayed = l.out.download();
    l.out.poison();
    CUDA_CHECK(cudaDeviceSynchronize());
    paged_attention_decode_tma(l.a, this_device(), s);
    CUDA_CHECK(cudaStreamSynchronize(s));
    *eager = l.out.download();
  };
  std::vector<__nv_bfloat16> replayed, eager;
  replay_and_eager(&replayed, &eager);
  EXPECT_TRUE(bitwise_equal(replayed, eager));
  l.tiles.upload(full);  // the next step: every sequence one key longer
  replay_and_eager(&replayed, &eager);
  EXPECT_TRUE(bitwise_equal(replayed, eager));
  EXPECT_LT(worst_sequence_error(to_float(replayed), b.reference(), b.nseq()), 8e-3);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(s);
}

// paged_attention_decode sends launches of at least a block per SM (at one split) here on compute
// capability 9.0, at any split count (the whole-wave splits); never a few sequences' blocks, split or
// not, or another device. The rule reads only the DecodeDevice it is given (an H200's 132 SMs, a
// B200's 148), never the device it runs on.
TEST(CudaDecodeTma, DefaultForBatchesAtAnySplitCount) {
  std::mt19937 rng(std::random_device{}());
  DecodeBatch b = tma_batch(32, 8, 128, 16, {40}, rng);
  DecodeLaunch l(b, b.tiles(0), 2);
  const DecodeDevice h200{90, 132}, b200{100, 148};
  AttentionArgs batch = l.a;  // the arguments are only inspected, never launched
  batch.splits = 1;
  batch.num_tiles = 17;  // x 8 kv heads: 136 blocks, one per SM
  EXPECT_TRUE(attention_decode_tma_default(batch, h200));
  EXPECT_FALSE(attention_decode_tma_default(batch, b200));
  AttentionArgs under = batch;
  under.num_tiles = 16;  // 128 blocks: 4 SMs idle
  EXPECT_FALSE(attention_decode_tma_default(under, h200));
  EXPECT_TRUE(attention_decode_tma_default(under, DecodeDevice{90, 128}));
  AttentionArgs few = batch;
  few.num_tiles = 1;
  EXPECT_FALSE(attention_decode_tma_default(few, h200));
  AttentionArgs split = batch;
  for (const int32_t splits : {2, 3, 8}) {
    split.splits = splits;
    EXPECT_TRUE(attention_decode_tma_default(split, h200)) << splits;
  }
  few.splits = 64;  // b1/32k: a few sequences' blocks, however many splits
  EXPECT_FALSE(attention_decode_tma_default(few, h200));
  AttentionArgs here = batch;  // a block per SM of this device
  here.num_tiles = (this_device().sm_count + 7) / 8;
  EXPECT_EQ(attention_decode_tma_default(here, this_device()), tma_here());
  batch.head_dim = 256;
  EXPECT_FALSE(attention_decode_tma_default(batch, h200));
}

TEST(CudaDecodeTma, RefusesWhatItDoesNotTake) {
  std::mt19937 rng(std::random_device{}());
  DecodeBatch b = tma_batch(8, 2, 64, 16, {40}, rng);
  DecodeLaunch l(b, b.tiles(0), 2);
  AttentionArgs bad = l.a;
  bad.head_dim = 256;
  EXPECT_FALSE(attention_decode_tma_takes(bad, this_device()));
  EXPECT_THROW(paged_attention_decode_tma(bad, this_device(), nullptr), Error);
  bad = l.a;
  bad.hq = 2;  // MHA: no GQA group to put in mma rows
  EXPECT_FALSE(attention_decode_tma_takes(bad, this_device()));
  EXPECT_THROW(paged_attention_decode_tma(bad, this_device(), nullptr), Error);
  bad = l.a;
  bad.block_size = 8;  // a 16-key page would span two cache blocks
  EXPECT_FALSE(attention_decode_tma_takes(bad, this_device()));
  EXPECT_THROW(paged_attention_decode_tma(bad, this_device(), nullptr), Error);
  bad = l.a;
  bad.max_q_len = 2;
  EXPECT_THROW(paged_attention_decode_tma(bad, this_device(), nullptr), Error);
  bad = l.a;
  bad.splits = 1025;
  EXPECT_THROW(paged_attention_decode_tma(bad, this_device(), nullptr), Error);
  bad = l.a;
  bad.o_part = nullptr;
  EXPECT_THROW(paged_attention_decode_tma(bad, this_device(), nullptr), Error);
  bad = l.a;
  bad.hq = 7;
  EXPECT_THROW(paged_attention_decode_tma(bad, this_device(), nullptr), Error);
  // Another device than the one given (the kernel is empty there): refused before any launch.
  EXPECT_FALSE(attention_decode_tma_takes(l.a, DecodeDevice{100, 148}));
  EXPECT_THROW(paged_attention_decode_tma(l.a, DecodeDevice{100, 148}, nullptr), Error);
}

}  // namespace
}  // namespace tessera::cuda::test
