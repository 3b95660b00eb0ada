// SSE framing; see sse.h.
#include "server/sse.h"

namespace tessera::server {

void append_sse_event(std::string& out, const nlohmann::json& event) {
  out += "data: ";
  out += event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  out += "\n\n";
}

}  // namespace tessera::server
