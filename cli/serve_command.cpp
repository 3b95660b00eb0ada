// `tessera serve`: loads a model (or the built-in default), builds the runner, tokenizer, chat
// template and engine, then serves the gRPC and OpenAI-compatible HTTP doors until SIGTERM/SIGINT,
// which drains (stop admitting, finish in-flight requests up to --drain-timeout) and exits 0.
// It must never bind beyond 127.0.0.1 unless --host says so.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "common/error.h"
#include "common/metrics.h"
#include "engine/engine.h"
#include "server/server_stack.h"
#include <algorithm>
#include "kernels/cpu/thread_pool.h"
#include "model/checkpoint.h"
#include "model/cpu_model_runner.h"
#ifdef TESSERA_HAVE_CUDA_RUNNER
#include "model/cuda_runner.h"
#endif
#include "model/default_model.h"
#include "model/model_config.h"
#include "model/model_weights.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace tessera::cli {

namespace {

struct ModelLoadOptions {
  std::string model_dir;           // empty: the built-in default model
  std::string device = "auto";     // cpu | cuda | auto
  std::string load_format = "auto";  // auto (safetensors) | dummy (seeded random weights from config.json)
  int threads = 0;                 // CPU runner threads; 0 = one per core
  int32_t block_size = 16;
  int32_t num_kv_blocks = 0;       // 0: enough for max_num_seqs' worth of context, within a memory budget
  int32_t max_model_len = 0;       // 0: min(config max_position_embeddings, 4096)
  uint64_t dummy_seed = 0;
};

struct LoadedModel {
  std::string name;                            // folder name, the default served model name
  std::unique_ptr<StepExecutor> executor;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::shared_ptr<const ChatTemplate> chat_template;  // null when the model has none
  std::vector<TokenId> eos_token_ids;
  int32_t vocab_size = 0;                      // ids below this are valid in prompts
  int32_t block_size = 16;
  int32_t num_kv_blocks = 0;
  int32_t max_model_len = 0;
};

void add_model_load_options(CLI::App* cmd, ModelLoadOptions& o) {
  cmd->add_option("--model", o.model_dir, "Hugging Face model folder (config.json, *.safetensors, tokenizer.json)");
  cmd->add_option("--device", o.device, "cpu, cuda or auto")->capture_default_str();
  cmd->add_option("--load-format", o.load_format, "auto (safetensors) or dummy (seeded random weights)")
      ->capture_default_str();
  cmd->add_option("--threads", o.threads, "CPU runner threads (0: one per core)")->capture_default_str();
  cmd->add_option("--block-size", o.block_size, "Tokens per KV block")->capture_default_str();
  cmd->add_option("--num-kv-blocks", o.num_kv_blocks, "KV blocks (0: sized from --max-model-len)")
      ->capture_default_str();
  cmd->add_option("--max-model-len", o.max_model_len, "Context length (0: the model's, at most 4096)")
      ->capture_default_str();
}

LoadedModel load_model(const ModelLoadOptions& o) {
  std::filesystem::path dir(o.model_dir);
  if (o.model_dir.empty()) {
    spdlog::warn("no --model given: serving the built-in default model; its weights are random, it emits random text");
    dir = ensure_default_model();
    spdlog::info("built-in default model at {}", dir.string());
  }
  TS_CHECK(std::filesystem::is_directory(dir), kNotFound, "--model '{}' is not a folder", dir.string());
  TS_CHECK(o.device == "cpu" || o.device == "auto" || o.device == "cuda", kInvalidArgument,
           "--device must be cpu, cuda or auto, got '{}'", o.device);
#ifdef TESSERA_HAVE_CUDA_RUNNER
  const bool use_cuda = o.device == "cuda" || (o.device == "auto" && cuda::CudaRunner::available_devices() > 0);
#else
  TS_CHECK(o.device != "cuda", kUnimplemented, "--device cuda: this build has no CUDA backend (no nvcc at build time)");
  const bool use_cuda = false;
#endif
  TS_CHECK(o.load_format == "auto" || o.load_format == "dummy", kInvalidArgument,
           "--load-format must be auto or dummy, got '{}'", o.load_format);
  TS_CHECK(o.block_size >= 1 && o.block_size <= 1024, kInvalidArgument, "--block-size must be in [1, 1024], got {}",
           o.block_size);

  LoadedModel m;
  m.name = std::filesystem::absolute(dir).lexically_normal().filename().string();
  if (m.name.empty()) m.name = std::filesystem::absolute(dir).parent_path().filename().string();
  const ModelConfig config = ModelConfig::from_directory(dir);
  auto tokenizer = Tokenizer::from_directory(dir);
  m.tokenizer = tokenizer;
  if (const auto& src = tokenizer->chat_template_source()) {
    m.chat_template = std::make_shared<ChatTemplate>(*src, tokenizer->bos_token(), tokenizer->eos_token());
  } else {
    spdlog::warn("model '{}' has no chat template: /v1/chat/completions will be refused", m.name);
  }
  m.eos_token_ids = config.eos_token_ids;
  if (auto eos = tokenizer->eos_token_id();
      eos && std::find(m.eos_token_ids.begin(), m.eos_token_ids.end(), *eos) == m.eos_token_ids.end()) {
    m.eos_token_ids.push_back(*eos);
  }
  m.vocab_size = std::min<int32_t>(config.vocab_size, static_cast<int32_t>(tokenizer->vocab_size()));
  m.block_size = o.block_size;
  m.max_model_len = o.max_model_len > 0 ? o.max_model_len : std::min(config.max_position_embeddings, 4096);
  TS_CHECK(m.max_model_len >= 2 && m.max_model_len <= config.max_position_embeddings, kInvalidArgument,
           "--max-model-len must be in [2, {}] for this model, got {}", config.max_position_embeddings,
           m.max_model_len);
  const int32_t blocks_per_seq = (m.max_model_len + m.block_size - 1) / m.block_size;
  m.num_kv_blocks = o.num_kv_blocks > 0 ? o.num_kv_blocks : std::max(256, blocks_per_seq * 4);

#ifdef TESSERA_HAVE_CUDA_RUNNER
  if (use_cuda) {
    cuda::CudaRunnerOptions co;
    co.block_size = m.block_size;
    co.max_model_len = m.max_model_len;
    if (o.num_kv_blocks > 0) co.max_kv_blocks = o.num_kv_blocks;
    auto runner = std::make_unique<cuda::CudaRunner>(config, co);
    if (o.load_format == "dummy") {
      runner->load_dummy_weights(o.dummy_seed);
    } else {
      runner->load_weights(cuda::checkpoint_tensor_source(Checkpoint::open(dir)));
    }
    TS_CHECK(o.num_kv_blocks <= 0 || runner->num_kv_blocks() >= o.num_kv_blocks, kResourceExhausted,
             "--num-kv-blocks {} does not fit on the GPU ({} fit)", o.num_kv_blocks, runner->num_kv_blocks());
    m.num_kv_blocks = static_cast<int32_t>(std::min<int64_t>(runner->num_kv_blocks(), INT32_MAX));
    m.executor = std::move(runner);
    spdlog::info("model '{}': {} layers, hidden {}, vocab {}, {} weights on cuda, {} KV blocks of {}", m.name,
                 config.num_hidden_layers, config.hidden_size, config.vocab_size,
                 o.load_format == "dummy" ? "dummy" : "checkpoint", m.num_kv_blocks, m.block_size);
    return m;
  }
#else
  (void)use_cuda;
#endif
  auto pool = std::make_shared<cpu::ThreadPool>(o.threads);
  ModelWeights weights = o.load_format == "dummy" ? make_dummy_weights(config, o.dummy_seed, *pool)
                                                  : load_weights(config, Checkpoint::open(dir));
  CpuRunnerOptions ro;
  ro.num_kv_blocks = m.num_kv_blocks;
  ro.block_size = m.block_size;
  m.executor = std::make_unique<CpuModelRunner>(config, std::move(weights), ro, pool);
  spdlog::info("model '{}': {} layers, hidden {}, vocab {}, {} weights on cpu ({} threads), {} KV blocks of {}",
               m.name, config.num_hidden_layers, config.hidden_size, config.vocab_size,
               o.load_format == "dummy" ? "dummy" : "checkpoint", pool->num_threads(), m.num_kv_blocks, m.block_size);
  return m;
}

struct ServeOptions {
  ModelLoadOptions model;
  std::string host = "127.0.0.1";
  uint16_t http_port = 8000;
  uint16_t grpc_port = 50051;
  bool no_grpc = false;
  std::vector<std::string> api_keys;
  std::string api_key_file;
  std::string tls_cert, tls_key;
  int32_t max_num_seqs = 256;
  int32_t max_num_batched_tokens = 2048;
  int32_t max_queue_len = 1024;
  double drain_timeout_s = 30;
  std::string served_model_name;
  size_t max_body_bytes = 4u << 20;
  int http_threads = 2;
  int32_t max_n = 16;
  int32_t max_logprobs = 20;
  std::string port_file;
};

void add_options(CLI::App* cmd, ServeOptions& o) {
  add_model_load_options(cmd, o.model);
  cmd->add_option("--host", o.host, "Address to bind both doors to (0.0.0.0 exposes them)")->capture_default_str();
  cmd->add_option("--http-port", o.http_port, "OpenAI-compatible HTTP port (0: any free port)")->capture_default_str();
  cmd->add_option("--grpc-port", o.grpc_port, "gRPC port (0: any free port)")->capture_default_str();
  cmd->add_flag("--no-grpc", o.no_grpc, "Serve HTTP only");
  cmd->add_option("--api-key", o.api_keys, "Require this API key (repeatable; also env TESSERA_API_KEY)");
  cmd->add_option("--api-key-file", o.api_key_file, "Require one of the keys in this file (one per line)");
  cmd->add_option("--tls-cert", o.tls_cert, "PEM certificate chain: serve both doors over TLS");
  cmd->add_option("--tls-key", o.tls_key, "PEM private key for --tls-cert");
  cmd->add_option("--max-num-seqs", o.max_num_seqs, "Sequences in one step at most")->capture_default_str();
  cmd->add_option("--max-num-batched-tokens", o.max_num_batched_tokens, "Tokens in one step at most")
      ->capture_default_str();
  cmd->add_option("--max-queue-len", o.max_queue_len, "Waiting requests beyond which new ones get 429")
      ->capture_default_str();
  cmd->add_option("--drain-timeout", o.drain_timeout_s, "Seconds SIGTERM waits for in-flight requests")
      ->capture_default_str();
  cmd->add_option("--served-model-name", o.served_model_name, "Model name the API answers to (default: the folder)");
  cmd->add_option("--max-body-bytes", o.max_body_bytes, "HTTP request body limit (413 beyond)")->capture_default_str();
  cmd->add_option("--http-threads", o.http_threads, "HTTP io threads")->capture_default_str();
  cmd->add_option("--max-n", o.max_n, "Largest n (choices) per request")->capture_default_str();
  cmd->add_option("--max-logprobs", o.max_logprobs, "Largest logprobs / top_logprobs")->capture_default_str();
  cmd->add_option("--port-file", o.port_file, "Write {\"http\": port, \"grpc\": port} here once listening");
}

// SIGTERM and SIGINT are blocked in every thread (set before any thread starts) and taken by sigwait.
sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int run_serve(const ServeOptions& o) {
  const sigset_t stop_signals = block_stop_signals();
  LoadedModel model = load_model(o.model);

  EngineConfig ec;
  ec.block_size = model.block_size;
  ec.num_kv_blocks = model.num_kv_blocks;
  ec.max_num_seqs = o.max_num_seqs;
  ec.max_num_batched_tokens = o.max_num_batched_tokens;
  ec.max_model_len = model.max_model_len;
  ec.max_queue_len = o.max_queue_len;
  ec.eos_token_ids = model.eos_token_ids;
  ec.vocab_size = model.vocab_size;

  MetricsRegistry metrics;
  Engine engine(ec, std::move(model.executor), model.tokenizer, metrics);
  engine.start();

  server::ServerStackOptions so;
  so.limits.model_names = {o.served_model_name.empty() ? model.name : o.served_model_name};
  so.limits.max_model_len = ec.max_model_len;
  so.limits.vocab_size = model.vocab_size;
  so.limits.max_n = o.max_n;
  so.limits.max_logprobs = o.max_logprobs;
  so.http.host = so.grpc.host = o.host;
  so.http.port = o.http_port;
  so.grpc.port = o.grpc_port;
  so.http.io_threads = o.http_threads;
  so.http.max_body_bytes = o.max_body_bytes;
  so.grpc.max_message_bytes = o.max_body_bytes;
  so.enable_grpc = !o.no_grpc;
  TS_CHECK(o.tls_cert.empty() == o.tls_key.empty(), kInvalidArgument, "--tls-cert and --tls-key go together");
  if (!o.tls_cert.empty()) so.http.tls = so.grpc.tls = server::TlsFiles{o.tls_cert, o.tls_key};
  so.auth = server::ApiKeyAuth::from_sources(
      o.api_keys, o.api_key_file.empty() ? std::nullopt : std::optional<std::filesystem::path>(o.api_key_file),
      std::getenv("TESSERA_API_KEY"));
  if (so.auth.enabled()) spdlog::info("API keys required ({} configured)", so.auth.num_keys());
  if (o.host != "127.0.0.1" && o.host != "::1" && o.host != "localhost" && !so.auth.enabled()) {
    spdlog::warn("binding to {} without an API key: anyone who can reach it can use the model", o.host);
  }

  server::ServerStack stack(std::move(so), engine, model.tokenizer, model.chat_template, metrics);
  stack.start();
  if (!o.port_file.empty()) {
    std::ofstream f(o.port_file);
    f << fmt::format("{{\"http\": {}, \"grpc\": {}}}\n", stack.http_port(), stack.grpc_port());
    TS_CHECK(f.good(), kInvalidArgument, "cannot write --port-file '{}'", o.port_file);
  }
  spdlog::info("serving model '{}' (context {} tokens); SIGTERM drains and exits", model.name, ec.max_model_len);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("{}: draining (up to {} s)", sig == SIGTERM ? "SIGTERM" : "SIGINT", o.drain_timeout_s);
  const bool clean = stack.drain(std::chrono::milliseconds(static_cast<int64_t>(o.drain_timeout_s * 1000)));
  spdlog::info("drained {}; exiting", clean ? "cleanly" : "after the timeout");
  return 0;
}

}  // namespace

void register_serve_command(CLI::App& app, CommandRunner& runner) {
  auto* cmd = app.add_subcommand("serve", "Serve a model over gRPC and an OpenAI-compatible HTTP API");
  auto opts = std::make_shared<ServeOptions>();
  add_options(cmd, *opts);
  cmd->callback([&runner, opts] { runner.run = [opts] { return run_serve(*opts); }; });
}

}  // namespace tessera::cli
