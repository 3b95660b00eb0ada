// Engine outputs become OpenAI-shaped chunks and responses: global choice indices over prompts x n,
// chat role deltas first, echo with the prompt's own logprobs, usage summed over prompts.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <string>

#include "server/openai_response_builder.h"

namespace tessera::server {
namespace {

using nlohmann::json;

std::string token_text(TokenId id) { return fmt::format("<{}>", id); }

ChoiceDelta delta(int32_t index, std::vector<TokenId> ids, std::string text) {
  ChoiceDelta d;
  d.index = index;
  d.token_ids = std::move(ids);
  d.text = std::move(text);
  return d;
}

TEST(OpenAiResponseBuilder, CompletionChunksUseGlobalChoiceIndices) {
  ResponseShape shape{ApiKind::kCompletion, "cmpl-1", "tiny", 7, /*n=*/2, /*num_prompts=*/2, false, -1, true};
  OpenAiResponseBuilder b(shape, {{"p0", {1}}, {"p1", {2}}}, token_text);
  EXPECT_TRUE(b.start_events().empty());
  RequestOutput out;
  out.choices.push_back(delta(1, {5}, "hi"));
  out.usage = {1, 1, 0};
  auto events = b.stream_events(1, out);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["choices"][0]["index"], 3);
  EXPECT_EQ(events[0]["choices"][0]["text"], "hi");
  EXPECT_TRUE(events[0]["usage"].is_null());
  RequestOutput last;
  last.choices.push_back(delta(0, {6}, "!"));
  last.choices.back().finish_reason = FinishReason::kLength;
  last.usage = {3, 4, 0};
  last.finished = true;
  events = b.stream_events(0, last);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["choices"][0]["finish_reason"], "length");
  auto usage = b.usage_event();
  ASSERT_TRUE(usage.has_value());
  EXPECT_EQ((*usage)["usage"]["prompt_tokens"], 4);
  EXPECT_EQ((*usage)["usage"]["completion_tokens"], 5);
  EXPECT_EQ((*usage)["usage"]["total_tokens"], 9);
  EXPECT_TRUE((*usage)["choices"].empty());
}

TEST(OpenAiResponseBuilder, ChatStreamsRoleFirstThenContent) {
  ResponseShape shape{ApiKind::kChat, "chatcmpl-1", "tiny", 7, 2, 1, false, 1, false};
  OpenAiResponseBuilder b(shape, {{"", {1}}}, token_text);
  auto start = b.start_events();
  ASSERT_EQ(start.size(), 2u);
  EXPECT_EQ(start[1]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(start[0]["object"], "chat.completion.chunk");
  EXPECT_FALSE(start[0].contains("usage"));
  RequestOutput out;
  out.choices.push_back(delta(0, {9}, "yo"));
  SampledToken t;
  t.token = 9;
  t.logprob = -0.5f;
  t.top = {{9, -0.5f}, {3, -1.5f}};
  out.choices.back().logprobs = {t};
  auto ev = b.stream_events(0, out);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["choices"][0]["delta"]["content"], "yo");
  const json& lp = ev[0]["choices"][0]["logprobs"]["content"][0];
  EXPECT_EQ(lp["token"], "<9>");
  EXPECT_FLOAT_EQ(lp["logprob"].get<float>(), -0.5f);
  EXPECT_EQ(lp["top_logprobs"].size(), 2u);
  EXPECT_EQ(lp["top_logprobs"][1]["token"], "<3>");
}

TEST(OpenAiResponseBuilder, EchoReturnsThePromptsOwnLogprobs) {
  ResponseShape shape{ApiKind::kCompletion, "cmpl-2", "tiny", 7, 1, 1, /*echo=*/true, /*logprobs=*/1, false};
  OpenAiResponseBuilder b(shape, {{"ab", {10, 11}}}, token_text);
  RequestOutput out;
  PromptLogprobs plp;
  plp.first_position = 1;
  plp.chosen = {{11, -2.0f}};
  plp.top = {{{12, -0.1f}}};
  out.prompt_logprobs = plp;
  out.choices.push_back(delta(0, {13}, "c"));
  SampledToken t;
  t.token = 13;
  t.logprob = -0.25f;
  t.top = {{13, -0.25f}};
  out.choices.back().logprobs = {t};
  out.choices.back().finish_reason = FinishReason::kLength;
  out.usage = {2, 1, 0};
  out.finished = true;
  b.accumulate(0, out);
  json r = b.final_response();
  const json& c = r["choices"][0];
  EXPECT_EQ(c["text"], "abc");
  EXPECT_EQ(c["logprobs"]["tokens"], json({"<10>", "<11>", "<13>"}));
  EXPECT_TRUE(c["logprobs"]["token_logprobs"][0].is_null());
  EXPECT_FLOAT_EQ(c["logprobs"]["token_logprobs"][1].get<float>(), -2.0f);
  EXPECT_FLOAT_EQ(c["logprobs"]["token_logprobs"][2].get<float>(), -0.25f);
  EXPECT_TRUE(c["logprobs"]["top_logprobs"][0].is_null());
  EXPECT_FLOAT_EQ(c["logprobs"]["top_logprobs"][1]["<12>"].get<float>(), -0.1f);
  EXPECT_EQ(c["logprobs"]["text_offset"], json({0, 4, 2}));
  EXPECT_EQ(r["usage"]["total_tokens"], 3);
}

}  // namespace
}  // namespace tessera::server
