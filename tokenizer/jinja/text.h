// Text helpers for the Jinja interpreter: code points (UTF-8 itself is common/utf8.h) and the JavaScript string semantics that
// @huggingface/jinja exposes (whitespace set of String.prototype.trim, UTF-16 length, case mapping).
// It must never read past the end of a string or throw on malformed UTF-8 (bad bytes count as U+FFFD).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/utf8.h"

namespace tessera::jinja {

// Splits into code points, each kept as its UTF-8 bytes.
std::vector<std::string> split_code_points(std::string_view s);

// JavaScript WhiteSpace + LineTerminator (the set of /\s/ and String.prototype.trim).
bool is_js_space(char32_t cp);
// Bytes of JS whitespace starting at s[i] (0 when none).
size_t js_space_len(std::string_view s, size_t i);
std::string js_trim_start(std::string_view s);
std::string js_trim_end(std::string_view s);
std::string js_trim(std::string_view s);

// String.prototype.length: UTF-16 code units.
size_t utf16_length(std::string_view s);

std::string to_upper(std::string_view s);
std::string to_lower(std::string_view s);

}  // namespace tessera::jinja
