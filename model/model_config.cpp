// ModelConfig parsing: turns a Hugging Face config.json (+ generation_config.json) into a validated
// ModelConfig, and provides the built-in published shapes. It must never accept a feature the
// runners do not implement: anything unknown is refused naming the field and the value seen.
#include "model/model_config.h"

#include <algorithm>
#include <fstream>
#include <limits>

#include "common/error.h"

namespace tessera {
namespace {

using nlohmann::json;

// Upper bounds that keep every product of two dimensions far inside int64 and every single
// dimension inside int32; far above any real model.
constexpr int64_t kMaxDim = int64_t{1} << 20;         // hidden, intermediate, head_dim
constexpr int64_t kMaxVocab = int64_t{1} << 22;
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxPositions = int64_t{1} << 24;

bool present(const json& j, const char* field) { return j.contains(field) && !j.at(field).is_null(); }

int64_t get_int(const json& j, const char* field, int64_t lo, int64_t hi) {
  TS_CHECK(present(j, field), kInvalidArgument, "config.json: missing required field '{}'", field);
  const json& v = j.at(field);
  TS_CHECK(v.is_number_integer(), kInvalidArgument, "config.json: '{}' must be an integer, got {}", field, v.dump());
  const int64_t x = v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())
                        ? std::numeric_limits<int64_t>::max()
                        : v.get<int64_t>();
  TS_CHECK(x >= lo && x <= hi, kInvalidArgument, "config.json: '{}' = {} is outside [{}, {}]", field, x, lo, hi);
  return x;
}

int64_t get_int_or(const json& j, const char* field, int64_t dflt, int64_t lo, int64_t hi) {
  return present(j, field) ? get_int(j, field, lo, hi) : dflt;
}

double get_number(const json& j, const char* field, double dflt, double lo, double hi) {
  if (!present(j, field)) return dflt;
  const json& v = j.at(field);
  TS_CHECK(v.is_number(), kInvalidArgument, "config.json: '{}' must be a number, got {}", field, v.dump());
  const double x = v.get<double>();
  TS_CHECK(x >= lo && x <= hi, kInvalidArgument, "config.json: '{}' = {} is outside [{}, {}]", field, x, lo, hi);
  return x;
}

bool get_bool(const json& j, const char* field, bool dflt) {
  if (!present(j, field)) return dflt;
  const json& v = j.at(field);
  TS_CHECK(v.is_boolean(), kInvalidArgument, "config.json: '{}' must be true or false, got {}", field, v.dump());
  return v.get<bool>();
}

Architecture parse_architecture(const json& j, std::string& name) {
  TS_CHECK(present(j, "architectures"), kInvalidArgument, "config.json: missing required field 'architectures'");
  const json& a = j.at("architectures");
  TS_CHECK(a.is_array() && a.size() == 1 && a[0].is_string(), kInvalidArgument,
           "config.json: 'architectures' must be a list of one name, got {}", a.dump());
  name = a[0].get<std::string>();
  if (name == "LlamaForCausalLM") return Architecture::kLlama;
  if (name == "MistralForCausalLM") return Architecture::kMistral;
  if (name == "Qwen2ForCausalLM") return Architecture::kQwen2;
  if (name == "Qwen3ForCausalLM") return Architecture::kQwen3;
  TS_THROW(kUnimplemented,
           "config.json: architectures = \"{}\" is not supported (supported: LlamaForCausalLM, MistralForCausalLM, "
           "Qwen2ForCausalLM, Qwen3ForCausalLM)",
           name);
}

DType parse_dtype(const json& j) {
  const char* field = present(j, "torch_dtype") ? "torch_dtype" : (present(j, "dtype") ? "dtype" : nullptr);
  if (field == nullptr) return DType::kF32;  // Hugging Face's default when none is written
  const json& v = j.at(field);
  TS_CHECK(v.is_string(), kInvalidArgument, "config.json: '{}' must be a string, got {}", field, v.dump());
  const std::string s = v.get<std::string>();
  if (s == "float32") return DType::kF32;
  if (s == "float16") return DType::kF16;
  if (s == "bfloat16") return DType::kBF16;
  TS_THROW(kUnimplemented, "config.json: {} = \"{}\" is not supported (float32, float16, bfloat16)", field, s);
}

RopeScaling parse_rope_scaling(const json& j) {
  RopeScaling r;
  if (!present(j, "rope_scaling")) return r;
  const json& s = j.at("rope_scaling");
  TS_CHECK(s.is_object(), kInvalidArgument, "config.json: 'rope_scaling' must be an object or null, got {}", s.dump());
  const char* key = present(s, "rope_type") ? "rope_type" : (present(s, "type") ? "type" : nullptr);
  TS_CHECK(key != nullptr, kInvalidArgument, "config.json: rope_scaling has neither 'rope_type' nor 'type': {}",
           s.dump());
  TS_CHECK(s.at(key).is_string(), kInvalidArgument, "config.json: rope_scaling.{} must be a string, got {}", key,
           s.at(key).dump());
  const std::string type = s.at(key).get<std::string>();
  if (type == "default") return r;
  if (type == "linear") {
    r.type = RopeScaling::Type::kLinear;
  } else if (type == "llama3") {
    r.type = RopeScaling::Type::kLlama3;
  } else {
    TS_THROW(kUnimplemented, "config.json: rope_scaling.{} = \"{}\" is not supported (default, linear, llama3)", key,
             type);
  }
  TS_CHECK(present(s, "factor"), kInvalidArgument, "config.json: rope_scaling.factor is required for rope type {}",
           type);
  r.factor = static_cast<float>(get_number(s, "factor", 1.0, 1e-6, 1e6));
  if (r.type == RopeScaling::Type::kLlama3) {
    r.low_freq_factor = static_cast<float>(get_number(s, "low_freq_factor", 1.0, 1e-6, 1e6));
    r.high_freq_factor = static_cast<float>(get_number(s, "high_freq_factor", 4.0, 1e-6, 1e6));
    r.original_max_position_embeddings =
        static_cast<int32_t>(get_int_or(s, "original_max_position_embeddings", 8192, 1, kMaxPositions));
    TS_CHECK(r.high_freq_factor > r.low_freq_factor, kInvalidArgument,
             "config.json: rope_scaling.high_freq_factor ({}) must exceed low_freq_factor ({})", r.high_freq_factor,
             r.low_freq_factor);
  }
  return r;
}

// Token ids given as an int, a list of ints, or null.
void append_token_ids(const json& j, const char* field, const char* file, int64_t vocab, std::vector<TokenId>& out) {
  if (!present(j, field)) return;
  const json& v = j.at(field);
  auto add = [&](const json& x) {
    TS_CHECK(x.is_number_integer() && x.get<int64_t>() >= 0 && x.get<int64_t>() < vocab, kInvalidArgument,
             "{}: '{}' has {}, not a token id in [0, {})", file, field, x.dump(), vocab);
    const TokenId id = static_cast<TokenId>(x.get<int64_t>());
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  };
  if (v.is_array()) {
    for (const json& x : v) add(x);
  } else {
    add(v);
  }
}

void refuse_unsupported(const json& j, const ModelConfig& c) {
  const std::string act =
      present(j, "hidden_act") ? j.at("hidden_act").dump() : std::string("\"silu\"");
  TS_CHECK(act == "\"silu\"", kUnimplemented, "config.json: hidden_act = {} is not supported (only silu)", act);
  TS_CHECK(!get_bool(j, "mlp_bias", false), kUnimplemented, "config.json: mlp_bias = true is not supported");
  if (c.arch != Architecture::kQwen2) {
    TS_CHECK(!get_bool(j, "attention_bias", false), kUnimplemented,
             "config.json: attention_bias = true is not supported for {}", c.architecture_name);
  }
  // A sliding window narrower than the context changes attention; refuse it rather than ignore it.
  const bool window_used = present(j, "use_sliding_window") ? get_bool(j, "use_sliding_window", false) : true;
  if (window_used && present(j, "sliding_window")) {
    const int64_t w = get_int(j, "sliding_window", 0, std::numeric_limits<int64_t>::max());
    TS_CHECK(w >= c.max_position_embeddings, kUnimplemented,
             "config.json: sliding_window = {} (below max_position_embeddings = {}) is not supported", w,
             c.max_position_embeddings);
  }
  if (present(j, "rope_parameters")) {
    TS_THROW(kUnimplemented, "config.json: 'rope_parameters' = {} is not supported; use rope_theta/rope_scaling",
             j.at("rope_parameters").dump());
  }
}

void validate(const ModelConfig& c) {
  TS_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, kInvalidArgument,
           "config.json: num_attention_heads = {} is not a multiple of num_key_value_heads = {}",
           c.num_attention_heads, c.num_key_value_heads);
  TS_CHECK(c.head_dim % 2 == 0, kInvalidArgument, "config.json: head_dim = {} must be even for RoPE", c.head_dim);
  TS_CHECK(int64_t{c.num_attention_heads} * c.head_dim <= kMaxDim, kInvalidArgument,
           "config.json: num_attention_heads * head_dim = {} is too large", int64_t{c.num_attention_heads} * c.head_dim);
}

}  // namespace

