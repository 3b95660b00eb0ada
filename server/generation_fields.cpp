// Sampling, stopping and streaming fields shared by both OpenAI endpoints; see generation_fields.h.
#include "server/generation_fields.h"

#include <fmt/format.h>

#include <limits>

#include "server/api_error.h"
#include "server/json_fields.h"
#include "common/utf8.h"

namespace tessera::server {

const std::vector<std::string_view>& common_generation_fields() {
  static const std::vector<std::string_view> fields = {
      // OpenAI
      "model", "frequency_penalty", "logit_bias", "n", "presence_penalty", "seed", "stop", "stream",
      "stream_options", "temperature", "top_p", "user", "max_tokens",
      // vLLM-compatible extensions
      "top_k", "min_p", "repetition_penalty", "min_tokens", "stop_token_ids", "ignore_eos", "skip_special_tokens",
      "include_stop_str_in_output"};
  return fields;
}

std::string validate_model_name(const json& body, const ApiLimits& limits) {
  auto model = get_string(body, "model", "");
  if (!model) return limits.model_names.empty() ? std::string() : limits.model_names.front();
  for (const auto& name : limits.model_names) {
    if (name == *model) return *model;
  }
  API_THROW(kNotFound, "model", "model '{}' does not exist; this server serves '{}'", model->substr(0, 256),
            fmt::join(limits.model_names, "', '"));
}

namespace {

void parse_stop(const json& body, const ApiLimits& limits, StoppingParams& stopping) {
  const json* v = find_field(body, "stop");
  if (!v) return;
  if (v->is_string()) {
    API_CHECK(!v->get_ref<const std::string&>().empty(), kInvalidArgument, "stop", "stop must not be an empty string");
    API_CHECK(v->get_ref<const std::string&>().size() <= static_cast<size_t>(limits.max_stop_bytes), kInvalidArgument,
              "stop", "stop string is {} bytes; at most {}", v->get_ref<const std::string&>().size(),
              limits.max_stop_bytes);
    stopping.stop.push_back(v->get<std::string>());
    return;
  }
  API_CHECK(v->is_array(), kInvalidArgument, "stop", "stop must be a string or an array of strings, got {}",
            json_type_name(*v));
  API_CHECK(v->size() <= static_cast<size_t>(limits.max_stop), kInvalidArgument, "stop",
            "stop has {} strings; at most {}", v->size(), limits.max_stop);
  for (size_t i = 0; i < v->size(); ++i) {
    const json& s = (*v)[i];
    API_CHECK(s.is_string(), kInvalidArgument, "stop", "stop[{}] must be a string, got {} {}", i, json_type_name(s),
              describe_value(s));
    const auto& str = s.get_ref<const std::string&>();
    API_CHECK(!str.empty(), kInvalidArgument, "stop", "stop[{}] must not be empty", i);
    API_CHECK(str.size() <= static_cast<size_t>(limits.max_stop_bytes), kInvalidArgument, "stop",
              "stop[{}] is {} bytes; at most {}", i, str.size(), limits.max_stop_bytes);
    stopping.stop.push_back(str);
  }
}

void parse_token_list(const json& body, std::string_view key, const ApiLimits& limits, size_t max_count,
                      std::vector<TokenId>& out) {
  const json* v = find_field(body, key);
  if (!v) return;
  const std::string name(key);
  API_CHECK(v->is_array(), kInvalidArgument, name, "{} must be an array of token ids, got {}", name,
            json_type_name(*v));
  API_CHECK(v->size() <= max_count, kInvalidArgument, name, "{} has {} entries; at most {}", name, v->size(),
            max_count);
  const int64_t hi = limits.vocab_size > 0 ? limits.vocab_size - 1 : std::numeric_limits<TokenId>::max();
  for (size_t i = 0; i < v->size(); ++i) {
    const json& t = (*v)[i];
    API_CHECK(t.is_number_integer() || t.is_number_unsigned(), kInvalidArgument, name,
              "{}[{}] must be an integer token id, got {} {}", name, i, json_type_name(t), describe_value(t));
    const bool in_range = t.is_number_unsigned() ? t.get<uint64_t>() <= static_cast<uint64_t>(hi)
                                                 : (t.get<int64_t>() >= 0 && t.get<int64_t>() <= hi);
    API_CHECK(in_range, kInvalidArgument, name, "{}[{}] = {} is not a token id in [0, {}]", name, i,
              describe_value(t), hi);
    out.push_back(static_cast<TokenId>(t.get<int64_t>()));
  }
}

void parse_logit_bias(const json& body, const ApiLimits& limits, SamplingParams& sampling) {
  const json* v = find_field(body, "logit_bias");
  if (!v) return;
  API_CHECK(v->is_object(), kInvalidArgument, "logit_bias",
            "logit_bias must be an object mapping token ids to biases, got {}", json_type_name(*v));
  API_CHECK(v->size() <= static_cast<size_t>(limits.max_logit_bias), kInvalidArgument, "logit_bias",
            "logit_bias has {} entries; at most {}", v->size(), limits.max_logit_bias);
  const int64_t hi = limits.vocab_size > 0 ? limits.vocab_size - 1 : std::numeric_limits<TokenId>::max();
  for (auto it = v->begin(); it != v->end(); ++it) {
    const std::string& key = it.key();
    int64_t id = -1;
    bool ok = !key.empty() && key.size() <= 10;
    for (char c : key) ok = ok && c >= '0' && c <= '9';
    if (ok) id = std::stoll(key);
    API_CHECK(ok && id <= hi, kInvalidArgument, "logit_bias", "logit_bias key '{}' is not a token id in [0, {}]",
              key.substr(0, 32), hi);
    const json& b = it.value();
    API_CHECK(b.is_number(), kInvalidArgument, "logit_bias", "logit_bias[{}] must be a number, got {}", key,
              json_type_name(b));
    const double d = b.get<double>();
    API_CHECK(d >= -100.0 && d <= 100.0, kInvalidArgument, "logit_bias", "logit_bias[{}] must be in [-100, 100], got {}",
              key, d);
    sampling.logit_bias.emplace_back(static_cast<TokenId>(id), static_cast<float>(d));
  }
}

void parse_stream_options(const json& body, ParsedGeneration& gen) {
  const json* v = find_field(body, "stream_options");
  if (!v) return;
  API_CHECK(v->is_object(), kInvalidArgument, "stream_options", "stream_options must be an object, got {}",
            json_type_name(*v));
  API_CHECK(gen.stream, kInvalidArgument, "stream_options", "stream_options is only allowed when stream is true");
  static const std::string_view known[] = {"include_usage", "include_obfuscation"};
  check_known_fields(*v, known, "stream_options");
  gen.include_usage = get_bool(*v, "include_usage", "stream_options").value_or(false);
  (void)get_bool(*v, "include_obfuscation", "stream_options");  // accepted, ignored: no obfuscation padding
}

}  // namespace

ParsedGeneration parse_generation_fields(const json& body, const ApiLimits& limits,
                                         std::initializer_list<std::string_view> max_tokens_keys) {
  ParsedGeneration gen;
  gen.model = validate_model_name(body, limits);
  (void)get_string(body, "user", "");  // accepted, ignored: an end-user id for abuse tracking

  SamplingParams& s = gen.sampling;
  if (auto t = get_number(body, "temperature", "", 0.0, 2.0)) s.temperature = static_cast<float>(*t);
  if (auto p = get_number(body, "top_p", "", 0.0, 1.0, /*lo_open=*/true)) s.top_p = static_cast<float>(*p);
  if (auto k = get_int(body, "top_k", "", -1, std::numeric_limits<int32_t>::max())) {
    s.top_k = *k < 0 ? 0 : static_cast<int32_t>(*k);  // -1 means off, as in vLLM
  }
  if (auto m = get_number(body, "min_p", "", 0.0, 1.0)) s.min_p = static_cast<float>(*m);
  if (auto r = get_number(body, "repetition_penalty", "", 0.0, 2.0, true)) s.repetition_penalty = static_cast<float>(*r);
  if (auto p = get_number(body, "presence_penalty", "", -2.0, 2.0)) s.presence_penalty = static_cast<float>(*p);
  if (auto f = get_number(body, "frequency_penalty", "", -2.0, 2.0)) s.frequency_penalty = static_cast<float>(*f);
  if (auto seed = get_int(body, "seed", "", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max())) {
    s.seed = static_cast<uint64_t>(*seed);
    gen.seed_given = true;
  }
  parse_logit_bias(body, limits, s);

  if (auto n = get_int(body, "n", "", 1, limits.max_n)) gen.n = static_cast<int32_t>(*n);

  StoppingParams& st = gen.stopping;
  std::optional<int64_t> max_tokens;
  std::string max_tokens_key;
  for (auto key : max_tokens_keys) {
    auto v = get_int(body, key, "", 1, limits.max_model_len);
    if (!v) continue;
    API_CHECK(!max_tokens || *max_tokens == *v, kInvalidArgument, std::string(key),
              "{} = {} disagrees with {} = {}", key, *v, max_tokens_key, *max_tokens);
    max_tokens = v;
    max_tokens_key = key;
  }
  if (max_tokens) {
    st.max_tokens = static_cast<int32_t>(*max_tokens);
    gen.max_tokens_given = true;
  }
  if (auto m = get_int(body, "min_tokens", "", 0, limits.max_model_len)) st.min_tokens = static_cast<int32_t>(*m);
  API_CHECK(!gen.max_tokens_given || st.min_tokens <= st.max_tokens, kInvalidArgument, "min_tokens",
            "min_tokens = {} is above max_tokens = {}", st.min_tokens, st.max_tokens);
  parse_stop(body, limits, st);
  parse_token_list(body, "stop_token_ids", limits, static_cast<size_t>(limits.max_stop) * 4, st.stop_token_ids);
  st.ignore_eos = get_bool(body, "ignore_eos", "").value_or(false);
  st.include_stop_str_in_output = get_bool(body, "include_stop_str_in_output", "").value_or(false);
  gen.skip_special_tokens = get_bool(body, "skip_special_tokens", "").value_or(true);

  gen.stream = get_bool(body, "stream", "").value_or(false);
  parse_stream_options(body, gen);
  return gen;
}

}  // namespace tessera::server
