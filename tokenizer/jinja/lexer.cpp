// The Jinja lexer (see lexer.h). Preprocessing keeps, for each byte it keeps, the byte's offset in
// the original source so that every token can name its original line.
#include "tokenizer/jinja/lexer.h"

#include "common/error.h"
#include "tokenizer/jinja/text.h"

#include <algorithm>
#include <array>

namespace tessera::jinja {

const char* tok_name(Tok t) {
  static constexpr std::array<const char*, 25> kNames = {
      "Text", "NumericLiteral", "StringLiteral", "Identifier", "Equals", "OpenParen", "CloseParen",
      "OpenStatement", "CloseStatement", "OpenExpression", "CloseExpression", "OpenSquareBracket",
      "CloseSquareBracket", "OpenCurlyBracket", "CloseCurlyBracket", "Comma", "Dot", "Colon", "Pipe",
      "AdditiveBinaryOperator", "MultiplicativeBinaryOperator", "ExponentiationBinaryOperator",
      "ComparisonBinaryOperator", "UnaryOperator", "Comment"};
  return kNames[static_cast<size_t>(t)];
}

namespace {

// Text with the original offset of each byte.
struct Mapped {
  std::string text;
  std::vector<size_t> origin;

  void push(const Mapped& from, size_t i) {
    text.push_back(from.text[i]);
    origin.push_back(from.origin[i]);
  }
};

bool is_line_start(const std::string& s, size_t i) {
  if (i == 0) return true;
  const char p = s[i - 1];
  if (p == '\n' || p == '\r') return true;
  // U+2028 / U+2029 (E2 80 A8 / E2 80 A9) also end lines for the /m flag.
  return i >= 3 && static_cast<unsigned char>(s[i - 3]) == 0xE2 && static_cast<unsigned char>(s[i - 2]) == 0x80 &&
         (static_cast<unsigned char>(s[i - 1]) == 0xA8 || static_cast<unsigned char>(s[i - 1]) == 0xA9);
}

// lstrip_blocks: /^[ \t]*({[#%-])/gm -> "$1".
Mapped lstrip_blocks(const Mapped& in) {
  Mapped out;
  const std::string& s = in.text;
  for (size_t i = 0; i < s.size();) {
    if (is_line_start(s, i)) {
      size_t j = i;
      while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
      if (j + 1 < s.size() && s[j] == '{' && (s[j + 1] == '#' || s[j + 1] == '%' || s[j + 1] == '-')) {
        out.push(in, j);
        out.push(in, j + 1);
        i = j + 2;
        continue;
      }
    }
    out.push(in, i++);
  }
  return out;
}

// trim_blocks: /([#%-]})\n/g -> "$1".
Mapped trim_blocks(const Mapped& in) {
  Mapped out;
  const std::string& s = in.text;
  for (size_t i = 0; i < s.size();) {
    if (i + 2 < s.size() && (s[i] == '#' || s[i] == '%' || s[i] == '-') && s[i + 1] == '}' && s[i + 2] == '\n') {
      out.push(in, i);
      out.push(in, i + 1);
      i += 3;
      continue;
    }
    out.push(in, i++);
  }
  return out;
}

size_t skip_spaces(const std::string& s, size_t i) {
  while (size_t n = js_space_len(s, i)) i += n;
  return i;
}

// Matches {%-? \s* (end)?generation \s* -?%} at i; returns the end or 0. Sets the two strip flags.
size_t match_generation_tag(const std::string& s, size_t i, bool& lstrip, bool& rstrip) {
  if (s.compare(i, 2, "{%") != 0) return 0;
  size_t j = i + 2;
  lstrip = j < s.size() && s[j] == '-';
  if (lstrip) ++j;
  j = skip_spaces(s, j);
  if (s.compare(j, 3, "end") == 0 && s.compare(j + 3, 10, "generation") == 0) j += 3;
  if (s.compare(j, 10, "generation") != 0) return 0;
  j = skip_spaces(s, j + 10);
  rstrip = j < s.size() && s[j] == '-';
  if (rstrip) ++j;
  if (s.compare(j, 2, "%}") != 0) return 0;
  return j + 2;
}

// /(\s*){%(-?)\s*(?:end)?generation\s*(-?)%}(\s*)/gs -> (lstrip ? "" : before) + (rstrip ? "" : after).
Mapped strip_generation_tags(const Mapped& in) {
  const std::string& s = in.text;
  if (s.find("generation") == std::string::npos) return in;
  Mapped out;
  size_t i = 0;
  while (i < s.size()) {
    // The leftmost match starts at a whitespace run ending at "{%" (or at "{%" itself).
    size_t ws_end = skip_spaces(s, i);
    bool lstrip = false, rstrip = false;
    const size_t tag_end = match_generation_tag(s, ws_end, lstrip, rstrip);
    if (tag_end == 0) {
      size_t len = 0;
      utf8_decode(s, i, len);
      for (size_t k = 0; k < len; ++k) out.push(in, i + k);
      i += len;
      continue;
    }
    if (!lstrip)
      for (size_t k = i; k < ws_end; ++k) out.push(in, k);
    const size_t after_end = skip_spaces(s, tag_end);
    if (!rstrip)
      for (size_t k = tag_end; k < after_end; ++k) out.push(in, k);
    i = after_end;
  }
  return out;
}

Mapped preprocess(const std::string& source) {
  Mapped m;
  m.text = source;
  m.origin.resize(source.size());
  for (size_t i = 0; i < source.size(); ++i) m.origin[i] = i;
  if (!m.text.empty() && m.text.back() == '\n') {
    m.text.pop_back();
    m.origin.pop_back();
  }
  return strip_generation_tags(trim_blocks(lstrip_blocks(m)));
}

bool is_word(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

struct MappingRule {
  const char* seq;
  Tok type;
};
constexpr MappingRule kRules[] = {
    {"{%", Tok::kOpenStatement}, {"%}", Tok::kCloseStatement}, {"{{", Tok::kOpenExpression},
    {"}}", Tok::kCloseExpression}, {"(", Tok::kOpenParen}, {")", Tok::kCloseParen}, {"{", Tok::kOpenCurly},
    {"}", Tok::kCloseCurly}, {"[", Tok::kOpenSquare}, {"]", Tok::kCloseSquare}, {",", Tok::kComma},
    {".", Tok::kDot}, {":", Tok::kColon}, {"|", Tok::kPipe}, {"<=", Tok::kComparison}, {">=", Tok::kComparison},
    {"==", Tok::kComparison}, {"!=", Tok::kComparison}, {"<", Tok::kComparison}, {">", Tok::kComparison},
    {"+", Tok::kAdditive}, {"-", Tok::kAdditive}, {"~", Tok::kAdditive}, {"**", Tok::kPower},
    {"*", Tok::kMultiplicative}, {"//", Tok::kMultiplicative}, {"/", Tok::kMultiplicative},
    {"%", Tok::kMultiplicative}, {"=", Tok::kEquals},
};

class Lexer {
 public:
  Lexer(const std::string& source) : src_(preprocess(source)), s_(src_.text) {
    for (size_t i = 0; i < source.size(); ++i)
      if (source[i] == '\n') newlines_.push_back(i);
  }

  std::vector<Token> run();

 private:
  int line_at(size_t pos) const {
    const size_t orig = pos < src_.origin.size() ? src_.origin[pos] : (src_.origin.empty() ? 0 : src_.origin.back());
    return 1 + static_cast<int>(std::lower_bound(newlines_.begin(), newlines_.end(), orig) - newlines_.begin());
  }
  [[noreturn]] void fail(const std::string& what) const {
    TS_THROW(kUnimplemented, "chat template line {}: {}", line_at(pos_), what);
  }
  char at(size_t i) const { return i < s_.size() ? s_[i] : '\0'; }
  bool starts(const char* seq) const { return s_.compare(pos_, std::char_traits<char>::length(seq), seq) == 0; }
  void push(Tok type, std::string value, size_t start) { tokens_.push_back(Token{type, std::move(value), line_at(start)}); }
  Tok last_type() const { return tokens_.empty() ? Tok::kText : tokens_.back().type; }

  template <typename Pred>
  std::string consume_while(Pred pred);
  void strip_trailing_whitespace();
  void skip_leading_whitespace() { pos_ = skip_spaces(s_, pos_); }
  bool lex_text();
  void lex_comment();
  bool lex_sign();
  std::string lex_string_body(char quote);

  Mapped src_;
  const std::string& s_;
  std::vector<size_t> newlines_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int curly_depth_ = 0;
};

template <typename Pred>
std::string Lexer::consume_while(Pred pred) {
  std::string out;
  while (pos_ < s_.size() && pred(s_[pos_])) {
    out.push_back(s_[pos_++]);
    if (pos_ >= s_.size()) fail("unexpected end of input");
  }
  return out;
}

std::string Lexer::lex_string_body(char quote) {
  std::string out;
  while (true) {
    if (pos_ >= s_.size()) fail("unexpected end of input inside a string literal");
    const char c = s_[pos_];
    if (c == quote) break;
    if (c != '\\') {
      out.push_back(c);
      if (++pos_ >= s_.size()) fail("unexpected end of input inside a string literal");
      continue;
    }
    if (++pos_ >= s_.size()) fail("unexpected end of input inside a string literal");
    const char e = s_[pos_++];
    if (e == 'x' || e == 'u') {
      const size_t n = e == 'x' ? 2 : 4;
      const std::string hex = s_.substr(pos_, n);
      const bool ok = hex.size() == n && std::all_of(hex.begin(), hex.end(), [](char h) { return std::isxdigit(static_cast<unsigned char>(h)); });
      if (!ok) fail(fmt::format("invalid hexadecimal escape sequence \\{}{}", e, hex));
      utf8_append(out, static_cast<char32_t>(std::stoul(hex, nullptr, 16)));
      pos_ += n;
      continue;
    }
    switch (e) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'v': out += '\v'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      default: fail(fmt::format("unexpected escaped character '{}'", e));
    }
  }
  return out;
}

void Lexer::strip_trailing_whitespace() {
  if (tokens_.empty() || tokens_.back().type != Tok::kText) return;
  tokens_.back().value = js_trim_end(tokens_.back().value);
  if (tokens_.back().value.empty()) tokens_.pop_back();
}

// Text outside tags; true when a Text token was pushed.
bool Lexer::lex_text() {
  const size_t start = pos_;
  while (pos_ < s_.size() && !(s_[pos_] == '{' && (at(pos_ + 1) == '%' || at(pos_ + 1) == '{' || at(pos_ + 1) == '#')))
    ++pos_;
  if (pos_ == start) return false;
  push(Tok::kText, s_.substr(start, pos_ - start), start);
  return true;
}

void Lexer::lex_comment() {
  const size_t start = pos_;
  pos_ += 2;
  const bool strip_before = at(pos_) == '-';
  if (strip_before) ++pos_;
  std::string comment;
  while (at(pos_) != '#' || at(pos_ + 1) != '}') {
    if (pos_ + 2 >= s_.size()) fail("missing end of comment tag");
    comment.push_back(s_[pos_++]);
  }
  const bool strip_after = !comment.empty() && comment.back() == '-';
  if (strip_after) comment.pop_back();
  if (strip_before) strip_trailing_whitespace();
  push(Tok::kComment, std::move(comment), start);
  pos_ += 2;
  if (strip_after) skip_leading_whitespace();
}

// A '-' or '+' that is a sign (not a binary operator); true when it was consumed.
bool Lexer::lex_sign() {
  const char c = s_[pos_];
  if (c != '-' && c != '+') return false;
  if (tokens_.empty() || last_type() == Tok::kText) fail(fmt::format("unexpected character '{}'", c));
  switch (last_type()) {
    case Tok::kIdentifier:
    case Tok::kNumber:
    case Tok::kString:
    case Tok::kCloseParen:
    case Tok::kCloseSquare: return false;
    default: break;
  }
  const size_t start = pos_++;
  std::string num = consume_while(is_digit);
  if (!num.empty() && at(pos_) == '.' && is_digit(at(pos_ + 1))) {
    ++pos_;
    num.push_back('.');
    num.append(consume_while(is_digit));
  }
  num.insert(num.begin(), c);
  const Tok type = num.size() == 1 ? Tok::kUnary : Tok::kNumber;
  push(type, std::move(num), start);
  return true;
}

std::vector<Token> Lexer::run() {
  while (pos_ < s_.size()) {
    const Tok last = last_type();
    if (tokens_.empty() || last == Tok::kCloseStatement || last == Tok::kCloseExpression || last == Tok::kComment) {
      if (lex_text()) continue;
    }
    if (s_[pos_] == '{' && at(pos_ + 1) == '#') {
      lex_comment();
      continue;
    }
    if (starts("{%-")) {
      strip_trailing_whitespace();
      push(Tok::kOpenStatement, "{%", pos_);
      pos_ += 3;
      continue;
    }
    if (starts("{{-")) {
      strip_trailing_whitespace();
      push(Tok::kOpenExpression, "{{", pos_);
      curly_depth_ = 0;
      pos_ += 3;
      continue;
    }
    if (const size_t after = skip_spaces(s_, pos_); after != pos_) {
      pos_ = after;
      if (pos_ >= s_.size()) fail("unexpected end of input");
    }
    if (starts("-%}")) {
      push(Tok::kCloseStatement, "%}", pos_);
      pos_ += 3;
      skip_leading_whitespace();
      continue;
    }
    if (starts("-}}")) {
      push(Tok::kCloseExpression, "}}", pos_);
      pos_ += 3;
      skip_leading_whitespace();
      continue;
    }
    if (pos_ >= s_.size()) break;
    if (lex_sign()) continue;
    bool matched = false;
    for (const auto& rule : kRules) {
      if (rule.type == Tok::kCloseExpression && curly_depth_ > 0) continue;
      if (!starts(rule.seq)) continue;
      push(rule.type, rule.seq, pos_);
      if (rule.type == Tok::kOpenExpression) curly_depth_ = 0;
      if (rule.type == Tok::kOpenCurly) ++curly_depth_;
      if (rule.type == Tok::kCloseCurly) --curly_depth_;
      pos_ += std::char_traits<char>::length(rule.seq);
      matched = true;
      break;
    }
    if (matched) continue;
    const char c = s_[pos_];
    const size_t start = pos_;
    if (c == '\'' || c == '"') {
      ++pos_;
      std::string body = lex_string_body(c);
      ++pos_;
      push(Tok::kString, std::move(body), start);
      continue;
    }
    if (is_digit(c)) {
      std::string num = consume_while(is_digit);
      if (last_type() != Tok::kDot && at(pos_) == '.' && is_digit(at(pos_ + 1))) {
        ++pos_;
        num.push_back('.');
    num.append(consume_while(is_digit));
      }
      push(Tok::kNumber, std::move(num), start);
      continue;
    }
    if (is_word(c)) {
      push(Tok::kIdentifier, consume_while(is_word), start);
      continue;
    }
    size_t len = 0;
    utf8_decode(s_, pos_, len);
    fail(fmt::format("unexpected character '{}'", s_.substr(pos_, len)));
  }
  return std::move(tokens_);
}

}  // namespace

std::vector<Token> tokenize(const std::string& source) {
  TS_CHECK(source.size() <= kMaxTemplateBytes, kUnimplemented, "chat template is {} bytes, over the limit of {}",
           source.size(), kMaxTemplateBytes);
  return Lexer(source).run();
}

}  // namespace tessera::jinja
