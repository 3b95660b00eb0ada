// Jinja filters (`x | name(args)`) with the per-type behaviour of @huggingface/jinja. Extensions
// over it, with Python Jinja's meaning, only where it raises "unknown filter": select/reject,
// round, default/first/last/list/reverse on more types, map with a filter name.
#include "common/error.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/js_number.h"
#include "tokenizer/jinja/text.h"

#include <algorithm>
#include <cmath>

namespace tessera::jinja {

namespace {

[[noreturn]] void unknown(const char* type, const std::string& name) {
  TS_THROW(kInvalidArgument, "Unknown {} filter: {}", type, name);
}

// The value an attribute path ("a.b.0") names inside item, or undefined.
Value attribute_path(const Value& item, const std::string& path) {
  Value v = item;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (v.is_attribute_container()) {
      const Value* found = v.object->find(part);
      v = found ? *found : make_undefined();
    } else if (v.is_array()) {
      const double idx = js_parse_int(part);
      if (std::isnan(idx) || idx < 0 || idx >= static_cast<double>(v.array->items.size())) return make_undefined();
      Value next = v.array->items[static_cast<size_t>(idx)];
      v = next;
    } else {
      return make_undefined();
    }
    if (dot == std::string::npos) return v;
    start = dot + 1;
  }
}

std::string join_item(const Value& v) { return v.is_none() || v.is_undefined() ? "" : raw_js_string(v); }

const Value& require_bool(const Value* v, bool fallback_value, Value& storage, const char* what) {
  if (!v) {
    storage = make_bool(fallback_value);
    return storage;
  }
  TS_CHECK(v->kind == Kind::kBool, kInvalidArgument, "{} must be a boolean", what);
  return *v;
}

Value sort_array(Interpreter& in, const Value& operand, const CallArgs* args) {
  Value s1, s2;
  const bool reverse = require_bool(args ? args->get(0, "reverse") : nullptr, false, s1, "reverse").boolean;
  const bool case_sensitive =
      require_bool(args ? args->get(1, "case_sensitive") : nullptr, false, s2, "case_sensitive").boolean;
  const Value* attribute = args ? args->get(2, "attribute") : nullptr;
  std::optional<std::string> path;
  if (attribute && !attribute->is_none()) {
    TS_CHECK(attribute->is_string() || attribute->kind == Kind::kInt, kInvalidArgument,
             "attribute must be a string, integer, or null");
    path = attribute->is_string() ? attribute->s() : js_number_to_string(attribute->number);
  }
  std::vector<Value> items = operand.array->items;
  in.charge(items.size() * sizeof(Value));
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    in.step();
    const int c = path ? compare_values(attribute_path(a, *path), attribute_path(b, *path), case_sensitive)
                       : compare_values(a, b, case_sensitive);
    return reverse ? c > 0 : c < 0;
  });
  return make_array(std::move(items));
}

