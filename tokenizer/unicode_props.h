// Unicode character classes the tokenizer components test, with Rust's char semantics
// (is_whitespace = White_Space property; is_numeric = general category Nd, Nl or No;
// is_alphanumeric = alphabetic or numeric). Backed by utf8proc. Pure functions.
#pragma once

namespace tessera::tok {

bool is_whitespace(char32_t cp);
bool is_numeric(char32_t cp);
bool is_alphanumeric(char32_t cp);

}  // namespace tessera::tok
