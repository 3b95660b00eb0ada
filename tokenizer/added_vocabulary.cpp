// Added-token extraction (see added_vocabulary.h).
#include "tokenizer/added_vocabulary.h"

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "tokenizer/unicode_props.h"
#include "common/utf8.h"

namespace tessera::tok {

namespace {

size_t prev_char_start(std::string_view s, size_t end) {
  size_t i = end - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

bool is_word_char(char32_t c) { return c == '_' || is_alphanumeric(c); }

bool ends_with_word(std::string_view s) { return !s.empty() && is_word_char(utf8_decode_at(s, prev_char_start(s, s.size()))); }
bool starts_with_word(std::string_view s) { return !s.empty() && is_word_char(utf8_decode_at(s, 0)); }

// Start of the run of whitespace that ends s (s.size() when none).
size_t trailing_space_start(std::string_view s) {
  size_t e = s.size();
  while (e > 0) {
    size_t b = prev_char_start(s, e);
    if (!is_whitespace(utf8_decode_at(s, b))) break;
    e = b;
  }
  return e;
}

// Length of the run of whitespace that begins s.
size_t leading_space_len(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && is_whitespace(utf8_decode_at(s, i))) i += utf8_char_len(static_cast<unsigned char>(s[i]));
  return i;
}

}  // namespace

void AddedVocabulary::Trie::add(std::string_view pattern, int32_t token_index) {
  if (terminal.empty()) terminal.push_back(-1);
  if (pattern.empty()) return;
  first_byte[static_cast<unsigned char>(pattern[0])] = true;
  int32_t node = 0;
  for (unsigned char b : pattern) {
    uint64_t key = (static_cast<uint64_t>(node) << 8) | b;
    const int32_t* next = edges.find(key);
    if (next) {
      node = *next;
    } else {
      int32_t created = static_cast<int32_t>(terminal.size());
      terminal.push_back(-1);
      edges.put(key, created);
      node = created;
    }
  }
  // The first token listed with a given content wins, as in tokenizers.
  if (terminal[node] < 0) terminal[node] = token_index;
}

void AddedVocabulary::Trie::find_all(std::string_view text,
                                     std::vector<std::tuple<size_t, size_t, int32_t>>& out) const {
  if (empty()) return;
  size_t i = 0;
  while (i < text.size()) {
    if (!first_byte[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    int32_t node = 0, best = -1;
    size_t best_end = 0;
    for (size_t j = i; j < text.size(); ++j) {
      const int32_t* next = edges.find((static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(text[j]));
      if (!next) break;
      node = *next;
      if (terminal[node] >= 0) {
        best = terminal[node];
        best_end = j + 1;
      }
    }
    if (best >= 0) {
      out.emplace_back(i, best_end, best);
      i = best_end;
    } else {
      ++i;
    }
  }
}

void AddedVocabulary::build(std::vector<AddedToken> tokens, const Normalizer* normalizer) {
  tokens_ = std::move(tokens);
  by_content_.clear();
  by_id_.clear();
  raw_trie_ = Trie();
  normalized_trie_ = Trie();
  raw_trie_.terminal.push_back(-1);
  normalized_trie_.terminal.push_back(-1);
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const auto& t = tokens_[i];
    by_content_.emplace(t.content, i);
    if (static_cast<size_t>(t.id) >= by_id_.size()) by_id_.resize(static_cast<size_t>(t.id) + 1, -1);
    by_id_[t.id] = static_cast<int32_t>(i);
    if (t.normalized) {
      std::string pattern = t.content;
      if (normalizer) normalizer->normalize(pattern);
      normalized_trie_.add(pattern, static_cast<int32_t>(i));
    } else {
      raw_trie_.add(t.content, static_cast<int32_t>(i));
    }
  }
}

const AddedToken* AddedVocabulary::find_by_id(TokenId id) const {
  if (id < 0 || static_cast<size_t>(id) >= by_id_.size() || by_id_[id] < 0) return nullptr;
  return &tokens_[by_id_[id]];
}

const AddedToken* AddedVocabulary::find_by_content(std::string_view content) const {
  auto it = by_content_.find(content);
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

void AddedVocabulary::split(std::string_view text, const Trie& trie, bool at_start, std::vector<InputPart>& out) const {
  std::vector<std::tuple<size_t, size_t, int32_t>> matches;
  trie.find_all(text, matches);
  size_t offset = 0;
  for (auto [start, stop, index] : matches) {
    const AddedToken& t = tokens_[index];
    if (t.single_word) {
      bool start_space = start == 0 || !ends_with_word(text.substr(0, start));
      bool stop_space = stop == text.size() || !starts_with_word(text.substr(stop));
      if (!start_space || !stop_space) continue;
    }
    if (t.lstrip) start = std::max(trailing_space_start(text.substr(0, start)), offset);
    if (t.rstrip) stop += leading_space_len(text.substr(stop));
    if (offset < start) out.push_back({-1, std::string(text.substr(offset, start - offset)), at_start && offset == 0});
    out.push_back({t.id, {}, false});
    offset = stop;
  }
  if (offset < text.size()) out.push_back({-1, std::string(text.substr(offset)), at_start && offset == 0});
}

void AddedVocabulary::extract(std::string_view text, const Normalizer* normalizer, std::vector<InputPart>& out) const {
  std::vector<InputPart> first;
  split(text, raw_trie_, true, first);
  for (auto& part : first) {
    if (part.token >= 0) {
      out.push_back(std::move(part));
      continue;
    }
    if (normalizer) normalizer->normalize(part.text);
    if (normalized_trie_.empty()) {
      if (!part.text.empty()) out.push_back(std::move(part));
      continue;
    }
    split(part.text, normalized_trie_, part.at_start, out);
  }
}

std::vector<AddedToken> parse_added_tokens(const nlohmann::json& array) {
  std::vector<AddedToken> out;
  if (array.is_null()) return out;
  TS_CHECK(array.is_array(), kDataLoss, "tokenizer added_tokens must be an array");
  for (const auto& a : array) {
    TS_CHECK(a.is_object() && a.contains("id") && a["id"].is_number_integer() && a.contains("content") &&
                 a["content"].is_string(),
             kDataLoss, "tokenizer added token must have an integer id and a string content, got {}",
             a.dump().substr(0, 200));
    AddedToken t;
    auto id = a["id"].get<int64_t>();
    TS_CHECK(id >= 0 && id < (int64_t{1} << 30), kDataLoss, "tokenizer added token {} has id {} out of range",
             a["content"].dump(), id);
    t.id = static_cast<TokenId>(id);
    t.content = a["content"].get<std::string>();
    TS_CHECK(!t.content.empty(), kDataLoss, "tokenizer added token {} has empty content", id);
    TS_CHECK(!find_invalid_utf8(t.content), kDataLoss, "tokenizer added token {} is not valid UTF-8", id);
    t.special = a.value("special", false);
    t.lstrip = a.value("lstrip", false);
    t.rstrip = a.value("rstrip", false);
    t.single_word = a.value("single_word", false);
    t.normalized = a.value("normalized", !t.special);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace tessera::tok
