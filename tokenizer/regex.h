// Regex: a compiled PCRE2 pattern (UTF + Unicode properties, JIT when available) used by the
// Split pre-tokenizer and Replace normalizer/decoder. Safe to use from many threads at once.
// It must never be handed unvalidated UTF-8 (callers validate input before matching).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::tok {

struct Match {
  size_t start;  // byte offset of the match in the subject
  size_t end;    // one past its last byte
};

class Regex {
 public:
  // Throws Error(kUnimplemented) naming the pattern and PCRE2's message when it does not compile.
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // All non-overlapping matches left to right; an empty match advances by one character.
  void find_all(std::string_view subject, std::vector<Match>& out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
  bool jit_ = false;
};

}  // namespace tessera::tok
