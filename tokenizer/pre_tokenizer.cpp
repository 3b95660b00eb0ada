// Pre-tokenizer implementations (see pre_tokenizer.h).
#include "tokenizer/pre_tokenizer.h"

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "tokenizer/byte_level_alphabet.h"
#include "tokenizer/split_behavior.h"
#include "tokenizer/text_pattern.h"
#include "tokenizer/unicode_props.h"
#include "common/utf8.h"

namespace tessera::tok {

namespace {

// GPT-2's pre-tokenization regex, used by ByteLevel when use_regex is true.
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string prepend(std::string_view head, const std::string& tail) {
  std::string out;
  out.reserve(head.size() + tail.size());
  out.append(head);
  out.append(tail);
  return out;
}

// Cuts each piece at `find`'s matches with `behavior`; `find(text, matches)` fills matches.
template <typename Find>
void split_pieces(std::vector<Piece>& pieces, bool invert, SplitBehavior behavior, Find&& find) {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 2);
  std::vector<Match> matches, ranges;
  std::vector<Segment> segs;
  for (auto& p : pieces) {
    matches.clear();
    ranges.clear();
    find(p.text, matches);
    segments_from_matches(p.text.size(), matches, invert, segs);
    apply_split_behavior(segs, behavior, ranges);
    if (ranges.size() == 1 && ranges[0].start == 0 && ranges[0].end == p.text.size()) {
      out.push_back(std::move(p));
      continue;
    }
    for (const auto& r : ranges) out.push_back({p.text.substr(r.start, r.end - r.start), p.at_start && r.start == 0});
  }
  pieces = std::move(out);
}

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(const nlohmann::json& pattern, SplitBehavior behavior, bool invert)
      : pattern_(pattern), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    split_pieces(pieces, invert_, behavior_,
                 [this](const std::string& t, std::vector<Match>& m) { pattern_.find_all(t, m); });
  }

 private:
  TextPattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), regex_(use_regex ? std::make_unique<Regex>(kGpt2Pattern) : nullptr) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    if (add_prefix_space_) {
      for (auto& p : pieces)
        if (p.text.empty() || p.text[0] != ' ') p.text = prepend(" ", p.text);
    }
    if (regex_) {
      split_pieces(pieces, false, SplitBehavior::kIsolated,
                   [this](const std::string& t, std::vector<Match>& m) { regex_->find_all(t, m); });
    }
    const auto& alphabet = ByteLevelAlphabet::get();
    std::string mapped;
    for (auto& p : pieces) {
      mapped.clear();
      alphabet.encode_append(p.text, mapped);
      p.text.swap(mapped);
    }
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (auto& p : pieces) {
      std::string r;
      r.reserve(p.text.size() + replacement_.size());
      for (char c : p.text) {
        if (c == ' ')
          r.append(replacement_);
        else
          r.push_back(c);
      }
      bool starts = r.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && p.at_start)))
        r = prepend(replacement_, r);
      p.text = std::move(r);
    }
    if (!split_) return;
    split_pieces(pieces, false, SplitBehavior::kMergedWithNext, [this](const std::string& t, std::vector<Match>& m) {
      size_t pos = 0;
      while ((pos = t.find(replacement_, pos)) != std::string::npos) {
        m.push_back({pos, pos + replacement_.size()});
        pos += replacement_.size();
      }
    });
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

class DigitsPreTokenizer final : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual) : individual_(individual) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    split_pieces(pieces, false, individual_ ? SplitBehavior::kIsolated : SplitBehavior::kContiguous,
                 [](const std::string& t, std::vector<Match>& m) {
                   for (size_t i = 0; i < t.size();) {
                     size_t len = utf8_char_len(static_cast<unsigned char>(t[i]));
                     if (is_numeric(utf8_decode_at(t, i))) m.push_back({i, i + len});
                     i += len;
                   }
                 });
  }

 private:
  bool individual_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& p : parts_) p->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

PrependScheme parse_prepend_scheme(const nlohmann::json& c) {
  if (c.contains("prepend_scheme") && c["prepend_scheme"].is_string()) {
    auto s = c["prepend_scheme"].get<std::string>();
    if (s == "always") return PrependScheme::kAlways;
    if (s == "first") return PrependScheme::kFirst;
    if (s == "never") return PrependScheme::kNever;
    TS_THROW(kUnimplemented, "unsupported Metaspace prepend_scheme {:?}", s);
  }
  return c.value("add_prefix_space", true) ? PrependScheme::kAlways : PrependScheme::kNever;
}

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& c) {
  if (c.is_null()) return nullptr;
  TS_CHECK(c.is_object() && c.contains("type") && c["type"].is_string(), kDataLoss,
           "tokenizer pre_tokenizer must be an object with a type, got {}", c.dump().substr(0, 200));
  const auto type = c["type"].get<std::string>();
  if (type == "Split") {
    TS_CHECK(c.contains("pattern"), kDataLoss, "tokenizer Split pre_tokenizer lacks a pattern: {}", c.dump());
    return std::make_unique<SplitPreTokenizer>(c["pattern"], parse_split_behavior(c.value("behavior", "Isolated")),
                                               c.value("invert", false));
  }
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelPreTokenizer>(c.value("add_prefix_space", true), c.value("use_regex", true));
  if (type == "Metaspace")
    return std::make_unique<MetaspacePreTokenizer>(c.value("replacement", std::string("\xE2\x96\x81")),
                                                   parse_prepend_scheme(c), c.value("split", true));
  if (type == "Digits") return std::make_unique<DigitsPreTokenizer>(c.value("individual_digits", false));
  if (type == "Sequence") {
    TS_CHECK(c.contains("pretokenizers") && c["pretokenizers"].is_array(), kDataLoss,
             "tokenizer Sequence pre_tokenizer needs a pretokenizers array: {}", c.dump().substr(0, 200));
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (const auto& p : c["pretokenizers"]) {
      auto pt = make_pre_tokenizer(p);
      if (pt) parts.push_back(std::move(pt));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(parts));
  }
  TS_THROW(kUnimplemented, "unsupported tokenizer pre_tokenizer type {:?}", type);
}

}  // namespace tessera::tok
