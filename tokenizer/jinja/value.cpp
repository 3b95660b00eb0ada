// Runtime values: construction, JSON conversion, truthiness, printing and equality with the
// JavaScript semantics of @huggingface/jinja.
#include "tokenizer/jinja/value.h"

#include "common/error.h"
#include "tokenizer/jinja/js_number.h"
#include "tokenizer/jinja/text.h"

#include <algorithm>

#include <utf8proc.h>
#include <cmath>

namespace tessera::jinja {

void check_string_size(size_t bytes, const char* what) {
  TS_CHECK(bytes <= kMaxStringBytes, kInvalidArgument, "chat template {} would build a string of {} bytes, over the limit of {}",
           what, bytes, kMaxStringBytes);
}

int Value::depth() const {
  if (kind == Kind::kArray) return array->depth;
  if (kind == Kind::kObject || kind == Kind::kNamespace) return object->depth;
  return 0;
}

bool Value::holds_mutable() const {
  if (kind == Kind::kNamespace || kind == Kind::kFunction) return true;
  if (kind == Kind::kArray) return array->holds_mutable;
  if (kind == Kind::kObject) return object->holds_mutable;
  return false;
}

// Small objects (loop variables, messages) are searched linearly; an index is built past 16 keys.
constexpr size_t kIndexFrom = 16;

const Value* ObjectData::find(const std::string& key) const {
  if (entries.size() <= kIndexFrom) {
    for (const auto& [k, v] : entries)
      if (k == key) return &v;
    return nullptr;
  }
  auto it = index.find(key);
  return it == index.end() ? nullptr : &entries[it->second].second;
}

void ObjectData::set(const std::string& key, Value value) {
  depth = std::max(depth, value.depth() + 1);
  holds_mutable = holds_mutable || value.holds_mutable();
  for (size_t i = 0; i < entries.size() && entries.size() <= kIndexFrom; ++i) {
    if (entries[i].first == key) {
      entries[i].second = std::move(value);
      return;
    }
  }
  if (entries.size() > kIndexFrom) {
    auto it = index.find(key);
    if (it != index.end()) {
      entries[it->second].second = std::move(value);
      return;
    }
  }
  entries.emplace_back(key, std::move(value));
  if (entries.size() == kIndexFrom + 1) {
    for (size_t i = 0; i < entries.size(); ++i) index.emplace(entries[i].first, i);
  } else if (entries.size() > kIndexFrom + 1) {
    index.emplace(key, entries.size() - 1);
  }
}

const Value* CallArgs::kw(const std::string& name) const {
  for (const auto& [k, v] : keyword)
    if (k == name) return &v;
  return nullptr;
}

const Value* CallArgs::get(size_t i, const std::string& name) const {
  if (i < positional.size()) return &positional[i];
  return kw(name);
}

Value make_undefined() { return Value{}; }
Value make_none() {
  Value v;
  v.kind = Kind::kNull;
  return v;
}
Value make_bool(bool b) {
  Value v;
  v.kind = Kind::kBool;
  v.boolean = b;
  return v;
}
Value make_int(double n) {
  Value v;
  v.kind = Kind::kInt;
  v.number = n;
  return v;
}
Value make_float(double n) {
  Value v;
  v.kind = Kind::kFloat;
  v.number = n;
  return v;
}
Value make_string(std::string s) {
  Value v;
  v.kind = Kind::kString;
  v.str = std::make_shared<const std::string>(std::move(s));
  return v;
}

namespace {
void check_depth(int depth) {
  TS_CHECK(depth <= kMaxValueDepth, kInvalidArgument, "chat template value nested {} deep, over the limit of {}",
           depth, kMaxValueDepth);
}
}  // namespace

Value make_array(std::vector<Value> items, bool tuple) {
  auto data = std::make_shared<ArrayData>();
  for (const auto& item : items) {
    data->depth = std::max(data->depth, item.depth() + 1);
    data->holds_mutable = data->holds_mutable || item.holds_mutable();
  }
  check_depth(data->depth);
  data->items = std::move(items);
  data->is_tuple = tuple;
  Value v;
  v.kind = Kind::kArray;
  v.array = std::move(data);
  return v;
}

namespace {
Value make_mapping(Kind kind, std::vector<std::pair<std::string, Value>> entries) {
  auto data = std::make_shared<ObjectData>();
  for (auto& [k, val] : entries) data->set(k, std::move(val));
  check_depth(data->depth);
  Value v;
  v.kind = kind;
  v.object = std::move(data);
  return v;
}
}  // namespace

Value make_object(std::vector<std::pair<std::string, Value>> entries) {
  return make_mapping(Kind::kObject, std::move(entries));
}
Value make_namespace(std::vector<std::pair<std::string, Value>> entries) {
  for (const auto& [k, v] : entries)
    TS_CHECK(!v.holds_mutable(), kInvalidArgument, "namespace attribute '{}' cannot hold a {}", k, type_name(v));
  return make_mapping(Kind::kNamespace, std::move(entries));
}
Value make_function(std::string name, decltype(Function::call) fn) {
  Value v;
  v.kind = Kind::kFunction;
  v.function = std::make_shared<const Function>(Function{std::move(name), std::move(fn)});
  return v;
}

namespace {
// A canonical array index ("0", "17", never "017") orders first in JavaScript objects.
bool is_array_index(const std::string& k, uint64_t& out) {
  if (k.empty() || k.size() > 10 || (k.size() > 1 && k[0] == '0')) return false;
  uint64_t v = 0;
  for (char c : k) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v >= 4294967295ULL) return false;
  out = v;
  return true;
}

template <typename Json>
Value convert(const Json& j, int depth) {
  check_depth(depth);
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return make_none();
    case nlohmann::json::value_t::boolean:
      return make_bool(j.template get<bool>());
    case nlohmann::json::value_t::number_integer:
      return make_int(static_cast<double>(j.template get<int64_t>()));
    case nlohmann::json::value_t::number_unsigned:
      return make_int(static_cast<double>(j.template get<uint64_t>()));
    case nlohmann::json::value_t::number_float: {
      const double d = j.template get<double>();
      return std::isfinite(d) && std::trunc(d) == d ? make_int(d) : make_float(d);
    }
    case nlohmann::json::value_t::string:
      return make_string(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(convert(e, depth + 1));
      return make_array(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      std::vector<std::pair<uint64_t, std::string>> index_keys;
      std::vector<std::pair<std::string, Value>> entries;
      for (auto it = j.begin(); it != j.end(); ++it) {
        uint64_t idx = 0;
        if (is_array_index(it.key(), idx)) index_keys.emplace_back(idx, it.key());
      }
      std::sort(index_keys.begin(), index_keys.end());
      for (const auto& [idx, key] : index_keys) entries.emplace_back(key, convert(j.at(key), depth + 1));
      for (auto it = j.begin(); it != j.end(); ++it) {
        uint64_t idx = 0;
        if (!is_array_index(it.key(), idx)) entries.emplace_back(it.key(), convert(it.value(), depth + 1));
      }
      return make_object(std::move(entries));
    }
    default:
      TS_THROW(kInvalidArgument, "chat template input holds an unsupported JSON value of type '{}'", j.type_name());
  }
}
}  // namespace

