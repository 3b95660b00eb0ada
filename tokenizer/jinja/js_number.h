// JavaScript number semantics that @huggingface/jinja leaks into rendered text: Number#toString,
// Number#toFixed(1) for integral floats, parseInt/parseFloat and the string-to-number coercion of ==.
// It must never depend on the C locale.
#pragma once

#include <string>
#include <string_view>

namespace tessera::jinja {

// Number.prototype.toString() (shortest round-trip digits; exponent form outside [1e-7, 1e21)).
std::string js_number_to_string(double v);
// FloatValue.toString() of @huggingface/jinja: "-0.0", "3.0" for integral values, else toString().
std::string js_float_to_string(double v);
// parseInt(s, 10) and parseFloat(s); NaN when no digits.
double js_parse_int(std::string_view s);
double js_parse_float(std::string_view s);
// ToNumber(string) as used by loose equality: whitespace-trimmed decimal literal, "" -> 0, else NaN.
double js_string_to_number(std::string_view s);

}  // namespace tessera::jinja
