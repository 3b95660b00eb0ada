// The GEMM tuning cache file: choices round-trip for the same device and libraries; a file from
// another identity, a malformed one, wrong types or out-of-range values are ignored (never trusted);
// an unwritable path is refused by name; the write leaves no temporary file behind.
#include "model/gemm_tuning_file.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "common/error.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path dir;
  TempDir() {
    dir = fs::temp_directory_path() / ("tessera-gemm-tuning-" + std::to_string(::getpid()) + "-" +
                                       std::to_string(std::random_device{}()));
    fs::create_directories(dir);
  }
  ~TempDir() { fs::remove_all(dir); }
};

GemmTuningIdentity h200() { return {"NVIDIA H200", 90, 130001, 13000}; }

std::vector<cuda::GemmChoice> some_choices() {
  std::mt19937 rng(std::random_device{}());
  std::vector<cuda::GemmChoice> out;
  for (int i = 0; i < 20; ++i) {
    cuda::GemmChoice c;
    c.path = static_cast<cuda::GemmPath>(rng() % 4);
    c.m = 1 + static_cast<int32_t>(rng() % 8192);
    c.n = 1 + static_cast<int32_t>(rng() % 150000);
    c.k = 1 + static_cast<int32_t>(rng() % 20000);
    c.out_f32 = rng() % 2 == 0;
    c.cublas_index = static_cast<int32_t>(rng() % 40);
    c.gemv_variant = static_cast<int32_t>(rng() % 12) - 1;
    c.skinny_variant = static_cast<int32_t>(rng() % 37) - 1;
    c.swiglu_variant = static_cast<int32_t>(rng() % 9) - 1;
    out.push_back(c);
  }
  return out;
}

void write_text(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

TEST(GemmTuningFile, ChoicesRoundTripForTheSameIdentityAndNoTemporaryIsLeft) {
  TempDir t;
  const std::string path = (t.dir / "gemm.json").string();
  const auto choices = some_choices();
  write_gemm_tuning(path, h200(), choices);
  EXPECT_EQ(read_gemm_tuning(path, h200()), choices);
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(t.dir)) ++files;
  EXPECT_EQ(files, 1);
  write_gemm_tuning(path, h200(), {});  // rewritten in place
  EXPECT_TRUE(read_gemm_tuning(path, h200()).empty());
}

TEST(GemmTuningFile, AnotherDeviceOrLibraryIsIgnored) {
  TempDir t;
  const std::string path = (t.dir / "gemm.json").string();
  write_gemm_tuning(path, h200(), some_choices());
  for (GemmTuningIdentity other : {GemmTuningIdentity{"NVIDIA GB300", 103, 130001, 13000},
                                   GemmTuningIdentity{"NVIDIA H200", 90, 130100, 13000},
                                   GemmTuningIdentity{"NVIDIA H200", 90, 130001, 12080}})
    EXPECT_TRUE(read_gemm_tuning(path, other).empty()) << other.device << " " << other.cublaslt_version;
}

