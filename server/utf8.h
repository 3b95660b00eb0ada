// UTF-8 validation of untrusted bytes (request bodies, gRPC strings, token-id prompts' text).
// It must never allocate or read past the span it is given.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace tessera::server {

// Returns the byte offset of the first invalid sequence (overlong forms, surrogates, code points
// above U+10FFFF and truncated sequences are invalid), or nullopt when all of `s` is valid UTF-8.
std::optional<size_t> find_invalid_utf8(std::string_view s);

}  // namespace tessera::server
