// GrpcTransport: drives tessera.v1.Inference Generate (completions) or Chat (chat) as server-
// streaming calls with the grpc++ callback API, so hundreds of concurrent streams share gRPC's own
// small completion-thread pool (no thread per stream). Measures like the HTTP transport: TTFT at
// the first streamed message carrying tokens, ITL between such messages, token counts from usage.
// Never blocks the load runner's io_context: finished records are posted to it.
#pragma once

#include <memory>
#include <vector>

#include "bench/serve/load_options.h"
#include "bench/serve/transport.h"

namespace grpc {
class Channel;
}

namespace tessera::bench {

class GrpcTransport final : public Transport {
 public:
  // Opens `channels` HTTP/2 connections to options.target (host:port), used round-robin so one
  // connection's stream limit never caps the offered concurrency. Connects lazily.
  explicit GrpcTransport(const LoadOptions& options, int channels = 4);
  ~GrpcTransport() override;

  // options.target.model, or ModelInfo's served model name; throws tessera::Error(kUnavailable).
  std::string resolve_model() override;
  void start(boost::asio::io_context& io, const std::string& model, const WorkItem& item, RequestRecord record,
             std::function<void(RequestRecord)> done) override;

 private:
  struct Stubs;
  const LoadOptions& options_;
  std::unique_ptr<Stubs> stubs_;
  size_t next_ = 0;
};

}  // namespace tessera::bench
