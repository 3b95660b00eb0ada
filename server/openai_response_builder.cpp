// OpenAI response and chunk JSON from engine outputs; see openai_response_builder.h.
#include "server/openai_response_builder.h"

#include "common/error.h"

namespace tessera::server {

using nlohmann::json;

std::string finish_reason_string(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kDeadline: return "deadline";
    case FinishReason::kAborted: return "abort";
  }
  return "abort";
}

namespace {

json token_bytes(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

json empty_completion_logprobs() {
  return {{"tokens", json::array()},
          {"token_logprobs", json::array()},
          {"top_logprobs", json::array()},
          {"text_offset", json::array()}};
}

}  // namespace

OpenAiResponseBuilder::OpenAiResponseBuilder(ResponseShape shape, std::vector<PromptEcho> prompts, TokenText token_text)
    : shape_(std::move(shape)), prompts_(std::move(prompts)), token_text_(std::move(token_text)) {
  TS_ASSERT(static_cast<int32_t>(prompts_.size()) == shape_.num_prompts, "{} prompts for {}", prompts_.size(),
            shape_.num_prompts);
  choices_.resize(static_cast<size_t>(shape_.num_prompts) * shape_.n);
  usage_.resize(shape_.num_prompts);
  prompt_logprobs_.resize(shape_.num_prompts);
  for (auto& c : choices_) {
    if (shape_.logprobs >= 0) c.logprobs = shape_.kind == ApiKind::kChat ? json::array() : empty_completion_logprobs();
  }
}

json OpenAiResponseBuilder::chunk_base() const {
  json j = {{"id", shape_.id},
            {"object", shape_.kind == ApiKind::kChat ? "chat.completion.chunk" : "text_completion"},
            {"created", shape_.created},
            {"model", shape_.model}};
  if (shape_.include_usage) j["usage"] = nullptr;
  return j;
}

json OpenAiResponseBuilder::completion_logprobs(const std::vector<SampledToken>& lps, size_t text_offset) const {
  json lp = empty_completion_logprobs();
  size_t offset = text_offset;
  for (const auto& t : lps) {
    const std::string s = token_text_(t.token);
    lp["tokens"].push_back(s);
    lp["token_logprobs"].push_back(t.logprob);
    json top = json::object();
    for (const auto& alt : t.top) top[token_text_(alt.token)] = alt.logprob;
    lp["top_logprobs"].push_back(std::move(top));
    lp["text_offset"].push_back(offset);
    offset += s.size();
  }
  return lp;
}

json OpenAiResponseBuilder::chat_logprobs(const std::vector<SampledToken>& lps) const {
  json content = json::array();
  for (const auto& t : lps) {
    const std::string s = token_text_(t.token);
    json top = json::array();
    for (const auto& alt : t.top) {
      const std::string a = token_text_(alt.token);
      top.push_back({{"token", a}, {"logprob", alt.logprob}, {"bytes", token_bytes(a)}});
    }
    content.push_back({{"token", s}, {"logprob", t.logprob}, {"bytes", token_bytes(s)}, {"top_logprobs", top}});
  }
  return content;
}

// The prompt's own tokens with their logprobs (the first has none: null), OpenAI's echo format.
json OpenAiResponseBuilder::echo_logprobs(int32_t prompt_index, const std::optional<PromptLogprobs>& plp) const {
  json lp = empty_completion_logprobs();
  const auto& ids = prompts_[prompt_index].token_ids;
  size_t offset = 0;
  for (size_t pos = 0; pos < ids.size(); ++pos) {
    const std::string s = token_text_(ids[pos]);
    lp["tokens"].push_back(s);
    lp["text_offset"].push_back(offset);
    offset += s.size();
    std::optional<size_t> idx;
    if (plp && pos >= static_cast<size_t>(plp->first_position) &&
        pos - plp->first_position < plp->chosen.size()) {
      idx = pos - plp->first_position;
    }
    if (!idx) {
      lp["token_logprobs"].push_back(nullptr);
      lp["top_logprobs"].push_back(nullptr);
      continue;
    }
    lp["token_logprobs"].push_back(plp->chosen[*idx].logprob);
    json top = json::object();
    if (*idx < plp->top.size()) {
      for (const auto& alt : plp->top[*idx]) top[token_text_(alt.token)] = alt.logprob;
    }
    lp["top_logprobs"].push_back(std::move(top));
  }
  return lp;
}

std::string OpenAiResponseBuilder::echo_text(int32_t prompt_index) const { return prompts_[prompt_index].text; }

void OpenAiResponseBuilder::append_logprobs(ChoiceState& c, const json& lp) {
  if (shape_.kind == ApiKind::kChat) {
    for (const auto& e : lp) c.logprobs.push_back(e);
    return;
  }
  for (const char* key : {"tokens", "token_logprobs", "top_logprobs", "text_offset"}) {
    for (const auto& e : lp[key]) c.logprobs[key].push_back(e);
  }
}

void OpenAiResponseBuilder::record_usage(int32_t prompt_index, const RequestOutput& out) {
  usage_[prompt_index] = out.usage;
  if (out.prompt_logprobs) prompt_logprobs_[prompt_index] = out.prompt_logprobs;
}

std::vector<json> OpenAiResponseBuilder::start_events() {
  std::vector<json> events;
  if (shape_.kind != ApiKind::kChat) return events;
  for (size_t i = 0; i < choices_.size(); ++i) {
    json chunk = chunk_base();
    chunk["choices"] = json::array(
        {{{"index", i}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"logprobs", nullptr},
          {"finish_reason", nullptr}}});
    events.push_back(std::move(chunk));
  }
  return events;
}