int64_t ModelConfig::num_parameters() const {
  const int64_t h = hidden_size, q = q_size(), kv = kv_size();
  int64_t layer = h * (q + 2 * kv) + q * h + 3 * h * int64_t{intermediate_size} + 2 * h;
  if (attention_bias) layer += q + 2 * kv;
  if (qk_norm) layer += 2 * int64_t{head_dim};
  const int64_t embed = int64_t{vocab_size} * h;
  return embed + int64_t{num_hidden_layers} * layer + h + (tie_word_embeddings ? 0 : embed);
}

ModelConfig ModelConfig::from_json(const nlohmann::json& j) {
  TS_CHECK(j.is_object(), kInvalidArgument, "config.json: expected a JSON object, got {}", j.type_name());
  ModelConfig c;
  c.arch = parse_architecture(j, c.architecture_name);
  c.vocab_size = static_cast<int32_t>(get_int(j, "vocab_size", 1, kMaxVocab));
  c.hidden_size = static_cast<int32_t>(get_int(j, "hidden_size", 1, kMaxDim));
  c.intermediate_size = static_cast<int32_t>(get_int(j, "intermediate_size", 1, kMaxDim));
  c.num_hidden_layers = static_cast<int32_t>(get_int(j, "num_hidden_layers", 1, kMaxLayers));
  c.num_attention_heads = static_cast<int32_t>(get_int(j, "num_attention_heads", 1, kMaxDim));
  c.num_key_value_heads =
      static_cast<int32_t>(get_int_or(j, "num_key_value_heads", c.num_attention_heads, 1, kMaxDim));
  if (present(j, "head_dim")) {
    c.head_dim = static_cast<int32_t>(get_int(j, "head_dim", 1, kMaxDim));
  } else {
    TS_CHECK(c.hidden_size % c.num_attention_heads == 0, kInvalidArgument,
             "config.json: no head_dim and hidden_size = {} is not a multiple of num_attention_heads = {}",
             c.hidden_size, c.num_attention_heads);
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  c.rms_norm_eps = static_cast<float>(get_number(j, "rms_norm_eps", 1e-6, 0.0, 1.0));
  TS_CHECK(c.rms_norm_eps > 0.0f, kInvalidArgument, "config.json: rms_norm_eps = {} must be > 0", c.rms_norm_eps);
  c.rope_theta = static_cast<float>(get_number(j, "rope_theta", 10000.0, 1.0, 1e12));
  c.rope_scaling = parse_rope_scaling(j);
  c.max_position_embeddings = static_cast<int32_t>(get_int(j, "max_position_embeddings", 1, kMaxPositions));
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", false);
  c.attention_bias = c.arch == Architecture::kQwen2;
  c.qk_norm = c.arch == Architecture::kQwen3;
  c.dtype = parse_dtype(j);
  if (present(j, "bos_token_id")) {
    std::vector<TokenId> bos;
    append_token_ids(j, "bos_token_id", "config.json", c.vocab_size, bos);
    if (!bos.empty()) c.bos_token_id = bos.front();
  }
  append_token_ids(j, "eos_token_id", "config.json", c.vocab_size, c.eos_token_ids);
  refuse_unsupported(j, c);
  validate(c);
  return c;
}

ModelConfig ModelConfig::from_directory(const std::filesystem::path& dir) {
  auto read_json = [](const std::filesystem::path& p) {
    std::ifstream in(p);
    TS_CHECK(in.good(), kNotFound, "cannot open {}", p.string());
    json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
    TS_CHECK(!j.is_discarded(), kInvalidArgument, "{} is not valid JSON", p.string());
    return j;
  };
  ModelConfig c;
  try {
    c = from_json(read_json(dir / "config.json"));
  } catch (const Error& e) {
    throw Error(e.code(), fmt::format("{} ({})", e.what(), (dir / "config.json").string()));
  }
  const auto gen = dir / "generation_config.json";
  if (std::filesystem::exists(gen)) {
    const json g = read_json(gen);
    if (g.is_object()) append_token_ids(g, "eos_token_id", "generation_config.json", c.vocab_size, c.eos_token_ids);
  }
  return c;
}

ModelConfig ModelConfig::builtin_shape(const std::string& name) {
  ModelConfig c;
  c.dtype = DType::kBF16;
  c.vocab_size = 128256;
  c.rms_norm_eps = 1e-5f;
  c.rope_theta = 500000.0f;
  c.num_key_value_heads = 8;
  c.bos_token_id = 128000;
  c.eos_token_ids = {128001};
  c.arch = Architecture::kLlama;
  c.architecture_name = "LlamaForCausalLM";
  if (name == "llama-3.2-1b") {
    c.hidden_size = 2048, c.intermediate_size = 8192, c.num_hidden_layers = 16, c.num_attention_heads = 32;
    c.head_dim = 64, c.max_position_embeddings = 131072, c.tie_word_embeddings = true;
    c.rope_scaling = RopeScaling{RopeScaling::Type::kLlama3, 32.0f, 1.0f, 4.0f, 8192};
  } else if (name == "llama-3-8b") {
    c.hidden_size = 4096, c.intermediate_size = 14336, c.num_hidden_layers = 32, c.num_attention_heads = 32;
    c.head_dim = 128, c.max_position_embeddings = 8192;
  } else if (name == "llama-3-70b") {
    c.hidden_size = 8192, c.intermediate_size = 28672, c.num_hidden_layers = 80, c.num_attention_heads = 64;
    c.head_dim = 128, c.max_position_embeddings = 8192;
  } else if (name == "qwen3-32b") {
    c.arch = Architecture::kQwen3, c.architecture_name = "Qwen3ForCausalLM", c.qk_norm = true;
    c.vocab_size = 151936, c.hidden_size = 5120, c.intermediate_size = 25600, c.num_hidden_layers = 64;
    c.num_attention_heads = 64, c.head_dim = 128, c.rms_norm_eps = 1e-6f, c.rope_theta = 1000000.0f;
    c.max_position_embeddings = 40960, c.bos_token_id = 151643, c.eos_token_ids = {151645};
  } else {
    TS_THROW(kInvalidArgument, "unknown built-in shape \"{}\" (known: llama-3.2-1b, llama-3-8b, llama-3-70b, qwen3-32b)",
             name);
  }
  return c;
}

}  // namespace tessera
