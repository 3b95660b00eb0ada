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
#include "cli/serve_model.h"
#include "common/error.h"
#include "common/metrics.h"
#include "engine/engine.h"
#include "server/server_stack.h"
#include <algorithm>
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace tessera::cli {

namespace {

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
  ModelLoadOptions mo = o.model;  // the runner is sized for the engine's steps
  mo.max_num_seqs = o.max_num_seqs;
  mo.max_num_batched_tokens = o.max_num_batched_tokens;
  LoadedModel model = load_model(mo);
  if (model.worker_exit_code) return *model.worker_exit_code;  // a non-zero TP rank: no server here
  if (model.worker_exit_code) return *model.worker_exit_code;  // a non-zero TP rank: no server here

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
  if (model.tp_group_lost && model.tp_group_lost->load()) {
    spdlog::error("exiting non-zero: the tensor-parallel group was lost (the supervisor restarts the job)");
    return 1;
  }
  if (model.tp_group_lost && model.tp_group_lost->load()) {
    spdlog::error("exiting non-zero: the tensor-parallel group was lost (the supervisor restarts the job)");
    return 1;
  }
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
