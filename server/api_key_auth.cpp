// API-key checks; see api_key_auth.h.
#include "server/api_key_auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>

#include "common/error.h"

namespace tessera::server {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

ApiKeyAuth::Digest ApiKeyAuth::digest(std::string_view key) {
  Digest d{};
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), d.data());
  return d;
}

ApiKeyAuth::ApiKeyAuth(const std::vector<std::string>& keys) {
  for (const auto& k : keys) {
    TS_CHECK(!trim(k).empty(), kInvalidArgument, "an API key is empty");
    TS_CHECK(trim(k).size() == k.size(), kInvalidArgument, "an API key starts or ends with whitespace");
    digests_.push_back(digest(k));
  }
}

ApiKeyAuth ApiKeyAuth::from_sources(const std::vector<std::string>& flag_keys,
                                    const std::optional<std::filesystem::path>& key_file, const char* env_value) {
  std::vector<std::string> keys = flag_keys;
  if (key_file) {
    std::ifstream in(*key_file);
    TS_CHECK(in.good(), kNotFound, "cannot read --api-key-file '{}'", key_file->string());
    std::string line;
    while (std::getline(in, line)) {
      auto t = trim(line);
      if (t.empty() || t.front() == '#') continue;
      keys.emplace_back(t);
    }
    TS_CHECK(keys.size() > flag_keys.size(), kInvalidArgument, "--api-key-file '{}' holds no key",
             key_file->string());
  }
  if (env_value != nullptr && !trim(env_value).empty()) keys.emplace_back(trim(env_value));
  return ApiKeyAuth(keys);
}

bool ApiKeyAuth::allows(std::string_view authorization) const {
  if (digests_.empty()) return true;
  authorization = trim(authorization);
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    const char c = authorization[i];
    if ((c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c) != kScheme[i]) return false;
  }
  const Digest presented = digest(trim(authorization.substr(kScheme.size())));
  int matched = 0;
  for (const auto& d : digests_) {  // every key is compared: the time does not say which matched
    matched |= CRYPTO_memcmp(d.data(), presented.data(), d.size()) == 0 ? 1 : 0;
  }
  return matched != 0;
}

}  // namespace tessera::server
