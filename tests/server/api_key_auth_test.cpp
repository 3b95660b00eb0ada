// API keys: only "Bearer <configured key>" passes when keys are set; keys come from flags, a file
// and the environment.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "server/api_key_auth.h"

namespace tessera::server {
namespace {

TEST(ApiKeyAuth, OffAllowsEverything) {
  ApiKeyAuth auth;
  EXPECT_FALSE(auth.enabled());
  EXPECT_TRUE(auth.allows(""));
}

TEST(ApiKeyAuth, ChecksBearerKeys) {
  ApiKeyAuth auth({"sk-one", "sk-two"});
  EXPECT_TRUE(auth.allows("Bearer sk-one"));
  EXPECT_TRUE(auth.allows("bearer sk-two"));
  EXPECT_FALSE(auth.allows(""));
  EXPECT_FALSE(auth.allows("Bearer "));
  EXPECT_FALSE(auth.allows("Bearer sk-on"));
  EXPECT_FALSE(auth.allows("Bearer sk-one1"));
  EXPECT_FALSE(auth.allows("Basic sk-one"));
  EXPECT_FALSE(auth.allows("sk-one"));
}

TEST(ApiKeyAuth, LoadsKeysFromFileAndEnvironment) {
  const auto path = std::filesystem::temp_directory_path() / "tessera_api_keys_test.txt";
  {
    std::ofstream f(path);
    f << "# comment\n\nsk-file\n";
  }
  auto auth = ApiKeyAuth::from_sources({"sk-flag"}, path, "sk-env");
  std::filesystem::remove(path);
  EXPECT_EQ(auth.num_keys(), 3u);
  EXPECT_TRUE(auth.allows("Bearer sk-file"));
  EXPECT_TRUE(auth.allows("Bearer sk-env"));
  EXPECT_TRUE(auth.allows("Bearer sk-flag"));
  EXPECT_THROW(ApiKeyAuth::from_sources({}, std::filesystem::path("/nonexistent/keys"), nullptr), Error);
  EXPECT_THROW(ApiKeyAuth({""}), Error);
}

}  // namespace
}  // namespace tessera::server