std::vector<json> OpenAiResponseBuilder::stream_events(int32_t prompt_index, const RequestOutput& out) {
  TS_ASSERT(prompt_index >= 0 && prompt_index < shape_.num_prompts, "prompt index {}", prompt_index);
  record_usage(prompt_index, out);
  std::vector<json> events;
  const size_t base = static_cast<size_t>(prompt_index) * shape_.n;
  if (shape_.echo && shape_.kind == ApiKind::kCompletion) {
    for (int32_t c = 0; c < shape_.n; ++c) {
      ChoiceState& st = choices_[base + c];
      if (st.echoed) continue;
      st.echoed = true;
      st.text = echo_text(prompt_index);
      json chunk = chunk_base();
      json lp = shape_.logprobs >= 0 ? echo_logprobs(prompt_index, prompt_logprobs_[prompt_index]) : json(nullptr);
      chunk["choices"] = json::array(
          {{{"index", base + c}, {"text", st.text}, {"logprobs", lp}, {"finish_reason", nullptr}}});
      events.push_back(std::move(chunk));
    }
  }
  for (const ChoiceDelta& d : out.choices) {
    TS_ASSERT(d.index >= 0 && d.index < shape_.n, "choice index {} with n = {}", d.index, shape_.n);
    const size_t idx = base + d.index;
    ChoiceState& st = choices_[idx];
    if (d.text.empty() && d.token_ids.empty() && !d.finish_reason) continue;
    json choice = {{"index", idx}};
    json lp = nullptr;
    if (shape_.logprobs >= 0 && !d.logprobs.empty()) {
      lp = shape_.kind == ApiKind::kChat ? json{{"content", chat_logprobs(d.logprobs)}}
                                         : completion_logprobs(d.logprobs, st.text.size());
    }
    if (shape_.kind == ApiKind::kChat) {
      choice["delta"] = d.text.empty() ? json::object() : json{{"content", d.text}};
    } else {
      choice["text"] = d.text;
    }
    st.text += d.text;
    choice["logprobs"] = lp;
    if (d.finish_reason) {
      st.finish_reason = finish_reason_string(*d.finish_reason);
      choice["finish_reason"] = *st.finish_reason;
      choice["stop_reason"] = d.stop_reason ? json(*d.stop_reason) : json(nullptr);
    } else {
      choice["finish_reason"] = nullptr;
    }
    json chunk = chunk_base();
    chunk["choices"] = json::array({std::move(choice)});
    events.push_back(std::move(chunk));
  }
  return events;
}

