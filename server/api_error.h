// ApiError: a tessera::Error that also names the request field it is about (OpenAI's "param"), so
// both doors can say which field was wrong. It must never carry anything but plain data.
#pragma once

#include <string>

#include "common/error.h"

namespace tessera::server {

class ApiError : public Error {
 public:
  ApiError(ErrorCode code, std::string param, std::string message)
      : Error(code, std::move(message)), param_(std::move(param)) {}
  const std::string& param() const { return param_; }

 private:
  std::string param_;
};

}  // namespace tessera::server

// Throw an ApiError about `param`: API_THROW(kInvalidArgument, "n", "n must be ..., got {}", n).
#define API_THROW(code, param, ...) \
  throw ::tessera::server::ApiError(::tessera::ErrorCode::code, (param), ::fmt::format(__VA_ARGS__))

#define API_CHECK(cond, code, param, ...)          \
  do {                                             \
    if (!(cond)) API_THROW(code, param, __VA_ARGS__); \
  } while (0)
