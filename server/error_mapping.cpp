// Error -> HTTP status and OpenAI error JSON; see error_mapping.h.
#include "server/error_mapping.h"

#include "server/api_error.h"

namespace tessera::server {

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return 400;
    case ErrorCode::kFailedPrecondition: return 400;
    case ErrorCode::kUnimplemented: return 400;  // a recognised request field Tessera refuses
    case ErrorCode::kUnauthenticated: return 401;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kResourceExhausted: return 429;
    case ErrorCode::kCancelled: return 499;
    case ErrorCode::kUnavailable: return 503;
    case ErrorCode::kDeadlineExceeded: return 504;
    case ErrorCode::kDataLoss:
    case ErrorCode::kInternal: return 500;
  }
  return 500;
}

const char* openai_error_type(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kFailedPrecondition:
    case ErrorCode::kUnimplemented: return "invalid_request_error";
    case ErrorCode::kUnauthenticated: return "authentication_error";
    case ErrorCode::kNotFound: return "not_found_error";
    case ErrorCode::kResourceExhausted: return "rate_limit_error";
    case ErrorCode::kUnavailable: return "service_unavailable_error";
    case ErrorCode::kDeadlineExceeded: return "timeout_error";
    case ErrorCode::kCancelled: return "cancelled_error";
    case ErrorCode::kDataLoss:
    case ErrorCode::kInternal: return "internal_error";
  }
  return "internal_error";
}

nlohmann::json error_body(ErrorCode code, const std::string& message, const std::string& param) {
  nlohmann::json err = {{"message", message},
                        {"type", openai_error_type(code)},
                        {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)},
                        {"code", error_code_name(code)}};
  return {{"error", std::move(err)}};
}

nlohmann::json error_body(const Error& e) {
  const auto* api = dynamic_cast<const ApiError*>(&e);
  return error_body(e.code(), e.what(), api ? api->param() : std::string());
}

}  // namespace tessera::server
