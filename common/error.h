// The one error type of Tessera: an exception carrying a code that each front door maps to an
// HTTP status or a gRPC status. Every message names what was wrong and the value seen.
// It must never carry anything but plain data (no pointers into request or engine state).
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace tessera {

enum class ErrorCode {
  kInvalidArgument,     // the caller sent something wrong (HTTP 400, gRPC INVALID_ARGUMENT)
  kNotFound,            // unknown model, file, endpoint (404, NOT_FOUND)
  kResourceExhausted,   // admission queue full, over a limit (429, RESOURCE_EXHAUSTED)
  kUnavailable,         // draining, engine or a rank lost (503, UNAVAILABLE)
  kDeadlineExceeded,    // the request's deadline passed (504, DEADLINE_EXCEEDED)
  kUnauthenticated,     // missing or wrong API key (401, UNAUTHENTICATED)
  kFailedPrecondition,  // the system is not in a state to do this (400, FAILED_PRECONDITION)
  kUnimplemented,       // a recognised but unsupported feature (400/501, UNIMPLEMENTED)
  kDataLoss,            // a corrupt or truncated file (checkpoint, tokenizer)
  kCancelled,           // the client went away
  kInternal,            // a bug: an invariant did not hold (500, INTERNAL)
};

const char* error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string message) : std::runtime_error(std::move(message)), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace tessera

// Throw an Error with a fmt-formatted message: TS_THROW(kInvalidArgument, "bad x: {}", x).
#define TS_THROW(code, ...) throw ::tessera::Error(::tessera::ErrorCode::code, ::fmt::format(__VA_ARGS__))

// Check a condition on input; on failure throw the given code with the message.
#define TS_CHECK(cond, code, ...)   \
  do {                              \
    if (!(cond)) TS_THROW(code, __VA_ARGS__); \
  } while (0)

// Check an internal invariant; on failure throw kInternal naming the file, line and condition.
#define TS_ASSERT(cond, ...)                                                                  \
  do {                                                                                        \
    if (!(cond))                                                                              \
      throw ::tessera::Error(::tessera::ErrorCode::kInternal,                                 \
                             ::fmt::format("{}:{}: check failed: {}: {}", __FILE__, __LINE__, \
                                           #cond, ::fmt::format(__VA_ARGS__)));               \
  } while (0)
