// Loading tokenizer.json / tokenizer_config.json: config fields of the real files, and clear errors
// (kNotFound, kDataLoss, kUnimplemented naming the component) for missing, corrupt or unsupported files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "tests/tokenizer/real_tokenizers.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("tessera_tok_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  void write(const std::string& name, const std::string& text) const { std::ofstream(path_ / name) << text; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

// A tiny but complete BPE tokenizer.json whose `component` slot can be replaced.
std::string tiny_tokenizer(const std::string& slot, const std::string& value) {
  std::string normalizer = slot == "normalizer" ? value : "null";
  std::string pre = slot == "pre_tokenizer" ? value : "null";
  std::string post = slot == "post_processor" ? value : "null";
  std::string decoder = slot == "decoder" ? value : "null";
  std::string model = slot == "model" ? value
                                      : R"({"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]})";
  return R"({"added_tokens":[],"normalizer":)" + normalizer + R"(,"pre_tokenizer":)" + pre +
         R"(,"post_processor":)" + post + R"(,"decoder":)" + decoder + R"(,"model":)" + model + "}";
}

ErrorCode load_error(const TempDir& dir, std::string* message = nullptr) {
  try {
    Tokenizer::from_directory(dir.path());
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  ADD_FAILURE() << "loading succeeded";
  return ErrorCode::kInternal;
}

TEST(TokenizerLoad, RealConfigsGiveBosEosAndTemplates) {
  auto qwen = test::real_tokenizer("qwen3");
  EXPECT_FALSE(qwen->bos_token_id().has_value());
  EXPECT_EQ(qwen->eos_token(), "<|im_end|>");
  EXPECT_EQ(qwen->eos_token_id(), 151645);
  EXPECT_TRUE(qwen->chat_template_source().has_value());
  EXPECT_TRUE(qwen->is_special(151644));
  EXPECT_FALSE(qwen->is_special(151657));  // <tool_call> is added but not special
  EXPECT_EQ(qwen->vocab_size(), 151669u);

  auto llama2 = test::real_tokenizer("llama2");
  EXPECT_EQ(llama2->bos_token_id(), 1);
  EXPECT_EQ(llama2->eos_token_id(), 2);
  EXPECT_EQ(llama2->token_to_id("<0x0A>"), 13);

  auto deepseek = test::real_tokenizer("deepseek_v3");  // bos/eos given as AddedToken objects
  EXPECT_EQ(deepseek->bos_token_id(), 0);
  EXPECT_EQ(deepseek->eos_token_id(), 1);
  EXPECT_EQ(deepseek->id_to_token(1), "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>");

  auto llama3 = test::real_tokenizer("llama3");
  EXPECT_EQ(llama3->bos_token(), "<|begin_of_text|>");
  EXPECT_EQ(llama3->bos_token_id(), 128000);
  EXPECT_FALSE(llama3->id_to_token(999999).has_value());
}

TEST(TokenizerLoad, MissingDirectoryIsNotFound) {
  TempDir dir;
  std::string msg;
  EXPECT_EQ(load_error(dir, &msg), ErrorCode::kNotFound);
  EXPECT_NE(msg.find("tokenizer.json"), std::string::npos) << msg;
}

TEST(TokenizerLoad, CorruptJsonIsDataLoss) {
  TempDir dir;
  dir.write("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {");
  EXPECT_EQ(load_error(dir), ErrorCode::kDataLoss);
  dir.write("tokenizer.json", tiny_tokenizer("model", R"({"type":"BPE","vocab":{"a":0},"merges":["a b"]})"));
  std::string msg;
  EXPECT_EQ(load_error(dir, &msg), ErrorCode::kDataLoss);
  EXPECT_NE(msg.find("merge #0"), std::string::npos) << msg;
  dir.write("tokenizer.json", tiny_tokenizer("model", R"({"type":"BPE","vocab":{"a":-4},"merges":[]})"));
  EXPECT_EQ(load_error(dir), ErrorCode::kDataLoss);
}

TEST(TokenizerLoad, UnknownComponentsAreUnimplementedAndNamed) {
  const std::pair<std::string, std::string> cases[] = {
      {"normalizer", R"({"type":"BertNormalizer"})"},
      {"pre_tokenizer", R"({"type":"Whitespace"})"},
      {"post_processor", R"({"type":"Frobnicate"})"},
      {"decoder", R"({"type":"WordPiece","prefix":"##"})"},
      {"model", R"({"type":"Unigram","vocab":[]})"},
  };
  for (const auto& [slot, value] : cases) {
    TempDir dir;
    dir.write("tokenizer.json", tiny_tokenizer(slot, value));
    std::string msg;
    EXPECT_EQ(load_error(dir, &msg), ErrorCode::kUnimplemented) << slot;
    auto type_start = value.find(":\"") + 2;
    auto type = value.substr(type_start, value.find('"', type_start) - type_start);
    EXPECT_NE(msg.find(type), std::string::npos) << msg;
  }
}

TEST(TokenizerLoad, BadRegexIsRejectedAtLoad) {
  TempDir dir;
  dir.write("tokenizer.json",
            tiny_tokenizer("pre_tokenizer", R"({"type":"Split","pattern":{"Regex":"(a"},"behavior":"Isolated"})"));
  std::string msg;
  EXPECT_EQ(load_error(dir, &msg), ErrorCode::kUnimplemented);
  EXPECT_NE(msg.find("(a"), std::string::npos) << msg;
}

TEST(TokenizerLoad, WorksWithOnlyTokenizerJson) {
  TempDir dir;
  dir.write("tokenizer.json", tiny_tokenizer("", ""));
  auto tok = Tokenizer::from_directory(dir.path());
  EXPECT_EQ(tok->encode("abab"), (std::vector<TokenId>{2, 2}));
  EXPECT_FALSE(tok->bos_token_id().has_value());
  EXPECT_FALSE(tok->chat_template_source().has_value());
}

}  // namespace
}  // namespace tessera
