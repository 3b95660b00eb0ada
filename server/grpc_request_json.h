// The gRPC door's request side: tessera.v1 request messages -> the OpenAI-shaped JSON the one
// request validator reads (so both doors accept and refuse exactly the same things), and
// tessera::Error -> grpc::Status. It must never validate anything itself: the validator does.
#pragma once

#include <grpcpp/support/status.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "tessera/v1/inference.pb.h"

namespace tessera::server {

grpc::Status to_status(const Error& e);

// Request messages as the JSON bodies of /v1/completions, /v1/chat/completions, tokenize, detokenize.
nlohmann::json generate_request_json(const v1::GenerateRequest& req);
nlohmann::json chat_request_json(const v1::ChatRequest& req);
nlohmann::json tokenize_request_json(const v1::TokenizeRequest& req);
nlohmann::json detokenize_request_json(const v1::DetokenizeRequest& req);

}  // namespace tessera::server
