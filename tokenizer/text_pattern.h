// TextPattern: the {"String": ...} or {"Regex": ...} pattern object of tokenizer.json's Replace and
// Split components, matched over a whole string. It must never match across invalid UTF-8.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/regex.h"

namespace tessera::tok {

class TextPattern {
 public:
  // Throws Error(kDataLoss) when the object is neither form.
  explicit TextPattern(const nlohmann::json& pattern);
  void find_all(std::string_view subject, std::vector<Match>& out) const;
  // Replaces every match with `content`.
  std::string replace_all(std::string_view subject, std::string_view content) const;

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
};

}  // namespace tessera::tok
