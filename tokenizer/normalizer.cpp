// Normalizer implementations (see normalizer.h).
#include "tokenizer/normalizer.h"

#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include <cstdlib>
#include <vector>

#include "common/error.h"
#include "tokenizer/text_pattern.h"
#include "tokenizer/unicode_props.h"
#include "common/utf8.h"

namespace tessera::tok {

namespace {

// True when `cp` may change under NFC or change its neighbour: a non-zero combining class, the second
// half of a canonical composition, a Hangul vowel/trailing jamo, or a canonical decomposition that
// NFC does not recompose to cp itself (singletons, non-starter decompositions, exclusions). Primary
// composites such as U+00E9 are stable. Everything below U+0300 is stable.
bool compute_may_change(char32_t cp) {
  if (cp < 0x300) return false;
  if (cp >= 0x1161 && cp <= 0x11C2) return true;
  const auto* p = utf8proc_get_property(static_cast<utf8proc_int32_t>(cp));
  if (p->combining_class != 0) return true;
  if (p->comb_index != UINT16_MAX && p->comb_index >= 0x8000) return true;
  if (p->decomp_seqindex == UINT16_MAX || p->decomp_type != 0) return false;  // no canonical decomposition
  if (p->comp_exclusion) return true;
  utf8proc_int32_t decomposed[8];
  int bound = 0;
  auto n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), decomposed, 8,
                                   static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE), &bound);
  if (n <= 1) return true;  // a singleton decomposition never recomposes
  return utf8proc_get_property(decomposed[0])->combining_class != 0;
}

bool may_change_under_canonical(char32_t cp) {
  static const std::vector<bool> bmp = [] {
    std::vector<bool> t(0x10000);
    for (char32_t c = 0; c < 0x10000; ++c) t[c] = !(c >= 0xD800 && c <= 0xDFFF) && compute_may_change(c);
    return t;
  }();
  return cp < 0x10000 ? bmp[cp] : compute_may_change(cp);
}

// A quick check: the text is certainly unchanged by NFC/NFD when no character may change (NFD also
// needs no precomposed characters, which have canonical decompositions; below U+0300 only ASCII is
// safe for NFD, so NFD and the compatibility forms only skip pure ASCII).
bool certainly_stable(const std::string& s, bool canonical_compose) {
  size_t i = 0;
  for (; i < s.size(); ++i)
    if (static_cast<unsigned char>(s[i]) >= 0x80) break;
  if (i == s.size()) return true;
  if (!canonical_compose) return false;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    if (may_change_under_canonical(utf8_decode_at(s, i))) return false;
    i += utf8_char_len(b);
  }
  return true;
}

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(int options) : options_(options) {}
  void normalize(std::string& text) const override {
    if (certainly_stable(text, options_ == UTF8PROC_COMPOSE)) return;
    utf8proc_uint8_t* out = nullptr;
    auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                          static_cast<utf8proc_ssize_t>(text.size()), &out,
                          static_cast<utf8proc_option_t>(options_ | UTF8PROC_STABLE));
    if (n < 0) {
      std::free(out);
      TS_THROW(kInvalidArgument, "unicode normalization failed: {}", utf8proc_errmsg(n));
    }
    text.assign(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
    std::free(out);
  }

 private:
  int options_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(const nlohmann::json& pattern, std::string content)
      : pattern_(pattern), content_(std::move(content)) {}
  void normalize(std::string& text) const override { text = pattern_.replace_all(text, content_); }

 private:
  TextPattern pattern_;
  std::string content_;
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prepend) : prepend_(std::move(prepend)) {}
  void normalize(std::string& text) const override {
    if (text.empty()) return;
    std::string out;
    out.reserve(prepend_.size() + text.size());
    out.append(prepend_);
    out.append(text);
    text.swap(out);
  }

 private:
  std::string prepend_;
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& text) const override {
    size_t b = 0, e = text.size();
    if (left_) {
      while (b < e) {
        size_t len = utf8_char_len(static_cast<unsigned char>(text[b]));
        if (!is_whitespace(utf8_decode_at(text, b))) break;
        b += len;
      }
    }
    if (right_) {
      while (e > b) {
        size_t s = e - 1;
        while (s > b && (static_cast<unsigned char>(text[s]) & 0xC0) == 0x80) --s;
        if (!is_whitespace(utf8_decode_at(text, s))) break;
        e = s;
      }
    }
    text = text.substr(b, e - b);
  }

 private:
  bool left_, right_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  void normalize(std::string& text) const override {
    for (const auto& p : parts_) p->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

std::string str_field(const nlohmann::json& c, const char* key) {
  TS_CHECK(c.contains(key) && c[key].is_string(), kDataLoss, "tokenizer normalizer {} needs string field {:?}: {}",
           c.value("type", "?"), key, c.dump());
  return c[key].get<std::string>();
}

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& c) {
  if (c.is_null()) return nullptr;
  TS_CHECK(c.is_object() && c.contains("type") && c["type"].is_string(), kDataLoss,
           "tokenizer normalizer must be an object with a type, got {}", c.dump().substr(0, 200));
  const auto type = c["type"].get<std::string>();
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(UTF8PROC_COMPOSE);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(UTF8PROC_DECOMPOSE);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  if (type == "Replace") {
    TS_CHECK(c.contains("pattern"), kDataLoss, "tokenizer Replace normalizer lacks a pattern: {}", c.dump());
    return std::make_unique<ReplaceNormalizer>(c["pattern"], str_field(c, "content"));
  }
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(str_field(c, "prepend"));
  if (type == "Strip") return std::make_unique<StripNormalizer>(c.value("strip_left", true), c.value("strip_right", true));
  if (type == "Sequence") {
    TS_CHECK(c.contains("normalizers") && c["normalizers"].is_array(), kDataLoss,
             "tokenizer Sequence normalizer needs a normalizers array: {}", c.dump().substr(0, 200));
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (const auto& p : c["normalizers"]) {
      auto n = make_normalizer(p);
      if (n) parts.push_back(std::move(n));
    }
    return std::make_unique<SequenceNormalizer>(std::move(parts));
  }
  TS_THROW(kUnimplemented, "unsupported tokenizer normalizer type {:?}", type);
}

}  // namespace tessera::tok
