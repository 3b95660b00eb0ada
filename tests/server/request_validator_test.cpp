// The shared request validator refuses every malformed completions request with the field named,
// and maps valid ones into sampling/stopping parameters.
#include <gtest/gtest.h>

#include <string>

#include "server/api_error.h"
#include "server/json_fields.h"
#include "server/request_validator.h"

namespace tessera::server {
namespace {

ApiLimits limits() {
  ApiLimits l;
  l.model_names = {"tiny"};
  l.max_model_len = 256;
  l.vocab_size = 1000;
  l.max_n = 8;
  l.max_logprobs = 5;
  return l;
}

// Runs the validator on a JSON text and returns the ApiError it throws (fails if none).
ApiError refusal(const std::string& body) {
  try {
    validate_completion_request(parse_request_body(body), limits());
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << body;
  return ApiError(ErrorCode::kInternal, "", "");
}

TEST(CompletionValidator, MapsOpenAiFields) {
  auto r = validate_completion_request(
      parse_request_body(R"({"model":"tiny","prompt":"hi","temperature":0.5,"top_p":0.9,"n":2,"max_tokens":7,
        "stop":["a","b"],"seed":-3,"logprobs":2,"presence_penalty":1,"frequency_penalty":-1,"stream":true,
        "stream_options":{"include_usage":true},"logit_bias":{"5":-100},"user":"u"})"),
      limits());
  EXPECT_EQ(r.gen.model, "tiny");
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(*r.prompts[0].text, "hi");
  EXPECT_FLOAT_EQ(r.gen.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.gen.sampling.top_p, 0.9f);
  EXPECT_EQ(r.gen.n, 2);
  EXPECT_EQ(r.gen.stopping.max_tokens, 7);
  EXPECT_EQ(r.gen.stopping.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(r.gen.seed_given);
  EXPECT_EQ(r.gen.sampling.seed, static_cast<uint64_t>(-3));
  EXPECT_EQ(r.gen.sampling.logprobs, 2);
  EXPECT_EQ(r.gen.sampling.prompt_logprobs, -1);
  EXPECT_TRUE(r.gen.stream);
  EXPECT_TRUE(r.gen.include_usage);
  ASSERT_EQ(r.gen.sampling.logit_bias.size(), 1u);
  EXPECT_EQ(r.gen.sampling.logit_bias[0].first, 5);
}

TEST(CompletionValidator, DefaultsFollowOpenAi) {
  auto r = validate_completion_request(parse_request_body(R"({"prompt":"x"})"), limits());
  EXPECT_EQ(r.gen.model, "tiny");
  EXPECT_EQ(r.gen.stopping.max_tokens, 16);
  EXPECT_FALSE(r.gen.max_tokens_given);
  EXPECT_FALSE(r.gen.seed_given);
  EXPECT_EQ(r.gen.n, 1);
  EXPECT_FLOAT_EQ(r.gen.sampling.temperature, 1.0f);
}

TEST(CompletionValidator, AcceptsEveryPromptShape) {
  auto ids = validate_completion_request(parse_request_body(R"({"prompt":[1,2,3]})"), limits());
  ASSERT_EQ(ids.prompts.size(), 1u);
  EXPECT_EQ(ids.prompts[0].token_ids, (std::vector<TokenId>{1, 2, 3}));
  auto many = validate_completion_request(parse_request_body(R"({"prompt":["a",[4,5],"b"]})"), limits());
  ASSERT_EQ(many.prompts.size(), 3u);
  EXPECT_EQ(*many.prompts[2].text, "b");
  EXPECT_EQ(many.prompts[1].token_ids, (std::vector<TokenId>{4, 5}));
}

TEST(CompletionValidator, EchoWithLogprobsAsksForPromptLogprobs) {
  auto r = validate_completion_request(parse_request_body(R"({"prompt":"x","echo":true,"logprobs":1,"max_tokens":1})"),
                                       limits());
  EXPECT_TRUE(r.echo);
  EXPECT_EQ(r.gen.sampling.prompt_logprobs, 1);
  EXPECT_EQ(r.gen.sampling.logprobs, 1);
}

TEST(CompletionValidator, RefusesMalformedJsonWithOffset) {
  auto e = refusal(R"({"prompt": "x",)");
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
}

TEST(CompletionValidator, RefusesNonObjectBodies) {
  EXPECT_NE(std::string(refusal("[1,2]").what()).find("JSON object"), std::string::npos);
  EXPECT_NE(std::string(refusal("").what()).find("empty"), std::string::npos);
}

TEST(CompletionValidator, RefusesInvalidUtf8NamingTheOffset) {
  auto e = refusal("{\"prompt\":\"a\xff\"}");
  EXPECT_NE(std::string(e.what()).find("UTF-8"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("offset 12"), std::string::npos) << e.what();
}

TEST(CompletionValidator, RefusesDeepNesting) {
  std::string deep(100000, '[');
  auto e = refusal(R"({"prompt":)" + deep);
  EXPECT_NE(std::string(e.what()).find("nests deeper"), std::string::npos) << e.what();
}

TEST(CompletionValidator, RefusesUnknownFieldsByName) {
  auto e = refusal(R"({"prompt":"x","temprature":1})");
  EXPECT_EQ(e.param(), "temprature");
  EXPECT_NE(std::string(e.what()).find("unknown field 'temprature'"), std::string::npos);
  auto nested = refusal(R"({"prompt":"x","stream":true,"stream_options":{"usage":true}})");
  EXPECT_EQ(nested.param(), "stream_options.usage");
}

TEST(CompletionValidator, RefusesWrongTypes) {
  EXPECT_EQ(refusal(R"({"prompt":"x","max_tokens":"5"})").param(), "max_tokens");
  EXPECT_EQ(refusal(R"({"prompt":"x","max_tokens":5.5})").param(), "max_tokens");
  EXPECT_EQ(refusal(R"({"prompt":"x","temperature":"hot"})").param(), "temperature");
  EXPECT_EQ(refusal(R"({"prompt":"x","stream":1})").param(), "stream");
  EXPECT_EQ(refusal(R"({"prompt":5})").param(), "prompt");
  EXPECT_EQ(refusal(R"({"prompt":[1,"a"]})").param(), "prompt");
  EXPECT_EQ(refusal(R"({"prompt":"x","stop":[1]})").param(), "stop");
  EXPECT_EQ(refusal(R"({"prompt":"x","logit_bias":{"abc":1}})").param(), "logit_bias");
}

TEST(CompletionValidator, RefusesOutOfRangeValuesNamingTheValue) {
  auto t = refusal(R"({"prompt":"x","temperature":-0.5})");
  EXPECT_EQ(t.param(), "temperature");
  EXPECT_NE(std::string(t.what()).find("-0.5"), std::string::npos) << t.what();
  EXPECT_EQ(refusal(R"({"prompt":"x","temperature":2.5})").param(), "temperature");
  EXPECT_EQ(refusal(R"({"prompt":"x","top_p":0})").param(), "top_p");
  EXPECT_EQ(refusal(R"({"prompt":"x","top_p":1.01})").param(), "top_p");
  auto n = refusal(R"({"prompt":"x","n":1000000})");
  EXPECT_EQ(n.param(), "n");
  EXPECT_NE(std::string(n.what()).find("1000000"), std::string::npos);
  EXPECT_EQ(refusal(R"({"prompt":"x","n":0})").param(), "n");
  auto mt = refusal(R"({"prompt":"x","max_tokens":1000000000})");
  EXPECT_EQ(mt.param(), "max_tokens");
  EXPECT_NE(std::string(mt.what()).find("1000000000"), std::string::npos);
  EXPECT_EQ(refusal(R"({"prompt":"x","max_tokens":-1})").param(), "max_tokens");
  EXPECT_EQ(refusal(R"({"prompt":"x","max_tokens":18446744073709551615})").param(), "max_tokens");
  EXPECT_EQ(refusal(R"({"prompt":"x","logprobs":6})").param(), "logprobs");
  EXPECT_EQ(refusal(R"({"prompt":"x","presence_penalty":3})").param(), "presence_penalty");
  EXPECT_EQ(refusal(R"({"prompt":"x","logit_bias":{"1":101}})").param(), "logit_bias");
  EXPECT_EQ(refusal(R"({"prompt":[1000]})").param(), "prompt");
  EXPECT_EQ(refusal(R"({"prompt":[-1]})").param(), "prompt");
  EXPECT_EQ(refusal(R"({"prompt":"x","stop":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]})")
                .param(),
            "stop");
}

TEST(CompletionValidator, RefusesEmptyPrompts) {
  EXPECT_EQ(refusal(R"({"prompt":""})").param(), "prompt");
  EXPECT_EQ(refusal(R"({"prompt":[]})").param(), "prompt");
  EXPECT_EQ(refusal(R"({"prompt":[[]]})").param(), "prompt");
  EXPECT_EQ(refusal(R"({})").param(), "prompt");
}

TEST(CompletionValidator, UnknownModelIsNotFound) {
  auto e = refusal(R"({"model":"gpt-4","prompt":"x"})");
  EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  EXPECT_EQ(e.param(), "model");
  EXPECT_NE(std::string(e.what()).find("gpt-4"), std::string::npos);
}

TEST(CompletionValidator, RefusesUnsupportedFeaturesClearly) {
  auto s = refusal(R"({"prompt":"x","suffix":"end"})");
  EXPECT_EQ(s.code(), ErrorCode::kUnimplemented);
  EXPECT_EQ(s.param(), "suffix");
  EXPECT_EQ(refusal(R"({"prompt":"x","best_of":3})").code(), ErrorCode::kUnimplemented);
  EXPECT_EQ(refusal(R"({"prompt":"x","stream_options":{"include_usage":true}})").param(), "stream_options");
}

TEST(TokenizeValidator, AcceptsPromptOrMessages) {
  auto p = validate_tokenize_request(parse_request_body(R"({"prompt":"hello"})"), limits());
  EXPECT_EQ(*p.prompt, "hello");
  auto m = validate_tokenize_request(parse_request_body(R"({"messages":[{"role":"user","content":"hi"}]})"), limits());
  ASSERT_TRUE(m.chat.has_value());
  EXPECT_FALSE(m.add_special_tokens);
  auto d = validate_detokenize_request(parse_request_body(R"({"tokens":[1,2]})"), limits());
  EXPECT_EQ(d.tokens, (std::vector<TokenId>{1, 2}));
  EXPECT_THROW(validate_detokenize_request(parse_request_body(R"({"tokens":[5000]})"), limits()), ApiError);
  EXPECT_THROW(validate_tokenize_request(parse_request_body(R"({"prompt":"x","extra":1})"), limits()), ApiError);
}

}  // namespace
}  // namespace tessera::server