Value indent(const std::string& s, int width, bool first, bool blank) {
  const std::string pad(static_cast<size_t>(std::max(width, 0)), ' ');
  std::string out;
  size_t start = 0;
  for (size_t line = 0;; ++line) {
    const size_t nl = s.find('\n', start);
    const std::string part = s.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (line > 0) out += '\n';
    if ((first || line > 0) && (blank || !part.empty())) out += pad;
    out += part;
    check_string_size(out.size(), "indent");
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return make_string(std::move(out));
}

Value python_round(const Value& v, const CallArgs* args) {
  int precision = 0;
  std::string method = "common";
  if (args) {
    if (const Value* p = args->get(0, "precision")) {
      TS_CHECK(p->kind == Kind::kInt, kInvalidArgument, "round precision must be an integer");
      precision = static_cast<int>(std::clamp(p->number, -300.0, 300.0));
    }
    if (const Value* m = args->get(1, "method")) {
      TS_CHECK(m->is_string(), kInvalidArgument, "round method must be a string");
      method = m->s();
    }
  }
  const double scale = std::pow(10.0, precision);
  const double x = v.number * scale;
  double r = 0;
  if (method == "common") {
    r = std::round(x);
  } else if (method == "ceil") {
    r = std::ceil(x);
  } else if (method == "floor") {
    r = std::floor(x);
  } else {
    TS_THROW(kInvalidArgument, "method must be common, ceil or floor, got '{}'", method);
  }
  return make_float(r / scale);
}

Value select_items(Interpreter& in, const Value& operand, const std::string& name, const CallArgs& args) {
  const bool by_attr = name == "selectattr" || name == "rejectattr";
  const bool select = name == "select" || name == "selectattr";
  size_t at = 0;
  std::string attr;
  if (by_attr) {
    TS_CHECK(!args.positional.empty() && args.positional[0].is_string(), kInvalidArgument,
             "arguments of `{}` must be strings", name);
    attr = args.positional[0].s();
    at = 1;
    for (const auto& item : operand.array->items)
      TS_CHECK(item.is_attribute_container(), kInvalidArgument, "`{}` can only be applied to array of objects", name);
  }
  std::optional<std::string> test;
  if (at < args.positional.size()) {
    TS_CHECK(args.positional[at].is_string(), kInvalidArgument, "arguments of `{}` must be strings", name);
    test = args.positional[at].s();
  }
  CallArgs test_args;
  for (size_t i = at + 1; i < args.positional.size(); ++i) test_args.positional.push_back(args.positional[i]);
  std::vector<Value> out;
  for (const auto& item : operand.array->items) {
    in.step();
    bool result = false;
    if (by_attr) {
      const Value* a = item.object->find(attr);
      result = a && (test ? in.apply_test(*test, *a, test_args) : truthy(*a));
    } else {
      result = test ? in.apply_test(*test, item, test_args) : truthy(item);
    }
    if (result == select) out.push_back(item);
  }
  return make_array(std::move(out));
}

Value map_items(Interpreter& in, const Value& operand, const CallArgs& args, const EnvPtr& env) {
  if (const Value* attr = args.kw("attribute")) {
    TS_CHECK(attr->is_string(), kInvalidArgument, "attribute must be a string");
    const Value* fallback = args.kw("default");
    std::vector<Value> out;
    for (const auto& item : operand.array->items) {
      TS_CHECK(item.is_attribute_container(), kInvalidArgument, "items in map must be an object");
      Value v = attribute_path(item, attr->s());
      out.push_back(v.is_undefined() && fallback ? *fallback : v);
    }
    return make_array(std::move(out));
  }
  TS_CHECK(!args.positional.empty() && args.positional[0].is_string(), kInvalidArgument,
           "`map` needs attribute= or a filter name");
  const std::string filter = args.positional[0].s();
  CallArgs rest;
  for (size_t i = 1; i < args.positional.size(); ++i) rest.positional.push_back(args.positional[i]);
  rest.keyword = args.keyword;
  std::vector<Value> out;
  for (const auto& item : operand.array->items) {
    CallArgs copy = rest;
    out.push_back(in.apply_filter(item, filter, rest.positional.empty() && rest.keyword.empty() ? nullptr : &copy, env));
  }
  return make_array(std::move(out));
}

Value tojson(const Value& operand, const CallArgs* args) {
  JsonOptions o;
  if (args) {
    const Value* indent = args->kw("indent");
    if (!indent && !args->positional.empty()) indent = &args->positional[0];
    if (indent && !indent->is_none()) {
      TS_CHECK(indent->kind == Kind::kInt, kInvalidArgument, "If set, indent must be a number");
      o.indent = static_cast<int>(std::clamp(indent->number, -1.0, 64.0));
    }
    Value s1, s2;
    o.ensure_ascii = require_bool(args->kw("ensure_ascii"), false, s1, "If set, ensure_ascii").boolean;
    o.sort_keys = require_bool(args->kw("sort_keys"), false, s2, "If set, sort_keys").boolean;
    if (const Value* sep = args->kw("separators"); sep && !sep->is_none()) {
      const bool ok = sep->is_array() && sep->array->items.size() == 2 && sep->array->items[0].is_string() &&
                      sep->array->items[1].is_string();
      TS_CHECK(ok, kInvalidArgument, "separators must be a tuple of two strings");
      o.separators = std::make_pair(sep->array->items[0].s(), sep->array->items[1].s());
    }
  }
  return make_string(to_json(operand, o, true));
}

Value number_from_string(const std::string& name, const Value& operand, const Value& fallback) {
  const double v = name == "int" ? js_parse_int(operand.s()) : js_parse_float(operand.s());
  if (std::isnan(v)) return fallback;
  return name == "int" ? make_int(v) : make_float(v);
}

Value array_filter(Interpreter& in, const Value& operand, const std::string& name) {
  const auto& items = operand.array->items;
  if (name == "list") return operand;
  if (name == "first") return items.empty() ? make_undefined() : items.front();
  if (name == "last") return items.empty() ? make_undefined() : items.back();
  if (name == "length") return make_int(static_cast<double>(items.size()));
  if (name == "reverse") return make_array(std::vector<Value>(items.rbegin(), items.rend()));
  if (name == "sort") return sort_array(in, operand, nullptr);
  if (name == "join") {
    std::string s;
    for (const auto& item : items) {
      s += join_item(item);
      check_string_size(s.size(), "join");
    }
    return make_string(std::move(s));
  }
  if (name == "string") return make_string(to_json(operand, JsonOptions{}, false));
  if (name == "unique") {
    std::vector<Value> out;
    for (const auto& item : items) {
      in.step();
      if (std::none_of(out.begin(), out.end(), [&](const Value& o) { return strict_equal(o, item); })) out.push_back(item);
    }
    return make_array(std::move(out));
  }
  if (name == "select" || name == "reject") return select_items(in, operand, name, CallArgs{});
  unknown("ArrayValue", name);
}

Value string_filter(const Value& operand, const std::string& name) {
  const std::string& s = operand.s();
  if (name == "length") return make_int(static_cast<double>(utf16_length(s)));
  if (name == "upper") return make_string(to_upper(s));
  if (name == "lower") return make_string(to_lower(s));
  if (name == "title") return make_string(title_case(s));
  if (name == "capitalize") return make_string(capitalize(s));
  if (name == "trim") return make_string(js_trim(s));
  if (name == "indent") return indent(s, 4, false, false);
  if (name == "join" || name == "string") return operand;
  if (name == "int") return number_from_string(name, operand, make_int(0));
  if (name == "float") return number_from_string(name, operand, make_float(0));
  if (name == "list") {
    std::vector<Value> chars;
    for (auto& c : split_code_points(s)) chars.push_back(make_string(std::move(c)));
    return make_array(std::move(chars));
  }
  if (name == "first" || name == "last") {
    const auto chars = split_code_points(s);
    if (chars.empty()) return make_undefined();
    return make_string(name == "first" ? chars.front() : chars.back());
  }
  if (name == "reverse") {
    auto chars = split_code_points(s);
    std::string out;
    for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += *it;
    return make_string(std::move(out));
  }
  unknown("StringValue", name);
}

Value number_filter(const Value& operand, const std::string& name, const CallArgs* args) {
  if (name == "abs") return operand.kind == Kind::kInt ? make_int(std::fabs(operand.number)) : make_float(std::fabs(operand.number));
  if (name == "int") return make_int(std::floor(operand.number));
  if (name == "float") return make_float(operand.number);
  if (name == "string") return make_string(to_output(operand));
  if (name == "round") return python_round(operand, args);
  unknown("NumericValue", name);
}

}  // namespace

