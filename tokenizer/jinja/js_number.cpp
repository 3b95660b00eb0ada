// JavaScript number formatting and parsing, locale-independent (std::to_chars / std::from_chars).
#include "tokenizer/jinja/js_number.h"

#include "tokenizer/jinja/text.h"

#include <charconv>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace tessera::jinja {

std::string js_number_to_string(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  if (v == 0) return "0";
  const char* sign = v < 0 ? "-" : "";
  v = std::fabs(v);
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // d[.ddd]e[+-]XX
  const size_t epos = sci.find('e');
  std::string digits;
  for (size_t i = 0; i < epos; ++i)
    if (sci[i] != '.') digits.push_back(sci[i]);
  const int exp10 = std::stoi(sci.substr(epos + 1));
  const int k = static_cast<int>(digits.size());
  const int n = exp10 + 1;  // decimal point position
  std::string out = sign;
  if (k <= n && n <= 21) {
    out.append(digits).append(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out.append(digits, 0, static_cast<size_t>(n)).append(1, '.').append(digits, static_cast<size_t>(n));
  } else if (-6 < n && n <= 0) {
    out.append("0.").append(static_cast<size_t>(-n), '0').append(digits);
  } else {
    out.append(digits, 0, 1);
    if (k > 1) out.append(1, '.').append(digits, 1);
    out.append(fmt::format("e{}{}", n - 1 >= 0 ? "+" : "-", std::abs(n - 1)));
  }
  return out;
}

std::string js_float_to_string(double v) {
  if (v == 0 && std::signbit(v)) return "-0.0";
  if (std::isfinite(v) && std::fmod(v, 1.0) == 0) {
    if (std::fabs(v) >= 1e21) return js_number_to_string(v);
    return fmt::format("{:.1f}", v);
  }
  return js_number_to_string(v);
}

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Longest StrDecimalLiteral prefix of s (after the sign): digits[.digits][e[+-]digits] or Infinity.
size_t decimal_prefix(std::string_view s, size_t i) {
  if (s.substr(i, 8) == "Infinity") return i + 8;
  const size_t start = i;
  size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && is_digit(s[i])) ++i, ++int_digits;
  if (i < s.size() && s[i] == '.') {
    size_t j = i + 1;
    while (j < s.size() && is_digit(s[j])) ++j, ++frac_digits;
    if (int_digits + frac_digits > 0) i = j;
  }
  if (int_digits + frac_digits == 0) return start;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    const size_t digits_at = j;
    while (j < s.size() && is_digit(s[j])) ++j;
    if (j > digits_at) i = j;
  }
  return i;
}

double parse_decimal(std::string_view s) {
  if (s == "Infinity") return std::numeric_limits<double>::infinity();
  double v = 0;
  std::string tmp(s);
  if (!tmp.empty() && tmp[0] == '.') tmp.insert(tmp.begin(), '0');
  auto r = std::from_chars(tmp.data(), tmp.data() + tmp.size(), v);
  if (r.ec == std::errc::result_out_of_range) {
    // from_chars reports overflow/underflow; JS gives Infinity or 0.
    const auto e = tmp.find_first_of("eE");
    const bool neg_exp = e != std::string::npos && e + 1 < tmp.size() && tmp[e + 1] == '-';
    return neg_exp ? 0.0 : std::numeric_limits<double>::infinity();
  }
  return v;
}
}  // namespace

double js_parse_int(std::string_view s) {
  const std::string t = js_trim_start(s);
  size_t i = 0;
  double sign = 1;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) sign = t[i++] == '-' ? -1 : 1;
  const size_t start = i;
  while (i < t.size() && is_digit(t[i])) ++i;
  if (i == start) return kNaN;
  return sign * parse_decimal(std::string_view(t).substr(start, i - start));
}

double js_parse_float(std::string_view s) {
  const std::string t = js_trim_start(s);
  size_t i = 0;
  double sign = 1;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) sign = t[i++] == '-' ? -1 : 1;
  const size_t end = decimal_prefix(t, i);
  if (end == i) return kNaN;
  return sign * parse_decimal(std::string_view(t).substr(i, end - i));
}

double js_string_to_number(std::string_view s) {
  const std::string t = js_trim(s);
  if (t.empty()) return 0;
  size_t i = 0;
  double sign = 1;
  if (t[0] == '+' || t[0] == '-') sign = t[i++] == '-' ? -1 : 1;
  if (sign == 1 && i == 0 && t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
    double v = 0;
    for (size_t j = 2; j < t.size(); ++j) {
      const char c = t[j];
      int d = is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
      if (d < 0) return kNaN;
      v = v * 16 + d;
    }
    return v;
  }
  const size_t end = decimal_prefix(t, i);
  if (end == i || end != t.size()) return kNaN;
  return sign * parse_decimal(std::string_view(t).substr(i, end - i));
}

}  // namespace tessera::jinja
