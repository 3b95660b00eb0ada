// How a tessera::Error reaches a client: the HTTP status, OpenAI's error "type" and the JSON body
// {"error": {"message", "type", "param", "code"}}. (gRPC's mapping lives in grpc_service.cpp.)
// It must never put anything but the error's own message into the body.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "common/error.h"

namespace tessera::server {

int http_status(ErrorCode code);
const char* openai_error_type(ErrorCode code);
// The OpenAI error object; `param` is the field at fault (ApiError) or null.
nlohmann::json error_body(const Error& e);
nlohmann::json error_body(ErrorCode code, const std::string& message, const std::string& param = "");

}  // namespace tessera::server
