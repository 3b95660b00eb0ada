// tessera.v1 requests -> validator JSON, errors -> statuses (see grpc_request_json.h).
#include "server/grpc_request_json.h"

#include <string>
#include <vector>

#include "server/api_error.h"
#include "server/json_fields.h"

namespace tessera::server {

using nlohmann::json;

namespace {

grpc::StatusCode grpc_code(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return grpc::StatusCode::INVALID_ARGUMENT;
    case ErrorCode::kNotFound: return grpc::StatusCode::NOT_FOUND;
    case ErrorCode::kResourceExhausted: return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case ErrorCode::kUnavailable: return grpc::StatusCode::UNAVAILABLE;
    case ErrorCode::kDeadlineExceeded: return grpc::StatusCode::DEADLINE_EXCEEDED;
    case ErrorCode::kUnauthenticated: return grpc::StatusCode::UNAUTHENTICATED;
    case ErrorCode::kFailedPrecondition: return grpc::StatusCode::FAILED_PRECONDITION;
    case ErrorCode::kUnimplemented: return grpc::StatusCode::UNIMPLEMENTED;
    case ErrorCode::kDataLoss: return grpc::StatusCode::DATA_LOSS;
    case ErrorCode::kCancelled: return grpc::StatusCode::CANCELLED;
    case ErrorCode::kInternal: return grpc::StatusCode::INTERNAL;
  }
  return grpc::StatusCode::INTERNAL;
}

}  // namespace

grpc::Status to_status(const Error& e) {
  const auto* api = dynamic_cast<const ApiError*>(&e);
  std::string msg = e.what();
  if (api && !api->param().empty() && msg.find(api->param()) == std::string::npos) {
    msg = api->param() + ": " + msg;
  }
  return grpc::Status(grpc_code(e.code()), msg);
}

namespace {

// SamplingParameters -> the OpenAI JSON fields the validator reads. Chat takes logprobs as
// logprobs:true + top_logprobs:k; completions as logprobs:k.
void sampling_to_json(const v1::SamplingParameters& s, bool chat, json& j) {
  if (s.has_temperature()) j["temperature"] = s.temperature();
  if (s.has_top_p()) j["top_p"] = s.top_p();
  if (s.has_top_k()) j["top_k"] = s.top_k();
  if (s.has_min_p()) j["min_p"] = s.min_p();
  if (s.has_presence_penalty()) j["presence_penalty"] = s.presence_penalty();
  if (s.has_frequency_penalty()) j["frequency_penalty"] = s.frequency_penalty();
  if (s.has_repetition_penalty()) j["repetition_penalty"] = s.repetition_penalty();
  if (!s.logit_bias().empty()) {
    json lb = json::object();
    for (const auto& [id, bias] : s.logit_bias()) {
      API_CHECK(id >= 0, kInvalidArgument, "logit_bias", "logit_bias key {} is not a token id", id);
      lb[std::to_string(id)] = bias;
    }
    j["logit_bias"] = lb;
  }
  if (s.has_seed()) j["seed"] = s.seed();
  if (s.has_max_tokens()) j["max_tokens"] = s.max_tokens();
  if (s.has_min_tokens()) j["min_tokens"] = s.min_tokens();
  if (s.stop_size() > 0) j["stop"] = std::vector<std::string>(s.stop().begin(), s.stop().end());
  if (s.stop_token_ids_size() > 0) {
    j["stop_token_ids"] = std::vector<int32_t>(s.stop_token_ids().begin(), s.stop_token_ids().end());
  }
  if (s.ignore_eos()) j["ignore_eos"] = true;
  if (s.include_stop_str_in_output()) j["include_stop_str_in_output"] = true;
  if (s.has_n()) j["n"] = s.n();
  if (s.has_skip_special_tokens()) j["skip_special_tokens"] = s.skip_special_tokens();
  if (s.has_logprobs()) {
    if (chat) {
      j["logprobs"] = true;
      j["top_logprobs"] = s.logprobs();
    } else {
      j["logprobs"] = s.logprobs();
    }
  }
  if (s.has_prompt_logprobs()) {
    API_CHECK(!chat, kInvalidArgument, "prompt_logprobs", "prompt_logprobs is supported by Generate only");
    j["prompt_logprobs"] = s.prompt_logprobs();
  }
}

}  // namespace

json generate_request_json(const v1::GenerateRequest& req) {
  json j = json::object();
  if (!req.model().empty()) j["model"] = req.model();
  if (req.has_token_ids()) {
    j["prompt"] = std::vector<int32_t>(req.token_ids().ids().begin(), req.token_ids().ids().end());
  } else {
    j["prompt"] = req.text();
  }
  sampling_to_json(req.sampling(), false, j);
  return j;
}

json chat_request_json(const v1::ChatRequest& req) {
  json j = json::object();
  if (!req.model().empty()) j["model"] = req.model();
  json messages = json::array();
  for (const auto& m : req.messages()) {
    json msg = {{"role", m.role()}, {"content", m.content()}};
    if (!m.name().empty()) msg["name"] = m.name();
    if (!m.tool_call_id().empty()) msg["tool_call_id"] = m.tool_call_id();
    messages.push_back(std::move(msg));
  }
  j["messages"] = std::move(messages);
  if (req.has_add_generation_prompt()) j["add_generation_prompt"] = req.add_generation_prompt();
  if (!req.chat_template_kwargs_json().empty()) j["chat_template_kwargs"] = parse_request_body(req.chat_template_kwargs_json(), 16);
  sampling_to_json(req.sampling(), true, j);
  return j;
}

json tokenize_request_json(const v1::TokenizeRequest& req) {
  json j = {{"prompt", req.text()}};
  if (!req.model().empty()) j["model"] = req.model();
  if (req.has_add_special_tokens()) j["add_special_tokens"] = req.add_special_tokens();
  return j;
}

json detokenize_request_json(const v1::DetokenizeRequest& req) {
  json j = {{"tokens", std::vector<int32_t>(req.token_ids().begin(), req.token_ids().end())},
            {"skip_special_tokens", req.skip_special_tokens()}};
  if (!req.model().empty()) j["model"] = req.model();
  return j;
}

}  // namespace tessera::server
