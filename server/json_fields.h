// Typed, range-checked reads of fields from an untrusted JSON object. Every failure is an ApiError
// (kInvalidArgument) naming the field and the value seen. JSON null counts as "not given", as in
// OpenAI's API. It must never accept a value of the wrong type by converting it.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace tessera::server {

using nlohmann::json;

// Parses a request body: checks UTF-8 and nesting depth first, then the JSON syntax; the top level
// must be an object. Errors name the byte offset.
json parse_request_body(std::string_view body, int max_depth = 64);

// Throws naming the first key of `obj` that is not in `known` ("unknown field 'x'"). `where` is the
// path of obj ("" at the top level, "stream_options" inside).
void check_known_fields(const json& obj, std::span<const std::string_view> known, std::string_view where);

// A short rendering of a value for error messages (at most ~60 characters).
std::string describe_value(const json& v);
// "a number", "a string", ...
const char* json_type_name(const json& v);

// The field `key` of `obj`, or nullptr when absent or null.
const json* find_field(const json& obj, std::string_view key);

std::optional<bool> get_bool(const json& obj, std::string_view key, std::string_view path);
std::optional<std::string> get_string(const json& obj, std::string_view key, std::string_view path);
// Integers must be JSON integers (5, not 5.0 or "5"); the range is inclusive.
std::optional<int64_t> get_int(const json& obj, std::string_view key, std::string_view path, int64_t lo,
                               int64_t hi);
// Numbers may be integers or floats; the range is inclusive unless lo_open says otherwise.
std::optional<double> get_number(const json& obj, std::string_view key, std::string_view path, double lo, double hi,
                                 bool lo_open = false);

// "prefix.key" or "key" when prefix is empty.
std::string field_path(std::string_view prefix, std::string_view key);

}  // namespace tessera::server
