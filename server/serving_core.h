// ServingCore: what both doors share once a request is validated: the served model's limits,
// tokenization, the chat template, GenerationRequest building (prompt + max_tokens vs context, seed),
// submission with all-or-nothing semantics for multi-prompt requests, and health.
// It is thread-safe (callers are io threads and gRPC threads) and never blocks on the engine loop.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "engine/engine.h"
#include "server/openai_response_builder.h"
#include "server/request_validator.h"

namespace tessera {
class Tokenizer;
class ChatTemplate;
}  // namespace tessera

namespace tessera::server {

// Requests ready to submit, one per prompt, and what the response needs to know about them.
struct PreparedGeneration {
  std::vector<GenerationRequest> requests;
  std::vector<PromptEcho> prompts;
  ResponseShape shape;
};

class ServingCore {
 public:
  // chat_template may be null (a model without one): chat requests are then refused.
  ServingCore(Engine& engine, std::shared_ptr<const Tokenizer> tokenizer, std::shared_ptr<const ChatTemplate> chat,
              ApiLimits limits, MetricsRegistry& metrics);

  const ApiLimits& limits() const { return limits_; }
  const std::string& model_name() const { return limits_.model_names.front(); }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  bool has_chat_template() const { return chat_ != nullptr; }
  const EngineConfig& engine_config() const { return engine_.config(); }
  MetricsRegistry& metrics() { return metrics_; }

  PreparedGeneration prepare_completion(const ParsedCompletion& req);
  PreparedGeneration prepare_chat(const ParsedChat& req);
  // Submits every request; if one is refused, cancels those already submitted and rethrows.
  std::vector<std::shared_ptr<RequestStream>> submit(PreparedGeneration& prepared);

  std::vector<TokenId> tokenize(const ParsedTokenize& req) const;
  std::string detokenize(const ParsedDetokenize& req) const;
  std::string render_chat(const ParsedChat& req) const;
  // The text of one token, for logprobs entries.
  TokenText token_text() const;

  EngineHealth health() const { return engine_.health(); }
  void begin_drain() { engine_.begin_drain(); }
  bool drained() const { return engine_.drained(); }

 private:
  GenerationRequest make_request(const ParsedGeneration& gen, std::vector<TokenId> prompt, bool default_to_context,
                                 int32_t prompt_index, size_t num_prompts) const;
  std::string next_id(const char* prefix);

  Engine& engine_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::shared_ptr<const ChatTemplate> chat_;
  ApiLimits limits_;
  MetricsRegistry& metrics_;
  std::string id_salt_;
  std::atomic<uint64_t> next_id_{1};
};

}  // namespace tessera::server
