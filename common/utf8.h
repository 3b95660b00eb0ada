// UTF-8 for every part that handles text (request validation, tokenizer, chat templates): validation
// with the offending byte offset (RFC 3629: no overlongs, surrogates or code points above U+10FFFF),
// code point iteration, and lossy decoding that replaces ill-formed subsequences exactly as Rust's
// from_utf8_lossy does. It must never read past the end of its input, allocate while validating, or
// accept an ill-formed sequence as valid.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tessera {

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 when it is ill-formed there.
size_t utf8_valid_len(std::string_view s, size_t i);

// Byte offset of the first ill-formed byte, or nullopt when the whole string is valid UTF-8.
std::optional<size_t> find_invalid_utf8(std::string_view s);

// Length of the (valid) UTF-8 character starting with byte b.
inline size_t utf8_char_len(unsigned char b) {
  if (b < 0x80) return 1;
  if (b < 0xE0) return 2;
  if (b < 0xF0) return 3;
  return 4;
}

// Decodes the valid character at s[i] (caller validated the string).
char32_t utf8_decode_at(std::string_view s, size_t i);

// Decodes the character at s[i] of unvalidated text: its code point and byte length, or U+FFFD and
// length 1 where the bytes there are ill-formed.
char32_t utf8_decode(std::string_view s, size_t i, size_t& len);

// Appends cp's encoding; surrogates and values above U+10FFFF are written as U+FFFD.
void utf8_append(std::string& out, char32_t cp);

// Replaces each maximal ill-formed subpart with U+FFFD (WHATWG / Rust from_utf8_lossy policy).
std::string utf8_lossy(std::string_view bytes);

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

}  // namespace tessera
