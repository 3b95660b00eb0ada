// The per-launch secret every rank of one TP job shares: 128 random bits, drawn by whoever starts
// the job (rank 0 for locally spawned ranks, the operator for multi-node). Connections between
// ranks prove knowledge of it with HMAC-SHA256 over fresh nonces; it never travels on the wire.
// It must never be logged, written to argv, or compared in variable time.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace tessera::parallel {

// Environment variable carrying the secret as 32 hex digits (locally spawned ranks inherit it).
inline constexpr const char* kSecretEnv = "TESSERA_TP_SECRET";
// Environment variable naming a file whose first line holds the secret as 32 hex digits.
inline constexpr const char* kSecretFileEnv = "TESSERA_TP_SECRET_FILE";

using Digest = std::array<uint8_t, 32>;
using Nonce = std::array<uint8_t, 16>;

class LaunchSecret {
 public:
  static LaunchSecret generate();
  // Parses 32 hex digits; throws kInvalidArgument naming the length/character (never the value).
  static LaunchSecret from_hex(std::string_view hex);
  static LaunchSecret from_file(const std::string& path);
  // TESSERA_TP_SECRET, else TESSERA_TP_SECRET_FILE, else nullopt.
  static std::optional<LaunchSecret> from_environment();

  std::string to_hex() const;
  // HMAC-SHA256(secret, message).
  Digest mac(std::span<const uint8_t> message) const;

 private:
  std::array<uint8_t, 16> key_{};
};

// Cryptographically random bytes (OpenSSL RAND_bytes); throws kInternal when the RNG fails.
void random_bytes(std::span<uint8_t> out);
// Constant-time equality of two digests.
bool digest_equal(const Digest& a, const Digest& b);
// SHA-256 of bytes.
Digest sha256(std::span<const uint8_t> data);

}  // namespace tessera::parallel