Value from_json(const nlohmann::ordered_json& j) { return convert(j, 0); }
Value from_json(const nlohmann::json& j) { return convert(j, 0); }

const char* type_name(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined: return "UndefinedValue";
    case Kind::kNull: return "NullValue";
    case Kind::kBool: return "BooleanValue";
    case Kind::kInt: return "IntegerValue";
    case Kind::kFloat: return "FloatValue";
    case Kind::kString: return "StringValue";
    case Kind::kArray: return v.array->is_tuple ? "TupleValue" : "ArrayValue";
    case Kind::kObject: return "ObjectValue";
    case Kind::kNamespace: return "NamespaceValue";
    case Kind::kFunction: return "FunctionValue";
  }
  return "?";
}

bool truthy(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined:
    case Kind::kNull: return false;
    case Kind::kBool: return v.boolean;
    case Kind::kInt:
    case Kind::kFloat: return v.number != 0 && !std::isnan(v.number);
    case Kind::kString: return !v.str->empty();
    case Kind::kArray: return !v.array->items.empty();
    case Kind::kObject: return !v.object->entries.empty();
    case Kind::kNamespace:
    case Kind::kFunction: return true;
  }
  return false;
}

std::string to_output(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined: return "undefined";
    case Kind::kNull: return "undefined";  // @huggingface/jinja's NullValue holds a JavaScript undefined
    case Kind::kBool: return v.boolean ? "true" : "false";
    case Kind::kInt: return js_number_to_string(v.number);
    case Kind::kFloat: return js_float_to_string(v.number);
    case Kind::kString: return *v.str;
    case Kind::kArray:
    case Kind::kObject:
    case Kind::kNamespace: return to_json(v, JsonOptions{}, false);
    case Kind::kFunction: return "[function " + v.function->name + "]";
  }
  return "";
}

