// Decode CUDA graphs captured at start (CudaRunner::capture_decode_graphs), on a GPU (label gpu):
//  - a pre-captured runner gives bitwise the tokens and logprobs of a runner that captures each graph
//    on first use, and the tokens of an eager runner (no graphs), over a run where sequences join and
//    leave (batch sizes changing within buckets 1..16), contexts cross the decode split thresholds and the
//    batches' sampler modes change (greedy, temperature, top-k, logprobs); bf16 and fp32;
//  - after pre-capture no step captures a graph (CudaRunner::step_graph_captures), while the
//    first-use runner's steps do; a second capture_decode_graphs captures nothing;
//  - a runner reading a tuning cache makes the tuned runner's decode choices (in-step tuning included).
// The model is the built-in default model's shape with dummy weights; GEMM autotuning is off so
// every runner makes the same GEMM choices.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <map>
#include <memory>

#include "model/cuda_runner.h"
#include "model/default_model.h"
#include "model/model_config.h"

namespace tessera::cuda {
namespace {

enum class Graphs { kNone, kOnFirstUse, kAtStart };

struct Request {
  int32_t prompt = 0;   // prompt tokens
  int32_t outputs = 0;  // tokens to generate
  int32_t start = 0;    // the driver iteration it arrives at
  SamplingParams sampling;
};

struct Trace {
  std::vector<TokenId> tokens;  // every sampled token, in step and row order
  std::vector<float> logprobs;
  std::map<int32_t, int32_t> batch_sizes;  // decode-only steps per batch size
  int32_t max_context = 0;
};

SamplingParams greedy() {
  SamplingParams s;
  s.temperature = 0.0f;
  return s;
}
SamplingParams temperature(uint64_t seed) {  // a no-selection batch (temperature only)
  SamplingParams s;
  s.temperature = 0.8f;
  s.seed = seed;
  return s;
}
SamplingParams top_k(uint64_t seed) {  // a full-sampler batch
  SamplingParams s;
  s.temperature = 1.0f;
  s.top_k = 40;
  s.seed = seed;
  return s;
}
SamplingParams greedy_logprobs() {  // greedy, but the selection pass runs for the top logprobs
  SamplingParams s = greedy();
  s.logprobs = 3;
  return s;
}

// Greedy requests first (greedy-only batches), then temperature (no-selection), then top-k and
// logprobs (full); short and long prompts so contexts cross 32, 64, 128 and 256 keys while running.
std::vector<Request> requests() {
  return {
      {5, 60, 0, greedy()},          {40, 90, 0, greedy()},          {17, 30, 3, greedy()},
      {120, 150, 8, greedy()},       {9, 45, 20, temperature(11)},   {70, 80, 25, temperature(12)},
      {200, 120, 40, greedy()},      {3, 25, 45, top_k(13)},         {33, 70, 60, greedy_logprobs()},
      {260, 40, 70, temperature(14)}, {1, 200, 90, greedy()},         {64, 64, 130, top_k(15)},
  };
}

CudaRunnerOptions options(DType dtype, Graphs graphs) {
  CudaRunnerOptions o;
  o.dtype = dtype;
  o.max_num_seqs = 16;
  o.max_num_tokens = 1024;
  o.max_model_len = 512;
  o.max_kv_blocks = 1024;
  o.gemm_autotune = false;
  o.cuda_graphs = graphs != Graphs::kNone;
  o.decode_min_split_keys = 16;  // split thresholds at contexts 32, 64, 128, 256 (bf16 decode kernel)
  return o;
}

ModelConfig model() { return ModelConfig::from_json(default_model_config_json()); }

// Runs the requests to completion: an iteration where requests arrive prefills them (a mixed step),
// every other one is a decode-only step of every running sequence; finished sequences are freed.
Trace drive(CudaRunner& r, const std::vector<Request>& reqs) {
  struct Running {
    SeqId id;
    int32_t left;
    int32_t length;
    TokenId last;
  };
  Trace t;
  std::vector<Running> running;
  std::vector<SeqId> freed;
  BlockId next_block = 0;
  uint64_t step_id = 0;
  size_t next = 0;
  for (int32_t it = 0; next < reqs.size() || !running.empty(); ++it) {
    const bool arrivals = next < reqs.size() && reqs[next].start <= it;
    if (!arrivals && running.empty()) continue;  // nothing to run until the next arrival
    StepPlan p;
    p.step_id = step_id++;
    p.block_size = r.block_size();
    p.freed = std::move(freed);
    freed.clear();
    if (arrivals) {
      while (next < reqs.size() && reqs[next].start <= it) {
        const Request& q = reqs[next];
        NewSequence n;
        n.seq_id = static_cast<SeqId>(next + 1);
        for (int32_t i = 0; i < q.prompt; ++i) n.token_ids.push_back((n.seq_id * 7919 + i * 104729) % 150000);
        n.num_prompt_tokens = q.prompt;
        const int32_t blocks = (q.prompt + q.outputs + r.block_size() - 1) / r.block_size();
        for (int32_t b = 0; b < blocks; ++b) n.block_ids.push_back(next_block++);
        n.sampling = q.sampling;
        p.scheduled.push_back(SequenceWork{n.seq_id, {}, q.prompt, {}, true});
        running.push_back(Running{n.seq_id, q.outputs, q.prompt, 0});
        p.new_sequences.push_back(std::move(n));
        ++next;
      }
    } else {
      for (Running& s : running) {
        p.scheduled.push_back(SequenceWork{s.id, {s.last}, 1, {}, true});
        t.max_context = std::max(t.max_context, s.length + 1);
      }
      ++t.batch_sizes[static_cast<int32_t>(running.size())];
    }
    const StepResult res = r.execute(p);
    for (const SampledToken& st : res.sampled) {
      t.tokens.push_back(st.token);
      t.logprobs.push_back(st.logprob);
      for (const TokenLogprob& top : st.top) t.logprobs.push_back(top.logprob);
    }
    for (const SampledToken& st : res.sampled) {  // an arrival step samples the new sequences only
      auto s = std::find_if(running.begin(), running.end(), [&](const Running& x) { return x.id == st.seq_id; });
      if (s == running.end()) {
        ADD_FAILURE() << "a token for sequence " << st.seq_id << ", which is not running";
        continue;
      }
      if (!arrivals) s->length += 1;  // the decode step computed the last token's KV
      s->last = st.token;
      s->left -= 1;
    }
    for (auto s = running.begin(); s != running.end();) {
      if (s->left <= 0) {
        freed.push_back(s->id);
        s = running.erase(s);
      } else {
        ++s;
      }
    }
  }
  return t;
}

// Index of the first token where a and b differ (a.size() when equal; shorter counts as different).
size_t first_difference(const std::vector<TokenId>& a, const std::vector<TokenId>& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return i == a.size() && a.size() == b.size() ? a.size() : i;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

class GraphPrecapture : public ::testing::TestWithParam<DType> {};

TEST_P(GraphPrecapture, SameTokensAsFirstUseAndEagerAndNoCaptureInSteps) {
  const ModelConfig c = model();
  const auto reqs = requests();
  Trace at_start, first_use, eager;
  int captured = 0;
  {
    CudaRunner r(c, options(GetParam(), Graphs::kAtStart));
    r.load_dummy_weights(5);
    captured = r.capture_decode_graphs();
    EXPECT_GT(captured, 0);
    EXPECT_EQ(static_cast<size_t>(captured), r.num_decode_graphs());
    EXPECT_EQ(r.capture_decode_graphs(), 0) << "a second call captured keys the first had";
    at_start = drive(r, reqs);
    EXPECT_EQ(r.step_graph_captures(), 0) << "a step captured a graph after capture_decode_graphs";
    EXPECT_EQ(r.num_decode_graphs(), static_cast<size_t>(captured));
  }
  {
    CudaRunner r(c, options(GetParam(), Graphs::kOnFirstUse));
    r.load_dummy_weights(5);
    first_use = drive(r, reqs);
    EXPECT_GT(r.step_graph_captures(), 3) << "the first-use runner's steps captured too few graphs";
    EXPECT_EQ(r.num_decode_graphs(), static_cast<size_t>(r.step_graph_captures()));
    EXPECT_LE(r.num_decode_graphs(), static_cast<size_t>(captured)) << "steps needed keys pre-capture missed";
  }
  {
    CudaRunner r(c, options(GetParam(), Graphs::kNone));
    r.load_dummy_weights(5);
    EXPECT_EQ(r.capture_decode_graphs(), 0);
    eager = drive(r, reqs);
    EXPECT_EQ(r.num_decode_graphs(), 0u);
  }
  // The run exercised what it claims: many batch sizes, contexts past 256 keys.
  EXPECT_GE(at_start.batch_sizes.size(), 6u);
  EXPECT_GT(at_start.max_context, 256);
  ASSERT_FALSE(at_start.tokens.empty());
  EXPECT_EQ(first_difference(at_start.tokens, first_use.tokens), at_start.tokens.size())
      << "pre-captured vs first-use tokens (" << at_start.tokens.size() << " vs " << first_use.tokens.size() << ")";
  EXPECT_TRUE(bitwise_equal(at_start.logprobs, first_use.logprobs)) << "logprobs differ from the first-use runner's";
  EXPECT_EQ(first_difference(at_start.tokens, eager.tokens), at_start.tokens.size())
      << "pre-captured vs eager tokens (" << at_start.tokens.size() << " vs " << eager.tokens.size() << ")";
}

INSTANTIATE_TEST_SUITE_P(Dtypes, GraphPrecapture, ::testing::Values(DType::kBF16, DType::kF32),
                         [](const auto& info) { return info.param == DType::kF32 ? "fp32" : "bf16"; });

// The serving order: GEMM autotuning at start, then pre-capture; no step times a shape or captures.
TEST(GraphPrecaptureServing, AfterTuningNoStepCaptures) {
  CudaRunnerOptions o = options(DType::kBF16, Graphs::kAtStart);
  o.gemm_autotune = true;
  CudaRunner r(model(), o);
  r.load_dummy_weights(9);
  r.tune_gemms();
  EXPECT_GT(r.capture_decode_graphs(), 0);
  const Trace t = drive(r, requests());
  EXPECT_EQ(r.step_graph_captures(), 0);
  EXPECT_FALSE(t.tokens.empty());
}

// The in-step decode tuning's choices are what the tuning cache keeps: a runner reading the cache a
// tuned runner wrote (in-step tuning included) makes the same decode projection choices for batches
// 1..16 without timing, and replays the same requests to bitwise the same tokens and logprobs.
TEST(GraphPrecaptureServing, ATuningCacheReplaysTheInStepDecodeChoicesBitwise) {
  const std::string cache = ::testing::TempDir() + "tessera_chain_tuning_" + std::to_string(::getpid()) + ".json";
  std::remove(cache.c_str());
  CudaRunnerOptions o = options(DType::kBF16, Graphs::kAtStart);
  o.gemm_autotune = true;
  o.gemm_tuning_cache = cache;
  ASSERT_TRUE(o.decode_chain_tuning) << "the runner's default";
  std::vector<std::vector<DecodePath>> tuned_choices, cached_choices;
  Trace tuned, cached;
  for (const bool from_cache : {false, true}) {
    CudaRunner r(model(), o);
    r.load_dummy_weights(9);
    const int timed = r.tune_gemms();
    if (from_cache) EXPECT_EQ(timed, 0) << "the cache left shapes to time";
    else EXPECT_GT(timed, 0);
    r.capture_decode_graphs();
    auto& choices = from_cache ? cached_choices : tuned_choices;
    for (const int32_t batch : {1, 2, 4, 8, 16}) choices.push_back(r.decode_projection_paths(batch));
    (from_cache ? cached : tuned) = drive(r, requests());
  }
  std::remove(cache.c_str());
  EXPECT_EQ(cached_choices, tuned_choices);
  EXPECT_GE(tuned_choices.front().front().gemv_variant, 0) << "batch 1's qkv projection is not on a gemv";
  ASSERT_FALSE(tuned.tokens.empty());
  EXPECT_EQ(first_difference(tuned.tokens, cached.tokens), tuned.tokens.size());
  EXPECT_TRUE(bitwise_equal(tuned.logprobs, cached.logprobs));
}

}  // namespace
}  // namespace tessera::cuda
