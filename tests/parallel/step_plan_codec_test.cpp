// StepPlan / StepResult wire codec: random plans round-trip exactly; random bytes, truncations and
// single-byte mutations of valid encodings never crash the decoder (they decode or throw Error).
#include <gtest/gtest.h>

#include <random>

#include "common/error.h"
#include "parallel/step_plan_codec.h"

namespace tessera::parallel {
namespace {

StepPlan random_plan(std::mt19937_64& rng) {
  auto u = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  StepPlan p;
  p.step_id = rng();
  p.block_size = 1 << u(0, 6);
  for (int i = u(0, 4); i > 0; --i) p.freed.push_back(rng());
  for (int i = u(0, 4); i > 0; --i) {
    NewSequence s;
    s.seq_id = rng();
    for (int t = u(1, 50); t > 0; --t) s.token_ids.push_back(u(0, 150000));
    s.num_prompt_tokens = u(0, static_cast<int>(s.token_ids.size()));
    s.num_computed_tokens = u(0, static_cast<int>(s.token_ids.size()) - 1);
    for (int b = u(0, 5); b > 0; --b) s.block_ids.push_back(u(0, 100000));
    s.sampling.temperature = static_cast<float>(u(0, 20)) / 10.0f;
    s.sampling.top_k = u(0, 100);
    s.sampling.top_p = static_cast<float>(u(1, 10)) / 10.0f;
    s.sampling.min_p = 0.05f;
    s.sampling.repetition_penalty = 1.1f;
    s.sampling.presence_penalty = -0.5f;
    s.sampling.frequency_penalty = 0.25f;
    for (int b = u(0, 3); b > 0; --b) s.sampling.logit_bias.emplace_back(u(0, 1000), -100.0f);
    s.sampling.seed = rng();
    s.sampling.logprobs = u(-1, 5);
    s.sampling.prompt_logprobs = u(-1, 5);
    p.new_sequences.push_back(std::move(s));
  }
  for (int i = u(0, 6); i > 0; --i) {
    SequenceWork w;
    w.seq_id = rng();
    for (int t = u(0, 2); t > 0; --t) w.appended_token_ids.push_back(u(0, 150000));
    w.num_tokens = u(1, 512);
    for (int b = u(0, 3); b > 0; --b) w.new_block_ids.push_back(u(0, 100000));
    w.sample = u(0, 1) == 1;
    p.scheduled.push_back(std::move(w));
  }
  return p;
}

TEST(StepPlanCodec, RandomPlansRoundTripExactly) {
  std::mt19937_64 rng(std::random_device{}());
  for (int i = 0; i < 500; ++i) {
    const StepPlan p = random_plan(rng);
    const auto bytes = encode_step_plan(p);
    const StepPlan q = decode_step_plan(bytes);
    ASSERT_TRUE(same_plan(p, q)) << "plan " << i;
    EXPECT_EQ(encode_step_plan(q), bytes);
  }
}

TEST(StepPlanCodec, ResultRoundTrips) {
  StepResult r;
  r.step_id = 42;
  r.sampled.push_back({7, 1234, -0.5f, {{1234, -0.5f}, {99, -2.0f}}});
  PromptLogprobs pl;
  pl.seq_id = 7;
  pl.first_position = 1;
  pl.chosen = {{5, -1.0f}, {6, -3.0f}};
  pl.top = {{{5, -1.0f}}, {{8, -0.1f}, {6, -3.0f}}};
  r.prompt_logprobs.push_back(pl);
  const StepResult q = decode_step_result(encode_step_result(r));
  EXPECT_EQ(q.step_id, 42u);
  ASSERT_EQ(q.sampled.size(), 1u);
  EXPECT_EQ(q.sampled[0].token, 1234);
  EXPECT_EQ(q.sampled[0].top.size(), 2u);
  ASSERT_EQ(q.prompt_logprobs.size(), 1u);
  EXPECT_EQ(q.prompt_logprobs[0].top[1][0].token, 8);
}

TEST(StepPlanCodec, InvalidPlansAreRefusedNamingTheField) {
  StepPlan p;
  SequenceWork w;
  w.seq_id = 3;
  w.num_tokens = 0;
  p.scheduled.push_back(w);
  try {
    decode_step_plan(encode_step_plan(p));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDataLoss);
    EXPECT_NE(std::string(e.what()).find("num_tokens 0"), std::string::npos) << e.what();
  }
  auto bytes = encode_step_plan(StepPlan{});
  bytes[0] = 99;  // wire version
  EXPECT_THROW(decode_step_plan(bytes), Error);
}

// A bounded fuzz: random bytes, truncated and mutated valid encodings. Any outcome but a crash,
// a hang or an exception other than tessera::Error fails the test (ASan runs it too).
TEST(StepPlanCodec, RandomBytesNeverCrashTheDecoder) {
  std::mt19937_64 rng(std::random_device{}());
  int decoded = 0, refused = 0;
  auto attempt = [&](const std::vector<uint8_t>& b) {
    try {
      decode_step_plan(b);
      ++decoded;
    } catch (const Error&) {
      ++refused;
    }
    try {
      decode_step_result(b);
    } catch (const Error&) {
    }
  };
  for (int i = 0; i < 3000; ++i) {
    std::vector<uint8_t> b(std::uniform_int_distribution<int>(0, 256)(rng));
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    if (b.size() >= 4 && (i % 2 == 0)) b[0] = 1, b[1] = b[2] = b[3] = 0;  // valid version half the time
    attempt(b);
  }
  for (int i = 0; i < 300; ++i) {
    const auto valid = encode_step_plan(random_plan(rng));
    for (int k = 0; k < 10; ++k) {
      auto b = valid;
      b[rng() % b.size()] = static_cast<uint8_t>(rng());
      attempt(b);
      b.resize(rng() % valid.size());
      attempt(b);
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(decoded + refused, 6000);
}

}  // namespace
}  // namespace tessera::parallel
