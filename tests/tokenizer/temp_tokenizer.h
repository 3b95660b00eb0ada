// Writes a tokenizer.json into a fresh temporary directory and loads it through the real loader,
// for tests of components the four real tokenizers do not use. Removed on destruction.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "tokenizer/tokenizer.h"

namespace tessera::test {

class TempTokenizer {
 public:
  explicit TempTokenizer(const std::string& tokenizer_json) {
    static int counter = 0;
    dir_ = std::filesystem::temp_directory_path() /
           ("tessera_tmptok_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / "tokenizer.json") << tokenizer_json;
    tokenizer_ = Tokenizer::from_directory(dir_);
  }
  ~TempTokenizer() { std::filesystem::remove_all(dir_); }
  const Tokenizer& operator*() const { return *tokenizer_; }
  const Tokenizer* operator->() const { return tokenizer_.get(); }
  std::shared_ptr<const Tokenizer> shared() const { return tokenizer_; }

 private:
  std::filesystem::path dir_;
  std::shared_ptr<Tokenizer> tokenizer_;
};

}  // namespace tessera::test
