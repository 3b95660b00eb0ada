// String / Regex patterns of tokenizer.json (see text_pattern.h).
#include "tokenizer/text_pattern.h"

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace tessera::tok {

TextPattern::TextPattern(const nlohmann::json& pattern) {
  TS_CHECK(pattern.is_object(), kDataLoss, "tokenizer pattern must be an object, got {}", pattern.dump());
  if (pattern.contains("String") && pattern["String"].is_string()) {
    literal_ = pattern["String"].get<std::string>();
  } else if (pattern.contains("Regex") && pattern["Regex"].is_string()) {
    regex_ = std::make_unique<Regex>(pattern["Regex"].get<std::string>());
  } else {
    TS_THROW(kDataLoss, "tokenizer pattern must hold String or Regex, got {}", pattern.dump());
  }
}

void TextPattern::find_all(std::string_view subject, std::vector<Match>& out) const {
  if (regex_) {
    regex_->find_all(subject, out);
    return;
  }
  if (literal_.empty()) return;
  size_t pos = 0;
  while ((pos = subject.find(literal_, pos)) != std::string_view::npos) {
    out.push_back({pos, pos + literal_.size()});
    pos += literal_.size();
  }
}

std::string TextPattern::replace_all(std::string_view subject, std::string_view content) const {
  std::vector<Match> matches;
  find_all(subject, matches);
  if (matches.empty()) return std::string(subject);
  std::string out;
  out.reserve(subject.size() + matches.size() * content.size());
  size_t prev = 0;
  for (const auto& m : matches) {
    out.append(subject.substr(prev, m.start - prev));
    out.append(content);
    prev = m.end;
  }
  out.append(subject.substr(prev));
  return out;
}

}  // namespace tessera::tok
