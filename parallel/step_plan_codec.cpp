// StepPlan / StepResult wire codec (see step_plan_codec.h).
#include "parallel/step_plan_codec.h"

#include <cmath>

#include "parallel/wire.h"

namespace tessera::parallel {
namespace {

// Upper bounds far above any real plan; they exist so a hostile count cannot ask for gigabytes.
constexpr size_t kMaxSeqs = 1 << 20;
constexpr size_t kMaxTokensPerSeq = 1 << 24;
constexpr size_t kMaxBlocksPerSeq = 1 << 24;
constexpr size_t kMaxLogitBias = 1 << 20;
constexpr size_t kMaxTop = 1 << 16;

void put_sampling(ByteWriter& w, const SamplingParams& s) {
  w.f32(s.temperature);
  w.i32(s.top_k);
  w.f32(s.top_p);
  w.f32(s.min_p);
  w.f32(s.repetition_penalty);
  w.f32(s.presence_penalty);
  w.f32(s.frequency_penalty);
  w.array(s.logit_bias, [](ByteWriter& w2, const std::pair<TokenId, float>& b) {
    w2.i32(b.first);
    w2.f32(b.second);
  });
  w.u64(s.seed);
  w.i32(s.logprobs);
  w.i32(s.prompt_logprobs);
}

SamplingParams get_sampling(ByteReader& r) {
  SamplingParams s;
  s.temperature = r.f32();
  s.top_k = r.i32();
  s.top_p = r.f32();
  s.min_p = r.f32();
  s.repetition_penalty = r.f32();
  s.presence_penalty = r.f32();
  s.frequency_penalty = r.f32();
  s.logit_bias = r.array<std::pair<TokenId, float>>(8, kMaxLogitBias, [](ByteReader& r2) {
    const TokenId t = r2.i32();
    const float b = r2.f32();
    return std::make_pair(t, b);
  });
  s.seed = r.u64();
  s.logprobs = r.i32();
  s.prompt_logprobs = r.i32();
  if (!std::isfinite(s.temperature) || s.temperature < 0) r.fail(fmt::format("temperature {}", s.temperature));
  if (s.top_k < 0) r.fail(fmt::format("top_k {}", s.top_k));
  if (!(s.top_p > 0 && s.top_p <= 1)) r.fail(fmt::format("top_p {}", s.top_p));
  if (s.logprobs < -1 || s.prompt_logprobs < -1)
    r.fail(fmt::format("logprobs {} / prompt_logprobs {}", s.logprobs, s.prompt_logprobs));
  return s;
}

void put_i32s(ByteWriter& w, const std::vector<int32_t>& v) {
  w.array(v, [](ByteWriter& w2, int32_t x) { w2.i32(x); });
}

std::vector<int32_t> get_nonneg_i32s(ByteReader& r, size_t max_count, const char* field) {
  return r.array<int32_t>(4, max_count, [field](ByteReader& r2) {
    const int32_t x = r2.i32();
    if (x < 0) r2.fail(fmt::format("{} holds the negative value {}", field, x));
    return x;
  });
}

NewSequence get_new_sequence(ByteReader& r) {
  NewSequence s;
  s.seq_id = r.u64();
  s.token_ids = get_nonneg_i32s(r, kMaxTokensPerSeq, "token_ids");
  s.num_prompt_tokens = r.i32();
  s.num_computed_tokens = r.i32();
  s.block_ids = get_nonneg_i32s(r, kMaxBlocksPerSeq, "block_ids");
  s.sampling = get_sampling(r);
  const auto n = static_cast<int64_t>(s.token_ids.size());
  if (n < 1) r.fail(fmt::format("sequence {} has no tokens", s.seq_id));
  if (s.num_prompt_tokens < 0 || s.num_prompt_tokens > n)
    r.fail(fmt::format("sequence {}: num_prompt_tokens {} outside [0, {}]", s.seq_id, s.num_prompt_tokens, n));
  if (s.num_computed_tokens < 0 || s.num_computed_tokens >= n)
    r.fail(fmt::format("sequence {}: num_computed_tokens {} outside [0, {})", s.seq_id, s.num_computed_tokens, n));
  return s;
}

SequenceWork get_work(ByteReader& r) {
  SequenceWork w;
  w.seq_id = r.u64();
  w.appended_token_ids = get_nonneg_i32s(r, kMaxTokensPerSeq, "appended_token_ids");
  w.num_tokens = r.i32();
  w.new_block_ids = get_nonneg_i32s(r, kMaxBlocksPerSeq, "new_block_ids");
  w.sample = r.boolean();
  if (w.num_tokens <= 0) r.fail(fmt::format("sequence {}: num_tokens {} (must be > 0)", w.seq_id, w.num_tokens));
  return w;
}

void put_logprob(ByteWriter& w, const TokenLogprob& t) {
  w.i32(t.token);
  w.f32(t.logprob);
}
TokenLogprob get_logprob(ByteReader& r) {
  TokenLogprob t;
  t.token = r.i32();
  t.logprob = r.f32();
  return t;
}

}  // namespace

std::vector<uint8_t> encode_step_plan(const StepPlan& plan) {
  ByteWriter w;
  w.u32(kStepPlanWireVersion);
  w.u64(plan.step_id);
  w.i32(plan.block_size);
  w.array(plan.freed, [](ByteWriter& w2, SeqId id) { w2.u64(id); });
  w.array(plan.new_sequences, [](ByteWriter& w2, const NewSequence& s) {
    w2.u64(s.seq_id);
    put_i32s(w2, s.token_ids);
    w2.i32(s.num_prompt_tokens);
    w2.i32(s.num_computed_tokens);
    put_i32s(w2, s.block_ids);
    put_sampling(w2, s.sampling);
  });
  w.array(plan.scheduled, [](ByteWriter& w2, const SequenceWork& s) {
    w2.u64(s.seq_id);
    put_i32s(w2, s.appended_token_ids);
    w2.i32(s.num_tokens);
    put_i32s(w2, s.new_block_ids);
    w2.boolean(s.sample);
  });
  return w.take();
}

StepPlan decode_step_plan(std::span<const uint8_t> bytes) {
  ByteReader r(bytes, "StepPlan");
  const uint32_t version = r.u32();
  if (version != kStepPlanWireVersion)
    r.fail(fmt::format("wire version {} (this build speaks {})", version, kStepPlanWireVersion));
  StepPlan plan;
  plan.step_id = r.u64();
  plan.block_size = r.i32();
  if (plan.block_size <= 0) r.fail(fmt::format("block_size {} (must be > 0)", plan.block_size));
  plan.freed = r.array<SeqId>(8, kMaxSeqs, [](ByteReader& r2) { return r2.u64(); });
  plan.new_sequences = r.array<NewSequence>(8 + 8 + 4 + 4 + 8, kMaxSeqs, get_new_sequence);
  plan.scheduled = r.array<SequenceWork>(8 + 8 + 4 + 8 + 1, kMaxSeqs, get_work);
  r.expect_end();
  int64_t total = 0;
  for (const auto& s : plan.scheduled) total += s.num_tokens;
  if (total > static_cast<int64_t>(INT32_MAX)) r.fail(fmt::format("plan computes {} tokens (over int32)", total));
  return plan;
}

std::vector<uint8_t> encode_step_result(const StepResult& result) {
  ByteWriter w;
  w.u32(kStepPlanWireVersion);
  w.u64(result.step_id);
  w.array(result.sampled, [](ByteWriter& w2, const SampledToken& s) {
    w2.u64(s.seq_id);
    w2.i32(s.token);
    w2.f32(s.logprob);
    w2.array(s.top, put_logprob);
  });
  w.array(result.prompt_logprobs, [](ByteWriter& w2, const PromptLogprobs& p) {
    w2.u64(p.seq_id);
    w2.i32(p.first_position);
    w2.array(p.chosen, put_logprob);
    w2.array(p.top, [](ByteWriter& w3, const std::vector<TokenLogprob>& v) { w3.array(v, put_logprob); });
  });
  return w.take();
}

StepResult decode_step_result(std::span<const uint8_t> bytes) {
  ByteReader r(bytes, "StepResult");
  const uint32_t version = r.u32();
  if (version != kStepPlanWireVersion)
    r.fail(fmt::format("wire version {} (this build speaks {})", version, kStepPlanWireVersion));
  StepResult res;
  res.step_id = r.u64();
  res.sampled = r.array<SampledToken>(8 + 4 + 4 + 8, kMaxSeqs, [](ByteReader& r2) {
    SampledToken s;
    s.seq_id = r2.u64();
    s.token = r2.i32();
    s.logprob = r2.f32();
    s.top = r2.array<TokenLogprob>(8, kMaxTop, get_logprob);
    return s;
  });
  res.prompt_logprobs = r.array<PromptLogprobs>(8 + 4 + 8 + 8, kMaxSeqs, [](ByteReader& r2) {
    PromptLogprobs p;
    p.seq_id = r2.u64();
    p.first_position = r2.i32();
    p.chosen = r2.array<TokenLogprob>(8, kMaxTokensPerSeq, get_logprob);
    p.top = r2.array<std::vector<TokenLogprob>>(8, kMaxTokensPerSeq, [](ByteReader& r3) {
      return r3.array<TokenLogprob>(8, kMaxTop, get_logprob);
    });
    return p;
  });
  r.expect_end();
  return res;
}

namespace {

bool same_sampling(const SamplingParams& a, const SamplingParams& b) {
  return a.temperature == b.temperature && a.top_k == b.top_k && a.top_p == b.top_p && a.min_p == b.min_p &&
         a.repetition_penalty == b.repetition_penalty && a.presence_penalty == b.presence_penalty &&
         a.frequency_penalty == b.frequency_penalty && a.logit_bias == b.logit_bias && a.seed == b.seed &&
         a.logprobs == b.logprobs && a.prompt_logprobs == b.prompt_logprobs;
}
bool same_new(const NewSequence& a, const NewSequence& b) {
  return a.seq_id == b.seq_id && a.token_ids == b.token_ids && a.num_prompt_tokens == b.num_prompt_tokens &&
         a.num_computed_tokens == b.num_computed_tokens && a.block_ids == b.block_ids &&
         same_sampling(a.sampling, b.sampling);
}
bool same_work(const SequenceWork& a, const SequenceWork& b) {
  return a.seq_id == b.seq_id && a.appended_token_ids == b.appended_token_ids && a.num_tokens == b.num_tokens &&
         a.new_block_ids == b.new_block_ids && a.sample == b.sample;
}
template <typename T, typename Eq>
bool same_all(const std::vector<T>& a, const std::vector<T>& b, Eq eq) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!eq(a[i], b[i])) return false;
  return true;
}

}  // namespace

bool same_plan(const StepPlan& a, const StepPlan& b) {
  return a.step_id == b.step_id && a.block_size == b.block_size && a.freed == b.freed &&
         same_all(a.new_sequences, b.new_sequences, same_new) && same_all(a.scheduled, b.scheduled, same_work);
}

}  // namespace tessera::parallel
