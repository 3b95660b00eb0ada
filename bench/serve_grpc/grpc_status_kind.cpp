// Status code -> report error kind.
#include "bench/serve_grpc/grpc_status_kind.h"

#include <fmt/format.h>

namespace tessera::bench {

std::string grpc_error_kind(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "timeout";
    case grpc::StatusCode::UNAVAILABLE: return "grpc_unavailable";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "grpc_resource_exhausted";
    case grpc::StatusCode::INVALID_ARGUMENT: return "grpc_invalid_argument";
    case grpc::StatusCode::NOT_FOUND: return "grpc_not_found";
    case grpc::StatusCode::UNAUTHENTICATED: return "grpc_unauthenticated";
    case grpc::StatusCode::PERMISSION_DENIED: return "grpc_permission_denied";
    case grpc::StatusCode::CANCELLED: return "grpc_cancelled";
    case grpc::StatusCode::INTERNAL: return "grpc_internal";
    case grpc::StatusCode::UNIMPLEMENTED: return "grpc_unimplemented";
    case grpc::StatusCode::FAILED_PRECONDITION: return "grpc_failed_precondition";
    case grpc::StatusCode::OUT_OF_RANGE: return "grpc_out_of_range";
    default: return fmt::format("grpc_{}", static_cast<int>(code));
  }
}

}  // namespace tessera::bench
