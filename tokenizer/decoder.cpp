// Decoder implementations (see decoder.h).
#include "tokenizer/decoder.h"

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "tokenizer/byte_level_alphabet.h"
#include "tokenizer/text_pattern.h"
#include "common/utf8.h"

namespace tessera::tok {

namespace {

class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    const auto& alphabet = ByteLevelAlphabet::get();
    std::string bytes, tok_bytes;
    for (const auto& t : tokens) {
      // A token with any character outside the alphabet is taken as its raw bytes.
      tok_bytes.clear();
      bool all = true;
      for (size_t i = 0; i < t.size();) {
        size_t len = utf8_valid_len(t, i);
        int b = len ? alphabet.decode(utf8_decode_at(t, i)) : -1;
        if (b < 0) {
          all = false;
          break;
        }
        tok_bytes.push_back(static_cast<char>(b));
        i += len;
      }
      bytes.append(all ? tok_bytes : t);
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool prepend) : replacement_(std::move(replacement)), prepend_(prepend) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const auto& t = tokens[i];
      for (size_t p = 0; p < t.size();) {
        if (!replacement_.empty() && t.compare(p, replacement_.size(), replacement_) == 0) {
          // The first token loses every replacement character when a prefix was prepended.
          if (!(i == 0 && prepend_)) out.push_back(' ');
          p += replacement_.size();
        } else {
          out.push_back(t[p++]);
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  std::string replacement_;
  bool prepend_;
};

class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (!find_invalid_utf8(pending)) {
        out.push_back(pending);
      } else {
        for (size_t k = 0; k < pending.size(); ++k) out.emplace_back(kReplacementChar);
      }
      pending.clear();
    };
    for (auto& t : tokens) {
      int byte = parse_byte_token(t);
      if (byte >= 0) {
        pending.push_back(static_cast<char>(byte));
        continue;
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  // "<0xAB>" -> 0xAB; -1 otherwise.
  static int parse_byte_token(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
    int hi = hex(t[3]), lo = hex(t[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all.append(t);
    tokens.assign(1, std::move(all));
  }
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      // Work in characters: strip up to start_ leading and stop_ trailing `content_` characters.
      std::vector<size_t> starts;
      for (size_t i = 0; i < t.size(); i += utf8_char_len(static_cast<unsigned char>(t[i]))) starts.push_back(i);
      auto char_at = [&](size_t k) {
        size_t e = k + 1 < starts.size() ? starts[k + 1] : t.size();
        return std::string_view(t).substr(starts[k], e - starts[k]);
      };
      size_t n = starts.size(), cut_start = 0, cut_stop = n;
      for (size_t k = 0; k < start_ && k < n; ++k) {
        if (char_at(k) != content_) break;
        cut_start = k + 1;
      }
      for (size_t k = 0; k < stop_ && k < n; ++k) {
        size_t idx = n - k - 1;
        if (char_at(idx) != content_) break;
        cut_stop = idx;
      }
      if (cut_stop <= cut_start) {
        t.clear();
        continue;
      }
      size_t b = starts[cut_start], e = cut_stop < n ? starts[cut_stop] : t.size();
      t = t.substr(b, e - b);
    }
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(const nlohmann::json& pattern, std::string content) : pattern_(pattern), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) t = pattern_.replace_all(t, content_);
  }

 private:
  TextPattern pattern_;
  std::string content_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& p : parts_) p->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

size_t count_field(const nlohmann::json& c, const char* key) {
  if (!c.contains(key)) return 0;
  TS_CHECK(c[key].is_number_unsigned() || (c[key].is_number_integer() && c[key].get<int64_t>() >= 0), kDataLoss,
           "tokenizer Strip decoder field {:?} must be a non-negative integer: {}", key, c.dump());
  return c[key].get<size_t>();
}

}  // namespace

std::unique_ptr<Decoder> make_decoder(const nlohmann::json& c) {
  if (c.is_null()) return nullptr;
  TS_CHECK(c.is_object() && c.contains("type") && c["type"].is_string(), kDataLoss,
           "tokenizer decoder must be an object with a type, got {}", c.dump().substr(0, 200));
  const auto type = c["type"].get<std::string>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace") {
    bool prepend = true;
    if (c.contains("prepend_scheme") && c["prepend_scheme"].is_string())
      prepend = c["prepend_scheme"].get<std::string>() != "never";
    else
      prepend = c.value("add_prefix_space", true);
    return std::make_unique<MetaspaceDecoder>(c.value("replacement", std::string("\xE2\x96\x81")), prepend);
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    auto content = c.value("content", std::string(" "));
    TS_CHECK(utf8_valid_len(content, 0) == content.size() && !content.empty(), kDataLoss,
             "tokenizer Strip decoder content must be one character, got {:?}", content);
    return std::make_unique<StripDecoder>(content, count_field(c, "start"), count_field(c, "stop"));
  }
  if (type == "Replace") {
    TS_CHECK(c.contains("pattern") && c.contains("content") && c["content"].is_string(), kDataLoss,
             "tokenizer Replace decoder needs pattern and content: {}", c.dump());
    return std::make_unique<ReplaceDecoder>(c["pattern"], c["content"].get<std::string>());
  }
  if (type == "Sequence") {
    TS_CHECK(c.contains("decoders") && c["decoders"].is_array(), kDataLoss,
             "tokenizer Sequence decoder needs a decoders array: {}", c.dump().substr(0, 200));
    std::vector<std::unique_ptr<Decoder>> parts;
    for (const auto& p : c["decoders"]) {
      auto d = make_decoder(p);
      if (d) parts.push_back(std::move(d));
    }
    return std::make_unique<SequenceDecoder>(std::move(parts));
  }
  TS_THROW(kUnimplemented, "unsupported tokenizer decoder type {:?}", type);
}

}  // namespace tessera::tok
