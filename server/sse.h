// Server-sent events framing for the OpenAI streaming format: "data: <json>\n\n", ending with
// "data: [DONE]\n\n". JSON is dumped compactly on one line (newlines inside strings are escaped),
// invalid UTF-8 replaced, so one event is always one frame. It must never emit a bare newline
// inside an event.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace tessera::server {

void append_sse_event(std::string& out, const nlohmann::json& event);
inline constexpr const char* kSseDone = "data: [DONE]\n\n";

}  // namespace tessera::server
