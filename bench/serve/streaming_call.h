// StreamingCall: one OpenAI-style streaming request (SSE over HTTP/1.1) on Boost.Beast, recording
// when each content event arrives. Runs on the caller's io_context; never blocks a thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <memory>
#include <string>

#include "bench/serve/request_record.h"

namespace tessera::bench {

struct CallSpec {
  std::string host_header;   // Host header value
  std::string path;          // e.g. /v1/completions
  std::string body;          // JSON request body with "stream": true
  std::string api_key;       // Bearer token or empty
  double timeout_s = 600;    // whole-request deadline
};

// Starts the call; `done` runs once on the io_context with the finished record (ok or not).
// `record` comes pre-filled with input_len / requested_output_len / start_s.
void start_streaming_call(boost::asio::io_context& io, const boost::asio::ip::tcp::resolver::results_type& endpoints,
                          CallSpec spec, RequestRecord record, std::function<void(RequestRecord)> done);

// Synchronous GET for small JSON documents (e.g. /v1/models); throws tessera::Error on failure.
std::string http_get(const std::string& host, const std::string& port, const std::string& path,
                     const std::string& api_key, double timeout_s);

}  // namespace tessera::bench
