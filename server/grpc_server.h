// GrpcServer: the tessera.v1.Inference gRPC door (grpc++ callback API: no thread per call), plus the standard
// grpc.health.v1.Health service and server reflection. Requests are converted into the OpenAI JSON
// shape and checked by the same validator as the HTTP door. Deadlines and client cancellation
// cancel the engine request; its KV is freed at the next step.
// It must never leave an engine request running after its RPC ended.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "server/api_key_auth.h"
#include "server/http_server.h"
#include "server/serving_core.h"

namespace tessera::server {

struct GrpcServerConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 50051;              // 0: an ephemeral port (see GrpcServer::port())
  std::optional<TlsFiles> tls;
  int max_concurrent_streams = 4096;  // Generate/Chat streams at once (beyond: RESOURCE_EXHAUSTED)
  size_t max_message_bytes = 4u << 20;
};

class GrpcServerImpl;

class GrpcServer {
 public:
  GrpcServer(GrpcServerConfig config, ServingCore& core, const ApiKeyAuth& auth);
  ~GrpcServer();

  // Throws Error(kUnavailable) when the port cannot be bound.
  void start();
  uint16_t port() const;
  // Health turns NOT_SERVING (draining); new RPCs are refused by the engine with UNAVAILABLE.
  void set_serving(bool serving);
  // Waits up to `grace` for RPCs in flight, then cancels the rest.
  void stop(std::chrono::milliseconds grace);

 private:
  std::unique_ptr<GrpcServerImpl> impl_;
};

}  // namespace tessera::server
