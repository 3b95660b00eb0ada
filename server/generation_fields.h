// Fields shared by the completions and chat-completions validators (sampling, stopping, streaming,
// model). Internal to server/; the entry points are in request_validator.h.
#pragma once

#include <nlohmann/json.hpp>

#include <string_view>
#include <vector>

#include "server/request_validator.h"

namespace tessera::server {

// The sampling/stopping/streaming fields both endpoints accept (OpenAI's and vLLM's extensions).
const std::vector<std::string_view>& common_generation_fields();

// Reads the fields of common_generation_fields() from body. `max_tokens_keys` are the names that
// set max_tokens (chat accepts max_completion_tokens too; both given must agree).
ParsedGeneration parse_generation_fields(const nlohmann::json& body, const ApiLimits& limits,
                                         std::initializer_list<std::string_view> max_tokens_keys);

}  // namespace tessera::server
