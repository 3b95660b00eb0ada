// Transport: how one streamed request reaches the server under test (OpenAI HTTP/SSE, or Tessera's
// gRPC API). The load runner drives every transport the same way and never knows the wire; a
// transport never decides load shape, lengths or statistics.
#pragma once

#include <boost/asio/io_context.hpp>

#include <functional>
#include <string>

#include "bench/serve/request_record.h"
#include "bench/serve/workload.h"

namespace tessera::bench {

class Transport {
 public:
  virtual ~Transport() = default;

  // The model name requests carry: the one the user named, or the first the server lists.
  virtual std::string resolve_model() = 0;

  // Starts one streamed request for `item` and returns at once. `record` comes pre-filled with
  // input_len / requested_output_len / start_s; `done` must run exactly once, on `io`, with the
  // finished record (ok or not). A transport with its own threads posts `done` to `io`.
  virtual void start(boost::asio::io_context& io, const std::string& model, const WorkItem& item,
                     RequestRecord record, std::function<void(RequestRecord)> done) = 0;
};

}  // namespace tessera::bench
