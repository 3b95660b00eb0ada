// ServingCore: prompts to GenerationRequests and submission; see serving_core.h.
#include "server/serving_core.h"

#include <fmt/format.h>

#include <chrono>
#include <random>

#include "server/api_error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace tessera::server {

namespace {

uint64_t random_u64() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

ServingCore::ServingCore(Engine& engine, std::shared_ptr<const Tokenizer> tokenizer,
                         std::shared_ptr<const ChatTemplate> chat, ApiLimits limits, MetricsRegistry& metrics)
    : engine_(engine), tokenizer_(std::move(tokenizer)), chat_(std::move(chat)), limits_(std::move(limits)),
      metrics_(metrics), id_salt_(fmt::format("{:08x}", static_cast<uint32_t>(random_u64()))) {
  TS_CHECK(!limits_.model_names.empty(), kInvalidArgument, "the server needs a served model name");
  TS_CHECK(tokenizer_ != nullptr, kInvalidArgument, "the server needs a tokenizer");
}

std::string ServingCore::next_id(const char* prefix) {
  return fmt::format("{}-{}{:x}", prefix, id_salt_, next_id_.fetch_add(1, std::memory_order_relaxed));
}

TokenText ServingCore::token_text() const {
  auto tok = tokenizer_;
  return [tok](TokenId id) {
    // A padding id past the tokenizer's vocabulary (the model's may be larger) has no text.
    if (id < 0 || static_cast<size_t>(id) >= tok->vocab_size()) return std::string();
    const TokenId ids[1] = {id};
    return tok->decode(ids, /*skip_special_tokens=*/false);
  };
}

GenerationRequest ServingCore::make_request(const ParsedGeneration& gen, std::vector<TokenId> prompt,
                                            bool default_to_context, int32_t prompt_index, size_t num_prompts) const {
  const std::string where = num_prompts > 1 ? fmt::format("prompt[{}]", prompt_index) : std::string("prompt");
  const int64_t len = static_cast<int64_t>(prompt.size());
  API_CHECK(len > 0, kInvalidArgument, "prompt", "{} has no tokens", where);
  API_CHECK(len < limits_.max_model_len, kInvalidArgument, "prompt",
            "{} is {} tokens; this model's context holds {} (prompt + max_tokens)", where, len,
            limits_.max_model_len);
  GenerationRequest r;
  r.prompt_token_ids = std::move(prompt);
  r.sampling = gen.sampling;
  r.stopping = gen.stopping;
  if (!gen.max_tokens_given && default_to_context) r.stopping.max_tokens = static_cast<int32_t>(limits_.max_model_len - len);
  API_CHECK(len + r.stopping.max_tokens <= limits_.max_model_len, kInvalidArgument, "max_tokens",
            "{} is {} tokens and max_tokens is {}: {} is over this model's context of {} tokens", where, len,
            r.stopping.max_tokens, len + r.stopping.max_tokens, limits_.max_model_len);
  if (gen.seed_given) {
    r.seed = gen.sampling.seed;  // a client seed of 0 is a seed too
  } else {
    r.sampling.seed = random_u64();
  }
  r.n = gen.n;
  r.skip_special_tokens = gen.skip_special_tokens;
  return r;
}

PreparedGeneration ServingCore::prepare_completion(const ParsedCompletion& req) {
  PreparedGeneration p;
  const std::string id = next_id("cmpl");
  for (size_t i = 0; i < req.prompts.size(); ++i) {
    const PromptInput& in = req.prompts[i];
    std::vector<TokenId> ids;
    std::string text;
    if (in.text) {
      ids = tokenizer_->encode(*in.text, req.add_special_tokens);
      text = *in.text;
    } else {
      ids = in.token_ids;
      if (req.echo) text = tokenizer_->decode(ids, /*skip_special_tokens=*/false);
    }
    GenerationRequest r = make_request(req.gen, ids, /*default_to_context=*/false, static_cast<int32_t>(i),
                                       req.prompts.size());
    r.request_id = req.prompts.size() > 1 ? fmt::format("{}-{}", id, i) : id;
    p.prompts.push_back({std::move(text), std::move(ids)});
    p.requests.push_back(std::move(r));
  }
  p.shape.kind = ApiKind::kCompletion;
  p.shape.id = id;
  p.shape.model = req.gen.model;
  p.shape.created = unix_seconds();
  p.shape.n = req.gen.n;
  p.shape.num_prompts = static_cast<int32_t>(req.prompts.size());
  p.shape.echo = req.echo;
  p.shape.logprobs = req.logprobs;
  p.shape.include_usage = req.gen.include_usage;
  return p;
}

std::string ServingCore::render_chat(const ParsedChat& req) const {
  API_CHECK(chat_ != nullptr, kFailedPrecondition, "messages",
            "model '{}' has no chat template (tokenizer_config.json chat_template); use /v1/completions",
            model_name());
  nlohmann::json extra = req.chat_template_kwargs;
  if (req.continue_final_message) {
    // Render without a generation prompt, then cut the end-of-turn that follows the last message.
    std::string full = chat_->render(req.messages, req.tools, false, extra);
    const std::string& last = req.messages.back()["content"].get_ref<const std::string&>();
    const auto pos = last.empty() ? std::string::npos : full.rfind(last);
    API_CHECK(pos != std::string::npos, kInvalidArgument, "continue_final_message",
              "the final message's content does not appear in the rendered template");
    return full.substr(0, pos + last.size());
  }
  return chat_->render(req.messages, req.tools, req.add_generation_prompt, extra);
}

PreparedGeneration ServingCore::prepare_chat(const ParsedChat& req) {
  PreparedGeneration p;
  const std::string prompt = render_chat(req);
  std::vector<TokenId> ids = tokenizer_->encode(prompt, /*add_special_tokens=*/false);
  GenerationRequest r = make_request(req.gen, ids, /*default_to_context=*/true, 0, 1);
  r.request_id = next_id("chatcmpl");
  p.shape.kind = ApiKind::kChat;
  p.shape.id = r.request_id;
  p.shape.model = req.gen.model;
  p.shape.created = unix_seconds();
  p.shape.n = req.gen.n;
  p.shape.num_prompts = 1;
  p.shape.logprobs = req.logprobs ? req.top_logprobs : -1;
  p.shape.include_usage = req.gen.include_usage;
  p.prompts.push_back({prompt, std::move(ids)});
  p.requests.push_back(std::move(r));
  return p;
}

std::vector<std::shared_ptr<RequestStream>> ServingCore::submit(PreparedGeneration& prepared) {
  std::vector<std::shared_ptr<RequestStream>> streams;
  streams.reserve(prepared.requests.size());
  try {
    for (auto& r : prepared.requests) streams.push_back(engine_.submit(r));
  } catch (...) {
    for (auto& s : streams) s->cancel();
    throw;
  }
  return streams;
}

std::vector<TokenId> ServingCore::tokenize(const ParsedTokenize& req) const {
  if (req.chat) return tokenizer_->encode(render_chat(*req.chat), req.add_special_tokens);
  return tokenizer_->encode(*req.prompt, req.add_special_tokens);
}

std::string ServingCore::detokenize(const ParsedDetokenize& req) const {
  return tokenizer_->decode(req.tokens, req.skip_special_tokens);
}

}  // namespace tessera::server