Value dictsort(const Value& object, const CallArgs& args) {
  Value s1, s2;
  const bool case_sensitive = require_bool(args.get(0, "case_sensitive"), false, s1, "case_sensitive").boolean;
  const Value* by = args.get(1, "by");
  TS_CHECK(!by || by->is_string(), kInvalidArgument, "by must be a string");
  const bool by_value = by && by->s() == "value";
  TS_CHECK(!by || by->s() == "key" || by_value, kInvalidArgument, "by must be either 'key' or 'value'");
  const bool reverse = require_bool(args.get(2, "reverse"), false, s2, "reverse").boolean;
  std::vector<Value> pairs;
  for (const auto& [k, v] : object.object->entries) pairs.push_back(make_array({make_string(k), v}));
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& a, const Value& b) {
    const int c = compare_values(a.array->items[by_value], b.array->items[by_value], case_sensitive);
    return reverse ? c > 0 : c < 0;
  });
  return make_array(std::move(pairs));
}

Value Interpreter::apply_filter(const Value& operand, const std::string& name, CallArgs* args, const EnvPtr& env) {
  step();
  Value result = [&]() -> Value {
    if (name == "safe") return operand;
    if (name == "tojson") return tojson(operand, args);
    if (name == "default" || name == "d") {
      const Value fallback = args && !args->positional.empty() ? args->positional[0] : make_string("");
      Value s1;
      const bool boolean = require_bool(args ? args->get(1, "boolean") : nullptr, false, s1,
                                        "`default` filter flag").boolean;
      return operand.is_undefined() || (boolean && !truthy(operand)) ? fallback : operand;
    }
    if (args && name == "join") {
      std::vector<std::string> parts;
      if (operand.is_string()) {
        parts = split_code_points(operand.s());
      } else if (operand.is_array()) {
        for (const auto& item : operand.array->items) parts.push_back(join_item(item));
      } else {
        TS_THROW(kInvalidArgument, "Cannot apply filter \"join\" to type: {}", type_name(operand));
      }
      const Value* sep = args->get(0, "separator");
      TS_CHECK(!sep || sep->is_string(), kInvalidArgument, "separator must be a string");
      std::string out;
      for (size_t i = 0; i < parts.size(); ++i) {
        if (i && sep) out += sep->s();
        out += parts[i];
        check_string_size(out.size(), "join");
      }
      return make_string(std::move(out));
    }
    if (args && (name == "int" || name == "float")) {
      const Value fallback = args->get(0, "default") ? *args->get(0, "default") : (name == "int" ? make_int(0) : make_float(0));
      if (operand.is_string()) return number_from_string(name, operand, fallback);
      if (operand.is_number()) return operand;
      if (operand.kind == Kind::kBool) return name == "int" ? make_int(operand.boolean) : make_float(operand.boolean);
      TS_THROW(kInvalidArgument, "Cannot apply filter \"{}\" to type: {}", name, type_name(operand));
    }
    if (operand.is_array()) {
      if (!args) return array_filter(*this, operand, name);
      if (name == "sort") return sort_array(*this, operand, args);
      if (name == "selectattr" || name == "rejectattr" || name == "select" || name == "reject")
        return select_items(*this, operand, name, *args);
      if (name == "map") return map_items(*this, operand, *args, env);
      unknown("ArrayValue", name);
    }
    if (operand.is_string()) {
      if (!args) return string_filter(operand, name);
      if (name == "indent") {
        const Value* width = args->get(0, "width");
        TS_CHECK(!width || width->kind == Kind::kInt, kInvalidArgument, "width must be a number");
        const Value* first = args->get(1, "first");
        const Value* blank = args->get(2, "blank");
        return indent(operand.s(), width ? static_cast<int>(std::clamp(width->number, 0.0, 1024.0)) : 4,
                      first && truthy(*first), blank && truthy(*blank));
      }
      if (name == "replace") {
        Value fn = builtin_attribute(operand, "replace");
        return fn.function->call(*this, env, *args);
      }
      unknown("StringValue", name);
    }
    if (operand.is_number()) return number_filter(operand, name, args);
    if (operand.is_object()) {
      CallArgs no_args;
      if (name == "items" && !args) return builtin_attribute(operand, "items").function->call(*this, env, no_args);
      if (name == "length" && !args) return make_int(static_cast<double>(operand.object->entries.size()));
      if (name == "dictsort") return dictsort(operand, args ? *args : CallArgs{});
      if (name == "string" && !args) return make_string(to_output(operand));
      if (name == "list" && !args) return builtin_attribute(operand, "keys").function->call(*this, env, no_args);
      Value fn = builtin_attribute(operand, name);
      if (fn.kind == Kind::kFunction) return fn.function->call(*this, env, args ? *args : no_args);
      unknown("ObjectValue", name);
    }
    if (operand.kind == Kind::kBool && !args) {
      if (name == "bool") return operand;
      if (name == "int") return make_int(operand.boolean ? 1 : 0);
      if (name == "float") return make_float(operand.boolean ? 1 : 0);
      if (name == "string") return make_string(operand.boolean ? "true" : "false");
      unknown("BooleanValue", name);
    }
    TS_THROW(kInvalidArgument, "Cannot apply filter \"{}\" to type: {}", name, type_name(operand));
  }();
  if (result.is_string()) charge(result.s().size());
  return result;
}

}  // namespace tessera::jinja
