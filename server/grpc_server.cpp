// The gRPC door: tessera.v1.Inference over the shared validator and ServingCore; see grpc_server.h.
#include "server/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

#include "server/api_error.h"
#include "server/json_fields.h"
#include "server/openai_response_builder.h"
#include "tessera/v1/inference.grpc.pb.h"
#include "tokenizer/tokenizer.h"

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

grpc::Status to_status(const Error& e) {
  const auto* api = dynamic_cast<const ApiError*>(&e);
  std::string msg = e.what();
  if (api && !api->param().empty() && msg.find(api->param()) == std::string::npos) {
    msg = api->param() + ": " + msg;
  }
  return grpc::Status(grpc_code(e.code()), msg);
}

// Runs a handler, mapping thrown errors to statuses.
template <class F>
grpc::Status guarded(F&& f) {
  try {
    return f();
  } catch (const Error& e) {
    return to_status(e);
  } catch (const std::exception& e) {
    return grpc::Status(grpc::StatusCode::INTERNAL, e.what());
  }
}

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

v1::FinishReason proto_finish(FinishReason r) {
  return r == FinishReason::kLength ? v1::FINISH_REASON_LENGTH : v1::FINISH_REASON_STOP;
}

std::string read_file(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  TS_CHECK(in.good(), kNotFound, "cannot read {} '{}'", flag, path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::chrono::steady_clock::time_point to_steady(std::chrono::system_clock::time_point t) {
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(t - std::chrono::system_clock::now());
}

}  // namespace

class InferenceService final : public v1::Inference::Service {
 public:
  InferenceService(ServingCore& core, const ApiKeyAuth& auth) : core_(core), auth_(auth) {}

  grpc::Status Generate(grpc::ServerContext* ctx, const v1::GenerateRequest* req,
                        grpc::ServerWriter<v1::GenerateResponse>* writer) override {
    return guarded([&] {
      check_auth(ctx);
      json j = json::object();
      if (!req->model().empty()) j["model"] = req->model();
      if (req->has_token_ids()) {
        j["prompt"] = std::vector<int32_t>(req->token_ids().ids().begin(), req->token_ids().ids().end());
      } else {
        j["prompt"] = req->text();
      }
      sampling_to_json(req->sampling(), false, j);
      ParsedCompletion parsed = validate_completion_request(j, core_.limits());
      return stream(ctx, core_.prepare_completion(parsed), writer);
    });
  }

  grpc::Status Chat(grpc::ServerContext* ctx, const v1::ChatRequest* req,
                    grpc::ServerWriter<v1::GenerateResponse>* writer) override {
    return guarded([&] {
      check_auth(ctx);
      json j = json::object();
      if (!req->model().empty()) j["model"] = req->model();
      json messages = json::array();
      for (const auto& m : req->messages()) {
        json msg = {{"role", m.role()}, {"content", m.content()}};
        if (!m.name().empty()) msg["name"] = m.name();
        if (!m.tool_call_id().empty()) msg["tool_call_id"] = m.tool_call_id();
        messages.push_back(std::move(msg));
      }
      j["messages"] = std::move(messages);
      if (req->has_add_generation_prompt()) j["add_generation_prompt"] = req->add_generation_prompt();
      if (!req->chat_template_kwargs_json().empty()) {
        json kw = parse_request_body(req->chat_template_kwargs_json(), 16);
        j["chat_template_kwargs"] = std::move(kw);
      }
      sampling_to_json(req->sampling(), true, j);
      ParsedChat parsed = validate_chat_request(j, core_.limits());
      return stream(ctx, core_.prepare_chat(parsed), writer);
    });
  }

  grpc::Status Tokenize(grpc::ServerContext* ctx, const v1::TokenizeRequest* req, v1::TokenizeResponse* resp) override {
    return guarded([&] {
      check_auth(ctx);
      json j = {{"prompt", req->text()}};
      if (!req->model().empty()) j["model"] = req->model();
      if (req->has_add_special_tokens()) j["add_special_tokens"] = req->add_special_tokens();
      const auto ids = core_.tokenize(validate_tokenize_request(j, core_.limits()));
      for (TokenId id : ids) resp->add_token_ids(id);
      resp->set_count(static_cast<int32_t>(ids.size()));
      resp->set_max_model_len(core_.limits().max_model_len);
      return grpc::Status::OK;
    });
  }

  grpc::Status Detokenize(grpc::ServerContext* ctx, const v1::DetokenizeRequest* req,
                          v1::DetokenizeResponse* resp) override {
    return guarded([&] {
      check_auth(ctx);
      json j = {{"tokens", std::vector<int32_t>(req->token_ids().begin(), req->token_ids().end())},
                {"skip_special_tokens", req->skip_special_tokens()}};
      if (!req->model().empty()) j["model"] = req->model();
      resp->set_text(core_.detokenize(validate_detokenize_request(j, core_.limits())));
      return grpc::Status::OK;
    });
  }

  grpc::Status ModelInfo(grpc::ServerContext* ctx, const v1::ModelInfoRequest*, v1::ModelInfoResponse* resp) override {
    return guarded([&] {
      check_auth(ctx);
      resp->set_model(core_.model_name());
      resp->set_max_model_len(core_.limits().max_model_len);
      resp->set_vocab_size(core_.limits().vocab_size);
      for (TokenId id : core_.engine_config().eos_token_ids) resp->add_eos_token_ids(id);
      resp->set_has_chat_template(core_.has_chat_template());
      resp->set_max_n(core_.limits().max_n);
      resp->set_max_logprobs(core_.limits().max_logprobs);
      return grpc::Status::OK;
    });
  }

 private:
  void check_auth(grpc::ServerContext* ctx) const {
    if (!auth_.enabled()) return;
    const auto& md = ctx->client_metadata();
    auto it = md.find("authorization");
    TS_CHECK(it != md.end(), kUnauthenticated, "missing API key: send metadata authorization: Bearer <key>");
    TS_CHECK(auth_.allows(std::string_view(it->second.data(), it->second.size())), kUnauthenticated,
             "invalid API key");
  }

  void fill_logprobs(const SampledToken& t, const TokenText& text, v1::TokenLogprob* out) const {
    out->set_token_id(t.token);
    out->set_token(text(t.token));
    out->set_logprob(t.logprob);
    for (const auto& alt : t.top) {
      auto* top = out->add_top();
      top->set_token_id(alt.token);
      top->set_token(text(alt.token));
      top->set_logprob(alt.logprob);
    }
  }

  void fill_prompt_logprobs(const PromptLogprobs& plp, const std::vector<TokenId>& prompt, const TokenText& text,
                            v1::GenerateResponse* resp) const {
    for (size_t pos = 0; pos < prompt.size(); ++pos) {
      auto* e = resp->add_prompt_logprobs();
      e->set_token_id(prompt[pos]);
      e->set_token(text(prompt[pos]));
      if (pos < static_cast<size_t>(plp.first_position)) continue;
      const size_t i = pos - plp.first_position;
      if (i >= plp.chosen.size()) continue;
      e->set_logprob(plp.chosen[i].logprob);
      if (i < plp.top.size()) {
        for (const auto& alt : plp.top[i]) {
          auto* top = e->add_top();
          top->set_token_id(alt.token);
          top->set_token(text(alt.token));
          top->set_logprob(alt.logprob);
        }
      }
    }
  }

  grpc::Status stream(grpc::ServerContext* ctx, PreparedGeneration prepared,
                      grpc::ServerWriter<v1::GenerateResponse>* writer) {
    TS_ASSERT(prepared.requests.size() == 1, "gRPC requests carry one prompt, got {}", prepared.requests.size());
    const auto deadline = ctx->deadline();
    if (deadline != std::chrono::system_clock::time_point::max()) {
      prepared.requests[0].deadline = to_steady(deadline);
    }
    const std::vector<TokenId> prompt = prepared.requests[0].prompt_token_ids;
    const std::string id = prepared.shape.id;
    auto streams = core_.submit(prepared);
    auto& s = *streams[0];
    const TokenText text = core_.token_text();
    while (true) {
      if (ctx->IsCancelled()) {
        s.cancel();
        if (std::chrono::system_clock::now() >= deadline) {
          return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded; generation stopped");
        }
        return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client; generation stopped");
      }
      auto out = s.pop(std::chrono::milliseconds(50));
      if (!out) continue;
      if (out->error) return to_status(*out->error);
      v1::GenerateResponse resp;
      resp.set_request_id(id);
      bool deadline_hit = false;
      for (const ChoiceDelta& d : out->choices) {
        auto* c = resp.add_choices();
        c->set_index(d.index);
        for (TokenId t : d.token_ids) c->add_token_ids(t);
        c->set_text(d.text);
        for (const auto& lp : d.logprobs) fill_logprobs(lp, text, c->add_logprobs());
        if (d.finish_reason) {
          deadline_hit = deadline_hit || *d.finish_reason == FinishReason::kDeadline;
          c->set_finish_reason(proto_finish(*d.finish_reason));
        }
        if (d.stop_reason) c->set_stop_reason(*d.stop_reason);
      }
      if (out->prompt_logprobs) fill_prompt_logprobs(*out->prompt_logprobs, prompt, text, &resp);
      auto* u = resp.mutable_usage();
      u->set_prompt_tokens(out->usage.prompt_tokens);
      u->set_completion_tokens(out->usage.completion_tokens);
      u->set_total_tokens(out->usage.prompt_tokens + out->usage.completion_tokens);
      u->set_cached_prompt_tokens(out->usage.cached_prompt_tokens);
      resp.set_finished(out->finished);
      if (deadline_hit) return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded; generation stopped");
      if (!writer->Write(resp)) {
        s.cancel();
        return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away; generation stopped");
      }
      if (out->finished) return grpc::Status::OK;
    }
  }

  ServingCore& core_;
  const ApiKeyAuth& auth_;
};

class GrpcServerImpl {
 public:
  GrpcServerImpl(GrpcServerConfig config, ServingCore& core, const ApiKeyAuth& auth)
      : config_(std::move(config)), service_(core, auth) {}

  void start() {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    std::shared_ptr<grpc::ServerCredentials> creds;
    if (config_.tls) {
      grpc::SslServerCredentialsOptions opts;
      opts.pem_key_cert_pairs.push_back(
          {read_file(config_.tls->private_key, "--tls-key"), read_file(config_.tls->cert_chain, "--tls-cert")});
      creds = grpc::SslServerCredentials(opts);
    } else {
      creds = grpc::InsecureServerCredentials();
    }
    const bool v6 = config_.host.find(':') != std::string::npos;
    const std::string address = v6 ? fmt::format("[{}]:{}", config_.host, config_.port)
                                   : fmt::format("{}:{}", config_.host, config_.port);
    int selected = 0;
    builder.AddListeningPort(address, creds, &selected);
    builder.RegisterService(&service_);
    grpc::ResourceQuota quota("tessera-grpc");
    quota.SetMaxThreads(config_.max_threads);
    builder.SetResourceQuota(quota);
    builder.SetMaxReceiveMessageSize(static_cast<int>(config_.max_message_bytes));
    server_ = builder.BuildAndStart();
    TS_CHECK(server_ != nullptr && selected != 0, kUnavailable, "cannot listen for gRPC on {}", address);
    port_ = static_cast<uint16_t>(selected);
    set_serving(true);
    spdlog::info("gRPC ({}) listening on {}:{}", config_.tls ? "TLS" : "plain", config_.host, port_);
  }

  void set_serving(bool serving) {
    if (!server_) return;
    if (auto* health = server_->GetHealthCheckService()) {
      health->SetServingStatus(serving);
      health->SetServingStatus("tessera.v1.Inference", serving);
    }
  }

  void stop(std::chrono::milliseconds grace) {
    if (!server_) return;
    server_->Shutdown(std::chrono::system_clock::now() + grace);
    server_->Wait();
    server_.reset();
  }

  uint16_t port() const { return port_; }

 private:
  GrpcServerConfig config_;
  InferenceService service_;
  std::unique_ptr<grpc::Server> server_;
  uint16_t port_ = 0;
};

GrpcServer::GrpcServer(GrpcServerConfig config, ServingCore& core, const ApiKeyAuth& auth)
    : impl_(std::make_unique<GrpcServerImpl>(std::move(config), core, auth)) {}
GrpcServer::~GrpcServer() { stop(std::chrono::milliseconds(0)); }
void GrpcServer::start() { impl_->start(); }
uint16_t GrpcServer::port() const { return impl_->port(); }
void GrpcServer::set_serving(bool serving) { impl_->set_serving(serving); }
void GrpcServer::stop(std::chrono::milliseconds grace) { impl_->stop(grace); }

}  // namespace tessera::server
