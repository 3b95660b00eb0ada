// Safetensors reading: single and sharded checkpoints map and hand out the right bytes; every kind
// of corrupt or truncated file gives Error(kDataLoss) naming the file and tensor, never a crash.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "model/checkpoint.h"
#include "model/safetensors_header.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string with_length_prefix(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

// Two F32 tensors "a" [2] and "b" [1, 2].
std::string valid_file() {
  json h = {{"a", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}}},
            {"b", {{"dtype", "F32"}, {"shape", {1, 2}}, {"data_offsets", {8, 16}}}},
            {"__metadata__", {{"format", "pt"}}}};
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  const float vals[4] = {1.0f, 2.0f, 3.0f, 4.0f};
  return with_length_prefix(header, std::string(reinterpret_cast<const char*>(vals), 16));
}

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tessera_st_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
  }
  void expect_data_loss(const std::string& needle) {
    try {
      Checkpoint::open(dir_);
      FAIL() << "opened a corrupt checkpoint";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kDataLoss) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
  fs::path dir_;
};

TEST_F(SafetensorsTest, ReadsSingleFile) {
  write("model.safetensors", valid_file());
  auto ck = Checkpoint::open(dir_);
  const TensorView& b = ck->tensor("b");
  EXPECT_EQ(b.shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(b.dtype, DType::kF32);
  EXPECT_EQ(static_cast<const float*>(b.data)[1], 4.0f);
  EXPECT_EQ(ck->names().size(), 2u);
  EXPECT_THROW(ck->tensor("c"), Error);
}

TEST_F(SafetensorsTest, ReadsShardedIndex) {
  write("part-1.safetensors", valid_file());
  json h = {{"c", {{"dtype", "BF16"}, {"shape", {4}}, {"data_offsets", {0, 8}}}}};
  write("part-2.safetensors", with_length_prefix(h.dump() + std::string((8 - h.dump().size() % 8) % 8, ' '),
                                                 std::string(8, '\x3f')));
  write("model.safetensors.index.json",
        json{{"weight_map", {{"a", "part-1.safetensors"}, {"b", "part-1.safetensors"}, {"c", "part-2.safetensors"}}}}
            .dump());
  auto ck = Checkpoint::open(dir_);
  EXPECT_EQ(ck->tensor("c").dtype, DType::kBF16);
  EXPECT_EQ(ck->tensor("a").file, "part-1.safetensors");
}

TEST_F(SafetensorsTest, IndexNamingAMissingTensorIsDataLoss) {
  write("part-1.safetensors", valid_file());
  write("model.safetensors.index.json", json{{"weight_map", {{"zz", "part-1.safetensors"}}}}.dump());
  expect_data_loss("'zz'");
}

TEST_F(SafetensorsTest, IndexWithPathInShardNameIsRefused) {
  write("model.safetensors.index.json", json{{"weight_map", {{"a", "../etc/passwd"}}}}.dump());
  expect_data_loss("../etc/passwd");
}

TEST_F(SafetensorsTest, TruncatedDataIsDataLoss) {
  const std::string f = valid_file();
  write("model.safetensors", f.substr(0, f.size() - 3));
  expect_data_loss("'b'");
}

TEST_F(SafetensorsTest, TruncatedHeaderIsDataLoss) {
  write("model.safetensors", valid_file().substr(0, 20));
  expect_data_loss("header length");
  write("model.safetensors", std::string(5, '\0'));
  expect_data_loss("too short");
}

TEST_F(SafetensorsTest, HugeHeaderLengthIsDataLoss) {
  std::string f = valid_file();
  std::memset(f.data(), 0xff, 8);
  write("model.safetensors", f);
  expect_data_loss("header length");
}

TEST_F(SafetensorsTest, OffsetsOutsideFileOrOverflowingAreDataLoss) {
  const std::string bad[] = {
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}})",
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})",
      R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})",
      R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
      R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})",
      R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})",
      R"({"a":{"dtype":"F32","shape":[2]}})",
      R"({"a":[1,2]})",
      R"([1,2,3])",
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8)",
  };
  for (const std::string& h : bad) {
    write("model.safetensors", with_length_prefix(h, std::string(8, '\0')));
    try {
      Checkpoint::open(dir_);
      ADD_FAILURE() << "accepted " << h;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kDataLoss) << h << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
    }
  }
}

TEST_F(SafetensorsTest, MissingWeightsIsNotFound) {
  try {
    Checkpoint::open(dir_);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

}  // namespace
}  // namespace tessera