std::optional<json> OpenAiResponseBuilder::usage_event() const {
  if (!shape_.include_usage) return std::nullopt;
  json chunk = chunk_base();
  chunk["choices"] = json::array();
  const Usage u = total_usage();
  chunk["usage"] = {{"prompt_tokens", u.prompt_tokens},
                    {"completion_tokens", u.completion_tokens},
                    {"total_tokens", u.prompt_tokens + u.completion_tokens}};
  return chunk;
}

void OpenAiResponseBuilder::accumulate(int32_t prompt_index, const RequestOutput& out) {
  TS_ASSERT(prompt_index >= 0 && prompt_index < shape_.num_prompts, "prompt index {}", prompt_index);
  record_usage(prompt_index, out);
  const size_t base = static_cast<size_t>(prompt_index) * shape_.n;
  if (shape_.echo && shape_.kind == ApiKind::kCompletion) {
    for (int32_t c = 0; c < shape_.n; ++c) {
      ChoiceState& st = choices_[base + c];
      if (st.echoed) continue;
      st.echoed = true;
      st.text = echo_text(prompt_index) + st.text;
      if (shape_.logprobs >= 0) {
        json generated = st.logprobs;
        st.logprobs = echo_logprobs(prompt_index, prompt_logprobs_[prompt_index]);
        const size_t shift = echo_text(prompt_index).size();
        for (auto& off : generated["text_offset"]) off = off.get<size_t>() + shift;
        append_logprobs(st, generated);
      }
    }
  }
  for (const ChoiceDelta& d : out.choices) {
    TS_ASSERT(d.index >= 0 && d.index < shape_.n, "choice index {} with n = {}", d.index, shape_.n);
    ChoiceState& st = choices_[base + d.index];
    if (shape_.logprobs >= 0 && !d.logprobs.empty()) {
      append_logprobs(st, shape_.kind == ApiKind::kChat ? chat_logprobs(d.logprobs)
                                                        : completion_logprobs(d.logprobs, st.text.size()));
    }
    st.text += d.text;
    if (d.finish_reason) st.finish_reason = finish_reason_string(*d.finish_reason);
    if (d.stop_reason) st.stop_reason = *d.stop_reason;
  }
}

json OpenAiResponseBuilder::final_response() const {
  json choices = json::array();
  for (size_t i = 0; i < choices_.size(); ++i) {
    const ChoiceState& st = choices_[i];
    json c = {{"index", i}};
    json lp = nullptr;
    if (shape_.logprobs >= 0) lp = shape_.kind == ApiKind::kChat ? json{{"content", st.logprobs}} : st.logprobs;
    if (shape_.kind == ApiKind::kChat) {
      c["message"] = {{"role", "assistant"}, {"content", st.text}, {"refusal", nullptr}};
    } else {
      c["text"] = st.text;
    }
    c["logprobs"] = lp;
    c["finish_reason"] = st.finish_reason ? json(*st.finish_reason) : json(nullptr);
    c["stop_reason"] = st.stop_reason ? json(*st.stop_reason) : json(nullptr);
    choices.push_back(std::move(c));
  }
  const Usage u = total_usage();
  json usage = {{"prompt_tokens", u.prompt_tokens},
                {"completion_tokens", u.completion_tokens},
                {"total_tokens", u.prompt_tokens + u.completion_tokens}};
  if (u.cached_prompt_tokens > 0) usage["prompt_tokens_details"] = {{"cached_tokens", u.cached_prompt_tokens}};
  return {{"id", shape_.id},
          {"object", shape_.kind == ApiKind::kChat ? "chat.completion" : "text_completion"},
          {"created", shape_.created},
          {"model", shape_.model},
          {"choices", std::move(choices)},
          {"usage", std::move(usage)}};
}

Usage OpenAiResponseBuilder::total_usage() const {
  Usage total;
  for (const auto& u : usage_) {
    total.prompt_tokens += u.prompt_tokens;
    total.completion_tokens += u.completion_tokens;
    total.cached_prompt_tokens += u.cached_prompt_tokens;
  }
  return total;
}

}  // namespace tessera::server
