// Model fingerprints change with config.json, any safetensors header and the TP size, stay equal
// for identical directories, and refuse a header longer than its file.
#include <gtest/gtest.h>

#include <fstream>

#include "common/error.h"
#include "parallel/model_fingerprint.h"

namespace tessera::parallel {
namespace {

namespace fs = std::filesystem;

void write_safetensors(const fs::path& p, const std::string& header, uint64_t claimed_len, size_t data_bytes) {
  std::ofstream out(p, std::ios::binary);
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((claimed_len >> (8 * i)) & 0xff));
  out << header << std::string(data_bytes, '\0');
}

class FingerprintTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tessera-fp-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    std::ofstream(dir_ / "config.json") << R"({"hidden_size": 64})";
    const std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    write_safetensors(dir_ / "model.safetensors", h, h.size(), 8);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(FingerprintTest, StableForTheSameModelAndTp) {
  const auto a = model_fingerprint(dir_, 2), b = model_fingerprint(dir_, 2);
  EXPECT_TRUE(digest_equal(a.digest, b.digest));
  EXPECT_NE(a.description.find("1 weight files"), std::string::npos) << a.description;
  EXPECT_FALSE(digest_equal(a.digest, model_fingerprint(dir_, 4).digest));
}

TEST_F(FingerprintTest, ChangesWithConfigOrWeightsHeader) {
  const auto a = model_fingerprint(dir_, 2);
  std::ofstream(dir_ / "config.json") << R"({"hidden_size": 65})";
  const auto b = model_fingerprint(dir_, 2);
  EXPECT_FALSE(digest_equal(a.digest, b.digest));
  const std::string h = R"({"a":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}})";
  write_safetensors(dir_ / "model.safetensors", h, h.size(), 8);
  EXPECT_FALSE(digest_equal(b.digest, model_fingerprint(dir_, 2).digest));
}

TEST_F(FingerprintTest, RefusesAHeaderLongerThanTheFile) {
  write_safetensors(dir_ / "model.safetensors", "{}", 1ull << 40, 0);
  try {
    model_fingerprint(dir_, 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kDataLoss);
    EXPECT_NE(std::string(e.what()).find("1099511627776-byte header"), std::string::npos) << e.what();
  }
  fs::remove(dir_ / "config.json");
  EXPECT_THROW(model_fingerprint(dir_, 1), Error);
}

}  // namespace
}  // namespace tessera::parallel
