// Text helpers: code points, JavaScript whitespace and case mapping (utf8proc for non-ASCII).
#include "tokenizer/jinja/text.h"

#include <utf8proc.h>

#include "common/utf8.h"

namespace tessera::jinja {

std::vector<std::string> split_code_points(std::string_view s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    utf8_decode(s, i, len);
    out.emplace_back(s.substr(i, len));
    i += len;
  }
  return out;
}

bool is_js_space(char32_t cp) {
  switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0xA0: case 0x1680:
    case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000: case 0xFEFF:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

size_t js_space_len(std::string_view s, size_t i) {
  if (i >= s.size()) return 0;
  size_t len = 0;
  const char32_t cp = utf8_decode(s, i, len);
  return is_js_space(cp) ? len : 0;
}

std::string js_trim_start(std::string_view s) {
  size_t i = 0;
  while (size_t n = js_space_len(s, i)) i += n;
  return std::string(s.substr(i));
}

std::string js_trim_end(std::string_view s) {
  size_t end = 0;  // one past the last non-space code point
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    const char32_t cp = utf8_decode(s, i, len);
    i += len;
    if (!is_js_space(cp)) end = i;
  }
  return std::string(s.substr(0, end));
}

std::string js_trim(std::string_view s) { return js_trim_end(js_trim_start(s)); }

size_t utf16_length(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    const char32_t cp = utf8_decode(s, i, len);
    n += cp >= 0x10000 ? 2 : 1;
    i += len;
  }
  return n;
}

namespace {
template <typename Map>
std::string map_case(std::string_view s, Map map) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    const char32_t cp = utf8_decode(s, i, len);
    utf8_append(out, static_cast<char32_t>(map(static_cast<utf8proc_int32_t>(cp))));
    i += len;
  }
  return out;
}
}  // namespace

namespace {
// The one-to-many upper-case mappings of Unicode SpecialCasing.txt that String#toUpperCase applies
// and utf8proc's simple mapping lacks (the common ones: sharp s, ligatures, n-apostrophe).
const char* special_upper(char32_t cp) {
  switch (cp) {
    case 0x00DF: return "SS";
    case 0x0149: return "\u02BCN";
    case 0x01F0: return "J\u030C";
    case 0x0587: return "\u0535\u0552";
    case 0xFB00: return "FF";
    case 0xFB01: return "FI";
    case 0xFB02: return "FL";
    case 0xFB03: return "FFI";
    case 0xFB04: return "FFL";
    case 0xFB05:
    case 0xFB06: return "ST";
    default: return nullptr;
  }
}
}  // namespace

std::string to_upper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    const char32_t cp = utf8_decode(s, i, len);
    i += len;
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp >= 'a' && cp <= 'z' ? cp - 32 : cp));
    } else if (const char* special = special_upper(cp)) {
      out += special;
    } else {
      utf8_append(out, static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(cp))));
    }
  }
  return out;
}

std::string to_lower(std::string_view s) {
  return map_case(s, [](utf8proc_int32_t c) {
    return c < 0x80 ? (c >= 'A' && c <= 'Z' ? c + 32 : c) : utf8proc_tolower(c);
  });
}

}  // namespace tessera::jinja
