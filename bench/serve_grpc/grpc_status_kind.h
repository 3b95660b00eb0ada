// The error kind a failed gRPC stream is counted under in the report ("timeout", "grpc_unavailable",
// ...), named like the HTTP transport's kinds so both read the same. Pure function, no gRPC calls.
#pragma once

#include <grpcpp/support/status.h>

#include <string>

namespace tessera::bench {

std::string grpc_error_kind(grpc::StatusCode code);

}  // namespace tessera::bench
