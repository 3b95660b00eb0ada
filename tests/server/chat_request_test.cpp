// The chat-completions validator: messages are normalised, chat-only fields checked, and features
// Tessera does not have (JSON mode, audio, forced tool calls) refused rather than ignored.
#include <gtest/gtest.h>

#include "server/api_error.h"
#include "server/json_fields.h"
#include "server/request_validator.h"

namespace tessera::server {
namespace {

ApiLimits limits() {
  ApiLimits l;
  l.model_names = {"tiny", "alias"};
  l.max_model_len = 128;
  l.vocab_size = 500;
  return l;
}

ApiError refusal(const std::string& body) {
  try {
    validate_chat_request(parse_request_body(body), limits());
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << body;
  return ApiError(ErrorCode::kInternal, "", "");
}

TEST(ChatValidator, NormalisesContentPartsToText) {
  auto r = validate_chat_request(
      parse_request_body(R"({"model":"alias","messages":[{"role":"system","content":"be brief"},
        {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],
        "max_completion_tokens":9,"logprobs":true,"top_logprobs":3,"chat_template_kwargs":{"enable_thinking":false}})"),
      limits());
  EXPECT_EQ(r.gen.model, "alias");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[1]["content"], "ab");
  EXPECT_EQ(r.gen.stopping.max_tokens, 9);
  EXPECT_EQ(r.gen.sampling.logprobs, 3);
  EXPECT_TRUE(r.add_generation_prompt);
  EXPECT_EQ(r.chat_template_kwargs["enable_thinking"], false);
}

TEST(ChatValidator, AcceptsIgnoredOpenAiFields) {
  auto r = validate_chat_request(
      parse_request_body(R"({"messages":[{"role":"user","content":"x"}],"store":false,"metadata":{"a":"b"},
        "service_tier":"auto","parallel_tool_calls":true,"reasoning_effort":"low","response_format":{"type":"text"},
        "modalities":["text"],"tool_choice":"auto","user":"me","prompt_cache_key":"k","verbosity":"low"})"),
      limits());
  EXPECT_EQ(r.gen.sampling.logprobs, -1);
}

TEST(ChatValidator, RefusesEmptyOrMalformedMessages) {
  EXPECT_EQ(refusal(R"({"messages":[]})").param(), "messages");
  EXPECT_EQ(refusal(R"({"model":"tiny"})").param(), "messages");
  EXPECT_EQ(refusal(R"({"messages":"hi"})").param(), "messages");
  EXPECT_EQ(refusal(R"({"messages":[{"content":"x"}]})").param(), "messages");
  EXPECT_EQ(refusal(R"({"messages":[{"role":"wizard","content":"x"}]})").param(), "messages");
  EXPECT_EQ(refusal(R"({"messages":[{"role":"user"}]})").param(), "messages");
  EXPECT_EQ(refusal(R"({"messages":[{"role":"user","content":"x","mood":"happy"}]})").param(), "messages");
  auto img = refusal(R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]})");
  EXPECT_EQ(img.code(), ErrorCode::kUnimplemented);
}

TEST(ChatValidator, RefusesJsonModeClearly) {
  auto e = refusal(R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}})");
  EXPECT_EQ(e.code(), ErrorCode::kUnimplemented);
  EXPECT_EQ(e.param(), "response_format");
  EXPECT_NE(std::string(e.what()).find("json_object"), std::string::npos);
  EXPECT_EQ(refusal(R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema"}})").code(),
            ErrorCode::kUnimplemented);
}

TEST(ChatValidator, RefusesOtherUnsupportedFeatures) {
  const std::string m = R"("messages":[{"role":"user","content":"x"}])";
  EXPECT_EQ(refusal("{" + m + R"(,"audio":{"voice":"x"}})").param(), "audio");
  EXPECT_EQ(refusal("{" + m + R"(,"tool_choice":"required"})").param(), "tool_choice");
  EXPECT_EQ(refusal("{" + m + R"(,"modalities":["text","audio"]})").param(), "modalities");
  EXPECT_EQ(refusal("{" + m + R"(,"top_logprobs":2})").param(), "top_logprobs");
  EXPECT_EQ(refusal("{" + m + R"(,"max_tokens":5,"max_completion_tokens":6})").param(), "max_completion_tokens");
  EXPECT_EQ(refusal("{" + m + R"(,"echo":true})").param(), "echo");
  EXPECT_EQ(refusal("{" + m + R"(,"model":"nope"})").code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace tessera::server
