// Optional API-key authentication shared by both doors ("Authorization: Bearer <key>" on HTTP,
// the `authorization` metadata on gRPC). Keys are compared as SHA-256 digests with a constant-time
// comparison over every configured key, so neither timing nor key length leaks.
// It must never log a key or keep a presented key beyond the check.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::server {

class ApiKeyAuth {
 public:
  ApiKeyAuth() = default;  // no keys: every request is allowed
  explicit ApiKeyAuth(const std::vector<std::string>& keys);

  // Keys from --api-key values, an --api-key-file (one key per line; blank lines and lines starting
  // with '#' skipped) and the environment variable TESSERA_API_KEY. Throws kNotFound / kInvalidArgument.
  static ApiKeyAuth from_sources(const std::vector<std::string>& flag_keys,
                                 const std::optional<std::filesystem::path>& key_file, const char* env_value);

  bool enabled() const { return !digests_.empty(); }
  size_t num_keys() const { return digests_.size(); }
  // True when auth is off, or `authorization` is "Bearer <a configured key>" (scheme case-insensitive).
  bool allows(std::string_view authorization) const;

 private:
  using Digest = std::array<uint8_t, 32>;
  static Digest digest(std::string_view key);
  std::vector<Digest> digests_;
};

}  // namespace tessera::server
