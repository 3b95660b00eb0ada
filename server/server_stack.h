// ServerStack: both doors over one engine, built and started together, and drained together:
// ServingCore, API keys, the HTTP router and server, the gRPC server. Used by `tessera serve` and
// by `tessera bench frontdoor`. It must never outlive the Engine it was given.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "engine/engine.h"
#include "server/api_key_auth.h"
#include "server/grpc_server.h"
#include "server/http_router.h"
#include "server/http_server.h"
#include "server/serving_core.h"

namespace tessera {
class ChatTemplate;
class Tokenizer;
}  // namespace tessera

namespace tessera::server {

struct ServerStackOptions {
  ApiLimits limits;          // model names, context, per-request limits
  HttpServerConfig http;
  GrpcServerConfig grpc;
  bool enable_grpc = true;
  ApiKeyAuth auth;
};

class ServerStack {
 public:
  ServerStack(ServerStackOptions options, Engine& engine, std::shared_ptr<const Tokenizer> tokenizer,
              std::shared_ptr<const ChatTemplate> chat, MetricsRegistry& metrics);
  ~ServerStack();

  void start();
  uint16_t http_port() const { return http_->port(); }
  uint16_t grpc_port() const { return grpc_ ? grpc_->port() : 0; }
  // Stop admitting (503 / UNAVAILABLE, health NOT_SERVING), wait up to `timeout` for in-flight
  // requests, then stop both doors. Returns whether everything finished in time.
  bool drain(std::chrono::milliseconds timeout);
  void stop();
  ServingCore& core() { return *core_; }

 private:
  ServerStackOptions options_;
  Engine& engine_;
  std::unique_ptr<ServingCore> core_;
  std::unique_ptr<HttpRouter> router_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<GrpcServer> grpc_;
};

}  // namespace tessera::server
