// libFuzzer target over the shared request validator: any bytes as a request body must end in a
// parsed request or an ApiError, never a crash, a hang, UB or another exception type.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/api_error.h"
#include "server/json_fields.h"
#include "server/request_validator.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tessera::server;
  static const ApiLimits limits = [] {
    ApiLimits l;
    l.model_names = {"m"};
    l.max_model_len = 512;
    l.vocab_size = 1000;
    return l;
  }();
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  try {
    const auto j = parse_request_body(body);
    try { validate_completion_request(j, limits); } catch (const ApiError&) {}
    try { validate_chat_request(j, limits); } catch (const ApiError&) {}
    try { validate_tokenize_request(j, limits); } catch (const ApiError&) {}
    try { validate_detokenize_request(j, limits); } catch (const ApiError&) {}
  } catch (const ApiError&) {
  }
  return 0;
}
