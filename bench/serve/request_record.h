// RequestRecord: what was measured for one streamed request. Plain data; times in seconds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tessera::bench {

struct RequestRecord {
  bool ok = false;
  std::string error_kind;          // "connect", "http_429", "timeout", "stream", "protocol", "server_error"
  std::string error_message;       // first 300 bytes of what the server or the socket said
  int32_t input_len = 0;           // as sent (tokens in ids mode)
  int32_t requested_output_len = 0;
  int32_t output_tokens = 0;       // usage.completion_tokens when reported, else content events
  int32_t prompt_tokens = 0;       // usage.prompt_tokens when reported, else input_len
  double start_s = 0;              // send time, from the sweep point's start
  double ttft_s = 0;               // first content event - send time
  double e2e_s = 0;                // [DONE] - send time
  std::vector<double> itl_s;       // gaps between consecutive content events
};

}  // namespace tessera::bench