std::string raw_js_string(const Value& v) {
  switch (v.kind) {
    case Kind::kInt:
    case Kind::kFloat: return js_number_to_string(v.number);
    case Kind::kArray: {
      std::string out;
      for (size_t i = 0; i < v.array->items.size(); ++i) {
        if (i) out += ',';
        out += to_output(v.array->items[i]);
      }
      return out;
    }
    case Kind::kObject:
    case Kind::kNamespace: return "[object Map]";
    default: return to_output(v);
  }
}

namespace {
void json_escape(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          if (c < 0x20 || (ensure_ascii && c == 0x7f)) {
            out += fmt::format("\\u{:04x}", c);
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    size_t len = 0;
    const char32_t cp = utf8_decode(s, i, len);
    if (!ensure_ascii) {
      utf8_append(out, cp);
    } else if (cp >= 0x10000) {
      const char32_t u = cp - 0x10000;
      out += fmt::format("\\u{:04x}\\u{:04x}", 0xD800 + (u >> 10), 0xDC00 + (u & 0x3FF));
    } else {
      out += fmt::format("\\u{:04x}", static_cast<uint32_t>(cp));
    }
    i += len;
  }
  out += '"';
}

std::string json_number(double d) { return std::isfinite(d) ? js_number_to_string(d) : "null"; }

// An approximation of String#localeCompare (ICU root collation) for sort_keys: spaces and
// punctuation, then symbols, digits and letters; letters compare by their base letter first
// (accents and case ignored), then accents, then lower case before upper case.
struct CollationKey {
  std::vector<std::pair<int, int32_t>> primary;
  std::string secondary;  // the string without case: accents decide
  std::string tertiary;   // the string itself: case decides (lower first)
};

CollationKey collation_key(const std::string& s) {
  CollationKey key;
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    const char32_t cp = utf8_decode(s, i, len);
    i += len;
    utf8proc_int32_t base[8];
    utf8proc_ssize_t n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), base, 8, UTF8PROC_DECOMPOSE, nullptr);
    if (n < 1 || n > 8) {
      base[0] = static_cast<utf8proc_int32_t>(cp);
      n = 1;
    }
    for (utf8proc_ssize_t k = 0; k < n; ++k) {
      const utf8proc_category_t cat = utf8proc_category(base[k]);
      if (cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_MC || cat == UTF8PROC_CATEGORY_ME) continue;
      int cls = 5;
      if (cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_CC) cls = 0;
      else if (cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO) cls = 1;
      else if (cat >= UTF8PROC_CATEGORY_SM && cat <= UTF8PROC_CATEGORY_SO) cls = 2;
      else if (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO) cls = 3;
      else if (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) cls = 4;
      key.primary.emplace_back(cls, utf8proc_tolower(base[k]));
    }
  }
  key.secondary = to_lower(s);
  key.tertiary = s;
  return key;
}

bool locale_less(const std::string& a, const std::string& b) {
  const CollationKey ka = collation_key(a), kb = collation_key(b);
  if (ka.primary != kb.primary) return ka.primary < kb.primary;
  if (ka.secondary != kb.secondary) return ka.secondary < kb.secondary;
  return ka.tertiary > kb.tertiary;
}

