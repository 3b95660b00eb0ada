// Typed field reads for the request validator; see json_fields.h.
#include "server/json_fields.h"

#include <cmath>
#include <limits>

#include "server/api_error.h"
#include "common/utf8.h"

namespace tessera::server {

namespace {

// Nesting depth of a JSON text, counting brackets outside strings. Bounds the parser's work on
// adversarial input ("[[[[...") before it runs.
void check_depth(std::string_view s, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      API_CHECK(++depth <= max_depth, kInvalidArgument, "", "request body nests deeper than {} levels (at byte {})",
                max_depth, i);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

}  // namespace

json parse_request_body(std::string_view body, int max_depth) {
  API_CHECK(!body.empty(), kInvalidArgument, "", "request body is empty; expected a JSON object");
  if (auto bad = find_invalid_utf8(body)) {
    API_THROW(kInvalidArgument, "", "request body is not valid UTF-8: invalid byte 0x{:02x} at offset {}",
              static_cast<unsigned>(static_cast<unsigned char>(body[*bad])), *bad);
  }
  check_depth(body, max_depth);
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for numbers like 7e777
    API_THROW(kInvalidArgument, "", "request body is not valid JSON: {}", e.what());
  }
  API_CHECK(j.is_object(), kInvalidArgument, "", "request body must be a JSON object, got {}", json_type_name(j));
  return j;
}

std::string field_path(std::string_view prefix, std::string_view key) {
  if (prefix.empty()) return std::string(key);
  return std::string(prefix) + "." + std::string(key);
}

void check_known_fields(const json& obj, std::span<const std::string_view> known, std::string_view where) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool found = false;
    for (auto k : known) {
      if (k == it.key()) {
        found = true;
        break;
      }
    }
    if (!found) {
      const std::string path = field_path(where, it.key().substr(0, 64));
      API_THROW(kInvalidArgument, path, "unknown field '{}'", path);
    }
  }
}

const char* json_type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return "an unsupported value";
  }
}

std::string describe_value(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

const json* find_field(const json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<bool> get_bool(const json& obj, std::string_view key, std::string_view path) {
  const json* v = find_field(obj, key);
  if (!v) return std::nullopt;
  const std::string name = field_path(path, key);
  API_CHECK(v->is_boolean(), kInvalidArgument, name, "{} must be a boolean, got {} {}", name, json_type_name(*v),
            describe_value(*v));
  return v->get<bool>();
}

std::optional<std::string> get_string(const json& obj, std::string_view key, std::string_view path) {
  const json* v = find_field(obj, key);
  if (!v) return std::nullopt;
  const std::string name = field_path(path, key);
  API_CHECK(v->is_string(), kInvalidArgument, name, "{} must be a string, got {} {}", name, json_type_name(*v),
            describe_value(*v));
  return v->get<std::string>();
}

std::optional<int64_t> get_int(const json& obj, std::string_view key, std::string_view path, int64_t lo, int64_t hi) {
  const json* v = find_field(obj, key);
  if (!v) return std::nullopt;
  const std::string name = field_path(path, key);
  API_CHECK(v->is_number_integer() || v->is_number_unsigned(), kInvalidArgument, name,
            "{} must be an integer, got {} {}", name, json_type_name(*v), describe_value(*v));
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    API_CHECK(u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) && static_cast<int64_t>(u) <= hi &&
                  static_cast<int64_t>(u) >= lo,
              kInvalidArgument, name, "{} must be in [{}, {}], got {}", name, lo, hi, u);
    return static_cast<int64_t>(u);
  }
  const int64_t i = v->get<int64_t>();
  API_CHECK(i >= lo && i <= hi, kInvalidArgument, name, "{} must be in [{}, {}], got {}", name, lo, hi, i);
  return i;
}

std::optional<double> get_number(const json& obj, std::string_view key, std::string_view path, double lo, double hi,
                                 bool lo_open) {
  const json* v = find_field(obj, key);
  if (!v) return std::nullopt;
  const std::string name = field_path(path, key);
  API_CHECK(v->is_number(), kInvalidArgument, name, "{} must be a number, got {} {}", name, json_type_name(*v),
            describe_value(*v));
  const double d = v->get<double>();
  const bool lo_ok = lo_open ? d > lo : d >= lo;
  API_CHECK(std::isfinite(d) && lo_ok && d <= hi, kInvalidArgument, name, "{} must be in {}{}, {}], got {}", name,
            lo_open ? "(" : "[", lo, hi, d);
  return d;
}

}  // namespace tessera::server
