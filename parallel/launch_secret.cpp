// Per-launch secret, HMAC and SHA-256 through OpenSSL's libcrypto (see launch_secret.h).
#include "parallel/launch_secret.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <fstream>

#include "common/error.h"

namespace tessera::parallel {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

void random_bytes(std::span<uint8_t> out) {
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1)
    TS_THROW(kInternal, "the system random number generator failed to produce {} bytes", out.size());
}

LaunchSecret LaunchSecret::generate() {
  LaunchSecret s;
  random_bytes(s.key_);
  return s;
}

LaunchSecret LaunchSecret::from_hex(std::string_view hex) {
  while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r' || hex.back() == ' ')) hex.remove_suffix(1);
  TS_CHECK(hex.size() == 32, kInvalidArgument, "the TP launch secret must be 32 hex digits, got {} characters",
           hex.size());
  LaunchSecret s;
  for (size_t i = 0; i < 16; ++i) {
    const int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    TS_CHECK(hi >= 0 && lo >= 0, kInvalidArgument, "the TP launch secret has a non-hex character at position {}",
             hi < 0 ? 2 * i : 2 * i + 1);
    s.key_[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return s;
}

LaunchSecret LaunchSecret::from_file(const std::string& path) {
  std::ifstream in(path);
  TS_CHECK(in.good(), kNotFound, "cannot read the TP launch secret file '{}'", path);
  std::string line;
  std::getline(in, line);
  return from_hex(line);
}

std::optional<LaunchSecret> LaunchSecret::from_environment() {
  if (const char* hex = std::getenv(kSecretEnv); hex && *hex) return from_hex(hex);
  if (const char* path = std::getenv(kSecretFileEnv); path && *path) return from_file(path);
  return std::nullopt;
}

std::string LaunchSecret::to_hex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : key_) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

Digest LaunchSecret::mac(std::span<const uint8_t> message) const {
  Digest d{};
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()), message.data(), message.size(), d.data(), &len) ==
          nullptr ||
      len != d.size())
    TS_THROW(kInternal, "HMAC-SHA256 failed (length {})", len);
  return d;
}

bool digest_equal(const Digest& a, const Digest& b) { return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0; }

Digest sha256(std::span<const uint8_t> data) {
  Digest d{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), d.data(), &len, EVP_sha256(), nullptr) != 1 || len != d.size())
    TS_THROW(kInternal, "SHA-256 failed (length {})", len);
  return d;
}

}  // namespace tessera::parallel