void to_json_into(std::string& out, const Value& v, const JsonOptions& o, int depth, bool undef_null) {
  const std::string item_sep = o.separators ? o.separators->first : (o.indent && *o.indent ? "," : ", ");
  const std::string key_sep = o.separators ? o.separators->second : ": ";
  const int indent = o.indent.value_or(0);
  const std::string indent_unit(static_cast<size_t>(std::max(indent, 0)), ' ');
  auto padding = [&](int d) {
    std::string p = "\n";
    for (int i = 0; i < d; ++i) p += indent_unit;
    return p;
  };
  switch (v.kind) {
    case Kind::kNull: out += "null"; return;
    case Kind::kUndefined: out += undef_null ? "null" : "undefined"; return;
    case Kind::kBool: out += v.boolean ? "true" : "false"; return;
    case Kind::kInt:
    case Kind::kFloat: out += json_number(v.number); return;
    case Kind::kString: json_escape(out, *v.str, o.ensure_ascii); return;
    case Kind::kArray: {
      // @huggingface/jinja has no JSON form for tuples (its toJSON switch lacks TupleValue).
      TS_CHECK(!v.array->is_tuple, kInvalidArgument, "Cannot convert to JSON: TupleValue");
      const auto& items = v.array->items;
      const bool pretty = indent > 0 && !items.empty();
      out += '[';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += item_sep;
        if (pretty) out += padding(depth + 1);
        to_json_into(out, items[i], o, depth + 1, undef_null);
        check_string_size(out.size(), "JSON conversion");
      }
      if (pretty) out += padding(depth);
      out += ']';
      return;
    }
    case Kind::kObject:
    case Kind::kNamespace: {
      std::vector<const std::pair<std::string, Value>*> entries;
      for (const auto& e : v.object->entries) entries.push_back(&e);
      if (o.sort_keys)
        std::stable_sort(entries.begin(), entries.end(), [](auto* a, auto* b) { return locale_less(a->first, b->first); });
      const bool pretty = indent > 0 && !entries.empty();
      out += '{';
      for (size_t i = 0; i < entries.size(); ++i) {
        if (i) out += item_sep;
        if (pretty) out += padding(depth + 1);
        json_escape(out, entries[i]->first, o.ensure_ascii);
        out += key_sep;
        to_json_into(out, entries[i]->second, o, depth + 1, undef_null);
        check_string_size(out.size(), "JSON conversion");
      }
      if (pretty) out += padding(depth);
      out += '}';
      return;
    }
    case Kind::kFunction:
      TS_THROW(kInvalidArgument, "Cannot convert to JSON: FunctionValue");
  }
}
}  // namespace

std::string to_json(const Value& v, const JsonOptions& options, bool undefined_to_null) {
  std::string out;
  to_json_into(out, v, options, 0, undefined_to_null);
  return out;
}

namespace {
bool is_js_object(const Value& v) {
  return v.kind == Kind::kArray || v.kind == Kind::kObject || v.kind == Kind::kNamespace || v.kind == Kind::kFunction;
}
bool same_reference(const Value& a, const Value& b) {
  if (a.kind != b.kind) return false;
  if (a.kind == Kind::kArray) return a.array == b.array;
  if (a.kind == Kind::kFunction) return a.function == b.function;
  return a.object == b.object;
}
}  // namespace

bool loose_equal(const Value& a, const Value& b) {
  const bool a_nullish = a.kind == Kind::kNull || a.kind == Kind::kUndefined;
  const bool b_nullish = b.kind == Kind::kNull || b.kind == Kind::kUndefined;
  if (a_nullish || b_nullish) return a_nullish && b_nullish;
  if (is_js_object(a) && is_js_object(b)) return same_reference(a, b);
  if (is_js_object(a)) return loose_equal(make_string(raw_js_string(a)), b);
  if (is_js_object(b)) return loose_equal(a, make_string(raw_js_string(b)));
  if (a.kind == Kind::kString && b.kind == Kind::kString) return *a.str == *b.str;
  auto to_num = [](const Value& v) {
    if (v.kind == Kind::kBool) return v.boolean ? 1.0 : 0.0;
    if (v.kind == Kind::kString) return js_string_to_number(*v.str);
    return v.number;
  };
  return to_num(a) == to_num(b);
}

bool strict_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return a.number == b.number;
  const auto nullish = [](const Value& v) { return v.kind == Kind::kNull || v.kind == Kind::kUndefined; };
  if (nullish(a) || nullish(b)) return nullish(a) && nullish(b);  // both hold a JavaScript undefined
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Kind::kBool: return a.boolean == b.boolean;
    case Kind::kString: return *a.str == *b.str;
    default: return same_reference(a, b);
  }
}

int compare_values(const Value& a, const Value& b, bool case_sensitive) {
  if (a.kind == Kind::kNull && b.kind == Kind::kNull) return 0;
  if (a.kind == Kind::kUndefined && b.kind == Kind::kUndefined) return 0;
  const auto numeric = [](const Value& v) { return v.is_number() || v.kind == Kind::kBool; };
  if (numeric(a) && numeric(b)) {
    const double x = a.kind == Kind::kBool ? a.boolean : a.number;
    const double y = b.kind == Kind::kBool ? b.boolean : b.number;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.kind == Kind::kString && b.kind == Kind::kString) {
    const std::string x = case_sensitive ? *a.str : to_lower(*a.str);
    const std::string y = case_sensitive ? *b.str : to_lower(*b.str);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.kind != b.kind) TS_THROW(kInvalidArgument, "Cannot compare different types: {} and {}", type_name(a), type_name(b));
  TS_THROW(kInvalidArgument, "Cannot compare type: {}", type_name(a));
}

}  // namespace tessera::jinja
