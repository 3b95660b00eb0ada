// HttpTransport: OpenAI-compatible completions / chat completions with "stream": true, one
// Boost.Beast connection per request on the load runner's io_context. Never touches gRPC.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include "bench/serve/load_options.h"
#include "bench/serve/transport.h"

namespace tessera::bench {

class HttpTransport final : public Transport {
 public:
  // Resolves the target's host once; throws tessera::Error(kUnavailable) when it cannot.
  explicit HttpTransport(const LoadOptions& options);

  std::string resolve_model() override;
  void start(boost::asio::io_context& io, const std::string& model, const WorkItem& item, RequestRecord record,
             std::function<void(RequestRecord)> done) override;

 private:
  const LoadOptions& options_;
  boost::asio::ip::tcp::resolver::results_type endpoints_;
};

}  // namespace tessera::bench
