// CUDA tensor-parallel ranks on one GPU (label gpu: built everywhere, run where a GPU is):
//  - each rank's weights, from the checkpoint (slices read through parallel::slice_weight) and from
//    the dummy fill, are bit for bit the whole model's slices, at --tp 2 and 4 (KV heads split and
//    replicated, the last rank's vocabulary block shorter);
//  - the TP runtime at --tp 1 (a real one-rank RankGroup and NcclCommunicator, the all-reduces and
//    the logits all-gather on the runner's stream, captured in the decode graphs) computes the
//    plain CUDA runner's logits and greedy tokens, on the built-in random checkpoint.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "model/checkpoint.h"
#include "model/cuda_runner.h"
#include "model/cuda_weights.h"
#include "model/default_model.h"
#include "model/model_config.h"
#include "parallel/rank_group.h"
#include "parallel/shard_spec.h"
#include "parallel/tp_cuda_runner.h"
#include "tests/parallel/greedy_step_plans.h"

namespace tessera::parallel {
namespace {

using Bits = std::vector<uint16_t>;

Bits download(const void* p, size_t n) {  // n bf16 elements
  Bits out(n);
  if (n > 0) {
    EXPECT_EQ(cudaMemcpy(out.data(), p, n * 2, cudaMemcpyDeviceToHost), cudaSuccess);
  }
  return out;
}

// rows x cols block at (row0, col0) of a row-major matrix with full_cols columns.
Bits block(const Bits& m, int64_t full_cols, int64_t row0, int64_t rows, int64_t col0, int64_t cols) {
  Bits out;
  out.reserve(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out.push_back(m[static_cast<size_t>((row0 + r) * full_cols + col0 + c)]);
  return out;
}

Bits concat(Bits a, const Bits& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

struct Loaded {
  std::unique_ptr<cuda::CudaWeights> w;
};

Loaded make_weights(const ModelConfig& full, const std::optional<ShardPlan>& plan, bool dummy, cudaStream_t s) {
  Loaded l;
  l.w = std::make_unique<cuda::CudaWeights>(full, DType::kBF16, plan);
  if (dummy) {
    l.w->fill_dummy(7, s);
  } else {
    l.w->load(cuda::checkpoint_tensor_source(Checkpoint::open(ensure_default_model())), s);
  }
  return l;
}

void expect_shard_is_slice(const ModelConfig& f, const cuda::CudaWeights& whole, const cuda::CudaWeights& part,
                           const ShardPlan& p) {
  const int64_t H = f.hidden_size, I = f.intermediate_size, D = f.head_dim;
  const int64_t q = f.q_size(), kv = f.kv_size();
  const int64_t q0 = int64_t{p.first_head} * D, qn = int64_t{p.num_heads} * D;
  const int64_t kv0 = int64_t{p.first_kv_head} * D, kvn = int64_t{p.num_kv_heads} * D;
  const int64_t i0 = p.first_intermediate, in = p.intermediate;
  const std::string rank = "rank " + std::to_string(p.spec.rank) + " of " + std::to_string(p.spec.tp_size);
  for (size_t i = 0; i < whole.layers().size(); ++i) {
    const auto& a = whole.layers()[i];
    const auto& b = part.layers()[i];
    SCOPED_TRACE(rank + ", layer " + std::to_string(i));
    const Bits qkv = download(a.qkv, static_cast<size_t>((q + 2 * kv) * H));
    EXPECT_EQ(download(b.qkv, static_cast<size_t>((qn + 2 * kvn) * H)),
              concat(concat(block(qkv, H, q0, qn, 0, H), block(qkv, H, q + kv0, kvn, 0, H)),
                     block(qkv, H, q + kv + kv0, kvn, 0, H)))
        << "q/k/v rows";
    if (a.qkv_bias != nullptr) {
      const Bits bias = download(a.qkv_bias, static_cast<size_t>(q + 2 * kv));
      EXPECT_EQ(download(b.qkv_bias, static_cast<size_t>(qn + 2 * kvn)),
                concat(concat(block(bias, 1, q0, qn, 0, 1), block(bias, 1, q + kv0, kvn, 0, 1)),
                       block(bias, 1, q + kv + kv0, kvn, 0, 1)))
          << "q/k/v bias";
    }
    EXPECT_EQ(download(b.o, static_cast<size_t>(H * qn)), block(download(a.o, H * q), q, 0, H, q0, qn)) << "o_proj";
    const Bits gu = download(a.gate_up, static_cast<size_t>(2 * I * H));
    EXPECT_EQ(download(b.gate_up, static_cast<size_t>(2 * in * H)),
              concat(block(gu, H, i0, in, 0, H), block(gu, H, I + i0, in, 0, H)))
        << "gate/up rows";
    EXPECT_EQ(download(b.down, static_cast<size_t>(H * in)), block(download(a.down, H * I), I, 0, H, i0, in))
        << "down_proj";
    EXPECT_EQ(download(b.input_norm, H), download(a.input_norm, H));
    EXPECT_EQ(download(b.post_norm, H), download(a.post_norm, H));
    if (a.q_norm != nullptr) {
      EXPECT_EQ(download(b.q_norm, D), download(a.q_norm, D));
      EXPECT_EQ(download(b.k_norm, D), download(a.k_norm, D));
    }
  }
  const size_t V = static_cast<size_t>(f.vocab_size);
  const Bits embed = download(whole.embed(), V * H);
  EXPECT_EQ(download(part.embed(), static_cast<size_t>(p.vocab_rows * H)),
            block(embed, H, p.first_vocab, p.vocab_rows, 0, H))
      << rank << ": embedding rows";
  const Bits head = download(whole.lm_head(), V * H);
  const Bits part_head = download(part.lm_head(), static_cast<size_t>(p.vocab_per_rank) * H);
  EXPECT_EQ(Bits(part_head.begin(), part_head.begin() + p.vocab_rows * H),
            block(head, H, p.first_vocab, p.vocab_rows, 0, H))
      << rank << ": lm_head rows";
  EXPECT_TRUE(std::all_of(part_head.begin() + p.vocab_rows * H, part_head.end(), [](uint16_t x) { return x == 0; }))
      << rank << ": the padding rows of the last vocabulary block are zero";
  EXPECT_EQ(download(part.final_norm(), H), download(whole.final_norm(), H));
}

class ShardWeights : public ::testing::TestWithParam<bool> {};

TEST_P(ShardWeights, EveryRankHoldsExactlyItsSliceOfTheWholeModel) {
  const bool dummy = GetParam();
  const ModelConfig f = ModelConfig::from_directory(ensure_default_model());
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreate(&s), cudaSuccess);
  const Loaded whole = make_weights(f, std::nullopt, dummy, s);
  for (int tp : {2, 4}) {
    for (int r = 0; r < tp; ++r) {
      const ShardPlan p = make_shard_plan(f, {r, tp});
      const Loaded part = make_weights(f, p, dummy, s);
      expect_shard_is_slice(f, *whole.w, *part.w, p);
    }
  }
  cudaStreamDestroy(s);
}

INSTANTIATE_TEST_SUITE_P(DummyAndCheckpoint, ShardWeights, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "dummy" : "checkpoint"; });

using testing::decode;
using testing::prefill;

TEST(TpCudaRunner, TpOneOverNcclComputesThePlainRunnersLogitsAndTokens) {
  const auto dir = ensure_default_model();
  const ModelConfig f = ModelConfig::from_directory(dir);
  // GEMM algorithms fixed on both sides (autotuning times them, and two runners may pick different
  // ones): then TP = 1 over NCCL must compute exactly what the plain runner does.
  cuda::CudaRunnerOptions plain_opts;
  plain_opts.max_kv_blocks = 64;
  plain_opts.max_model_len = 512;
  plain_opts.gemm_autotune = false;
  cuda::CudaRunner plain(f, plain_opts);
  plain.load_weights(cuda::checkpoint_tensor_source(Checkpoint::open(dir)));

  RankGroupConfig gc;
  gc.rank = 0;
  gc.world_size = 1;
  auto group = RankGroup::join(gc, LaunchSecret::generate());
  TpModelOptions m;
  m.model_dir = dir;
  m.device = "cuda";
  m.num_kv_blocks = 64;
  m.max_model_len = 512;
  m.gemm_autotune = false;
  const ShardPlan plan = make_shard_plan(f, {0, 1});
  ShardRunner sr = make_cuda_shard_runner(ShardRunnerRequest{m, f, plan, *group, 0, 1}, CudaRankOptions{});
  auto* tp = dynamic_cast<cuda::CudaRunner*>(sr.executor.get());
  ASSERT_NE(tp, nullptr);

  std::vector<TokenId> prompt;
  for (int i = 0; i < 40; ++i) prompt.push_back((i * 7919 + 13) % f.vocab_size);
  std::vector<float> la, lb;
  StepResult ra = plain.execute_with_logits(prefill(1, prompt), &la);
  StepResult rb = tp->execute_with_logits(prefill(1, prompt), &lb);
  ASSERT_EQ(la.size(), lb.size());
  double max_ref = 0, max_diff = 0;
  size_t argmax_same = 0, rows = la.size() / f.vocab_size;
  for (size_t r = 0; r < rows; ++r) {
    const float* a = la.data() + r * f.vocab_size;
    const float* b = lb.data() + r * f.vocab_size;
    argmax_same += std::max_element(a, a + f.vocab_size) - a == std::max_element(b, b + f.vocab_size) - b;
    for (int32_t v = 0; v < f.vocab_size; ++v) {
      max_ref = std::max(max_ref, std::fabs(double(a[v])));
      max_diff = std::max(max_diff, std::fabs(double(a[v]) - b[v]));
    }
  }
  const bool bitwise = std::memcmp(la.data(), lb.data(), la.size() * sizeof(float)) == 0;
  std::printf("TP=1 over NCCL vs plain CUDA runner, %zu prefill rows: bitwise equal %s, max |diff| %.3g (max |logit| %.3g), "
              "argmax equal %zu/%zu\n", rows, bitwise ? "yes" : "no", max_diff, max_ref, argmax_same, rows);
  EXPECT_EQ(argmax_same, rows);
  EXPECT_TRUE(bitwise) << "the same weights, kernels and GEMM algorithms: max |diff| " << max_diff;
  ASSERT_EQ(ra.sampled.size(), 1u);
  ASSERT_EQ(rb.sampled.size(), 1u);
  EXPECT_EQ(ra.sampled[0].token, rb.sampled[0].token);

  // Greedy decode steps, replayed from the decode graphs (the NCCL calls captured in them).
  TokenId ta = ra.sampled[0].token, tb = rb.sampled[0].token;
  std::vector<TokenId> ga, gb;
  for (uint64_t step = 2; step < 26; ++step) {
    ta = plain.execute(decode(step, 1, ta)).sampled.at(0).token;
    tb = tp->execute(decode(step, 1, tb)).sampled.at(0).token;
    ga.push_back(ta);
    gb.push_back(tb);
  }
  EXPECT_EQ(ga, gb) << "greedy tokens through the decode graphs";
  sr.executor.reset();
  group->shutdown();
}

}  // namespace
}  // namespace tessera::parallel