TEST(GemmTuningFile, MissingMalformedOrOutOfRangeFilesAreIgnored) {
  TempDir t;
  const fs::path p = t.dir / "gemm.json";
  EXPECT_TRUE(read_gemm_tuning(p.string(), h200()).empty());  // missing
  const std::string head =
      R"({"format": "tessera-gemm-tuning/1", "device": "NVIDIA H200", "compute_capability": 90,
          "cublaslt_version": 130001, "cuda_runtime_version": 13000, "choices": [)";
  const std::string good = R"({"path": 0, "m": 64, "n": 4096, "k": 4096, "out_f32": false, "cublas": 3, "gemv": -1, "skinny": -1})";
  write_text(p, head + good + "]}");
  ASSERT_EQ(read_gemm_tuning(p.string(), h200()).size(), 1u);  // the control: a good file is read
  EXPECT_EQ(read_gemm_tuning(p.string(), h200()).front().swiglu_variant, -1) << "a file from before 'swiglu'";
  const std::string swiglu = R"({"path": 3, "m": 4096, "n": 14336, "k": 4096, "out_f32": false, "cublas": 0, "gemv": -1, "skinny": -1, "swiglu": 7})";
  write_text(p, head + swiglu + "]}");
  ASSERT_EQ(read_gemm_tuning(p.string(), h200()).size(), 1u);
  EXPECT_EQ(read_gemm_tuning(p.string(), h200()).front().swiglu_variant, 7);
  for (const std::string& bad : {
           std::string("not json"), std::string("[1, 2]"), head + good,  // truncated
           head + R"({"path": 7, "m": 64, "n": 4096, "k": 4096, "out_f32": false, "cublas": 3, "gemv": -1, "skinny": -1}]})",
           head + R"({"path": 0, "m": 0, "n": 4096, "k": 4096, "out_f32": false, "cublas": 3, "gemv": -1, "skinny": -1}]})",
           head + R"({"path": 0, "m": 64, "n": 1073741824, "k": 4096, "out_f32": false, "cublas": 3, "gemv": -1, "skinny": -1}]})",
           head + R"({"path": 0, "m": 64, "n": 4096, "k": 4096, "out_f32": false, "cublas": -5, "gemv": -1, "skinny": -1}]})",
           head + R"({"path": 0, "m": 64, "n": 4096, "k": 4096, "out_f32": false, "cublas": 3, "gemv": -2, "skinny": -1}]})",
           head + R"({"path": 0, "m": 64, "n": 4096, "k": 4096, "out_f32": 1, "cublas": 3, "gemv": -1, "skinny": -1}]})",
           head + R"({"path": 0, "m": "64", "n": 4096, "k": 4096, "out_f32": false, "cublas": 3, "gemv": -1, "skinny": -1}]})",
           head + R"({"path": 0, "n": 4096, "k": 4096, "out_f32": false, "cublas": 3, "gemv": -1, "skinny": -1}]})",
           head + good + ", 5]}",
           head + R"({"path": 3, "m": 64, "n": 4096, "k": 4096, "out_f32": false, "cublas": 0, "gemv": -1, "skinny": -1, "swiglu": -2}]})",
           head + R"({"path": 3, "m": 64, "n": 4096, "k": 4096, "out_f32": false, "cublas": 0, "gemv": -1, "skinny": -1, "swiglu": "7"}]})",
           std::string(R"({"format": "something-else/1", "choices": []})"),
           std::string(17u << 20, ' '),  // larger than any cache
       }) {
    write_text(p, bad);
    EXPECT_TRUE(read_gemm_tuning(p.string(), h200()).empty()) << bad.substr(0, 160);
  }
}

// Random byte edits of a valid file (flips, truncations, insertions) never crash the reader, and
// whatever it accepts is within the documented ranges.
TEST(GemmTuningFile, MutatedFilesAreReadSafely) {
  TempDir t;
  const fs::path p = t.dir / "gemm.json";
  write_gemm_tuning(p.string(), h200(), some_choices());
  std::string good;
  {
    std::ifstream in(p, std::ios::binary);
    good.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::mt19937 rng(std::random_device{}());
  int accepted = 0;
  const auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::err);  // 400 "ignored" warnings say nothing new
  for (int round = 0; round < 400; ++round) {
    std::string text = good;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      const size_t at = rng() % text.size();
      switch (rng() % 3) {
        case 0: text[at] = static_cast<char>(rng() % 256); break;
        case 1: text.resize(at); break;
        default: text.insert(at, 1, "0123456789-,:{}[]\"e"[rng() % 19]); break;
      }
    }
    write_text(p, text);
    for (const cuda::GemmChoice& c : read_gemm_tuning(p.string(), h200())) {
      ++accepted;
      ASSERT_TRUE(static_cast<int32_t>(c.path) >= 0 && static_cast<int32_t>(c.path) <= 3);
      ASSERT_TRUE(c.m >= 1 && c.n >= 1 && c.k >= 1 && c.m <= (1 << 24) && c.n <= (1 << 24) && c.k <= (1 << 24));
      ASSERT_TRUE(c.cublas_index >= 0 && c.gemv_variant >= -1 && c.skinny_variant >= -1 && c.swiglu_variant >= -1);
    }
  }
  spdlog::set_level(level);
  RecordProperty("choices_accepted_from_mutated_files", accepted);
}

TEST(GemmTuningFile, AnUnwritablePathIsRefusedByName) {
  TempDir t;
  const std::string path = (t.dir / "no-such-dir" / "gemm.json").string();
  try {
    write_gemm_tuning(path, h200(), some_choices());
    FAIL() << "writing under a missing directory succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInternal);
    EXPECT_NE(std::string(e.what()).find("no-such-dir"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tessera
