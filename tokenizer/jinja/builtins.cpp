// Global functions (namespace, range, raise_exception, strftime_now), methods reachable as
// attributes of strings and objects, and the `is` tests, as @huggingface/jinja defines them.
// Extensions with Python's meaning where it has none: str.rsplit/find/count, tests ne, in,
// divisibleby, float, lt/le/gt/ge, test arguments. strip/lstrip/rstrip ignore their argument and
// strip JavaScript whitespace, exactly as @huggingface/jinja does.
#include "common/error.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/text.h"

#include <cmath>
#include <ctime>

namespace tessera::jinja {

namespace {

bool is_word(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }

std::string str_arg(const CallArgs& args, size_t i, const char* name, const char* method) {
  const Value* v = args.get(i, name);
  TS_CHECK(v && v->is_string(), kInvalidArgument, "{}() argument '{}' must be a string", method, name);
  return v->s();
}

Value starts_or_ends(const std::string& s, const CallArgs& args, bool starts) {
  const char* method = starts ? "startswith" : "endswith";
  TS_CHECK(!args.positional.empty(), kInvalidArgument, "{}() requires at least one argument", method);
  auto test = [&](const std::string& p) {
    if (p.size() > s.size()) return false;
    return starts ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0;
  };
  const Value& pattern = args.positional[0];
  if (pattern.is_string()) return make_bool(test(pattern.s()));
  if (pattern.is_array()) {
    for (const auto& item : pattern.array->items) {
      TS_CHECK(item.is_string(), kInvalidArgument, "{}() tuple elements must be strings", method);
      if (test(item.s())) return make_bool(true);
    }
    return make_bool(false);
  }
  TS_THROW(kInvalidArgument, "{}() argument must be a string or tuple of strings", method);
}

// Python str.split / str.rsplit with @huggingface/jinja's handling of sep=None.
Value split(const std::string& s, const CallArgs& args, bool from_right) {
  const Value* sep = args.get(0, "sep");
  TS_CHECK(!sep || sep->is_string() || sep->is_none(), kInvalidArgument, "sep argument must be a string or null");
  const Value* max = args.get(1, "maxsplit");
  TS_CHECK(!max || max->kind == Kind::kInt, kInvalidArgument, "maxsplit argument must be a number");
  const int64_t maxsplit = max ? static_cast<int64_t>(max->number) : -1;
  std::vector<std::string> parts;
  if (!sep || sep->is_none()) {
    // Runs of whitespace separate; no empty strings at either end.
    std::vector<std::pair<size_t, size_t>> words;  // [begin, end)
    for (size_t i = 0; i < s.size();) {
      if (size_t n = js_space_len(s, i)) {
        i += n;
        continue;
      }
      const size_t b = i;
      while (i < s.size() && js_space_len(s, i) == 0) {
        size_t len = 0;
        utf8_decode(s, i, len);
        i += len;
      }
      words.emplace_back(b, i);
    }
    const size_t n = words.size();
    if (maxsplit < 0 || static_cast<size_t>(maxsplit) >= n) {
      for (auto [b, e] : words) parts.push_back(s.substr(b, e - b));
    } else if (!from_right) {
      for (size_t i = 0; i < static_cast<size_t>(maxsplit); ++i) parts.push_back(s.substr(words[i].first, words[i].second - words[i].first));
      parts.push_back(s.substr(words[static_cast<size_t>(maxsplit)].first));
    } else {
      const size_t keep = n - static_cast<size_t>(maxsplit);
      parts.push_back(s.substr(0, words[keep - 1].second));
      for (size_t i = keep; i < n; ++i) parts.push_back(s.substr(words[i].first, words[i].second - words[i].first));
    }
  } else {
    const std::string& d = sep->s();
    TS_CHECK(!d.empty(), kInvalidArgument, "empty separator");
    std::vector<std::string> all;
    size_t start = 0;
    while (true) {
      const size_t at = s.find(d, start);
      if (at == std::string::npos) break;
      all.push_back(s.substr(start, at - start));
      start = at + d.size();
    }
    all.push_back(s.substr(start));
    if (maxsplit < 0 || all.size() <= static_cast<size_t>(maxsplit) + 1) {
      parts = std::move(all);
    } else if (!from_right) {
      parts.assign(all.begin(), all.begin() + maxsplit);
      std::string rest;
      for (size_t i = static_cast<size_t>(maxsplit); i < all.size(); ++i) rest += (i > static_cast<size_t>(maxsplit) ? d : "") + all[i];
      parts.push_back(rest);
    } else {
      const size_t head = all.size() - static_cast<size_t>(maxsplit);
      std::string rest;
      for (size_t i = 0; i < head; ++i) rest += (i ? d : "") + all[i];
      parts.push_back(rest);
      parts.insert(parts.end(), all.begin() + static_cast<std::ptrdiff_t>(head), all.end());
    }
  }
  std::vector<Value> out;
  for (auto& p : parts) out.push_back(make_string(std::move(p)));
  return make_array(std::move(out));
}

// Python str.replace(old, new, count=-1); an empty `old` matches between code points.
Value replace(const std::string& s, const CallArgs& args) {
  TS_CHECK(args.positional.size() >= 2, kInvalidArgument, "replace() requires at least two arguments");
  TS_CHECK(args.positional[0].is_string() && args.positional[1].is_string(), kInvalidArgument,
           "replace() arguments must be strings");
  const std::string& from = args.positional[0].s();
  const std::string& to = args.positional[1].s();
  const Value* count = args.get(2, "count");
  TS_CHECK(!count || count->kind == Kind::kInt || count->is_none(), kInvalidArgument,
           "replace() count argument must be a number or null");
  double remaining = (!count || count->is_none() || count->number < 0) ? INFINITY : count->number;
  std::string out;
  if (from.empty()) {
    for (size_t i = 0;; ) {
      if (remaining > 0) {
        out += to;
        --remaining;
        check_string_size(out.size(), "replace()");
      }
      if (i >= s.size()) break;
      size_t len = 0;
      utf8_decode(s, i, len);
      out.append(s, i, len);
      i += len;
    }
    return make_string(std::move(out));
  }
  size_t start = 0;
  while (remaining > 0) {
    const size_t at = s.find(from, start);
    if (at == std::string::npos) break;
    out.append(s, start, at - start);
    out += to;
    check_string_size(out.size(), "replace()");
    start = at + from.size();
    --remaining;
  }
  out.append(s, start, std::string::npos);
  return make_string(std::move(out));
}

// Python str.find / str.count over code point indices.
Value find_or_count(const std::string& s, const CallArgs& args, bool count) {
  const std::string needle = str_arg(args, 0, "sub", count ? "count" : "find");
  if (count) {
    if (needle.empty()) return make_int(static_cast<double>(split_code_points(s).size() + 1));
    double n = 0;
    for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + needle.size())) ++n;
    return make_int(n);
  }
  const size_t at = s.find(needle);
  if (at == std::string::npos) return make_int(-1);
  return make_int(static_cast<double>(split_code_points(s.substr(0, at)).size()));
}

using Method = Value (*)(const std::string&, const CallArgs&);

Value string_method(const Value& object, const std::string& name) {
  static const std::pair<const char*, Method> kMethods[] = {
      {"upper", [](const std::string& s, const CallArgs&) { return make_string(to_upper(s)); }},
      {"lower", [](const std::string& s, const CallArgs&) { return make_string(to_lower(s)); }},
      {"strip", [](const std::string& s, const CallArgs&) { return make_string(js_trim(s)); }},
      {"lstrip", [](const std::string& s, const CallArgs&) { return make_string(js_trim_start(s)); }},
      {"rstrip", [](const std::string& s, const CallArgs&) { return make_string(js_trim_end(s)); }},
      {"title", [](const std::string& s, const CallArgs&) { return make_string(title_case(s)); }},
      {"capitalize", [](const std::string& s, const CallArgs&) { return make_string(capitalize(s)); }},
      {"startswith", [](const std::string& s, const CallArgs& a) { return starts_or_ends(s, a, true); }},
      {"endswith", [](const std::string& s, const CallArgs& a) { return starts_or_ends(s, a, false); }},
      {"split", [](const std::string& s, const CallArgs& a) { return split(s, a, false); }},
      {"rsplit", [](const std::string& s, const CallArgs& a) { return split(s, a, true); }},
      {"replace", [](const std::string& s, const CallArgs& a) { return replace(s, a); }},
      {"find", [](const std::string& s, const CallArgs& a) { return find_or_count(s, a, false); }},
      {"count", [](const std::string& s, const CallArgs& a) { return find_or_count(s, a, true); }},
  };
  for (const auto& [n, fn] : kMethods) {
    if (name != n) continue;
    Method m = fn;
    auto str = object.str;
    return make_function(name, [m, str](Interpreter& in, const EnvPtr&, CallArgs& args) {
      Value v = m(*str, args);
      if (v.is_string()) in.charge(v.s().size());
      return v;
    });
  }
  return make_undefined();
}

Value object_method(const Value& object, const std::string& name) {
  auto data = object.object;
  if (name == "get") {
    return make_function(name, [data](Interpreter&, const EnvPtr&, CallArgs& args) {
      TS_CHECK(!args.positional.empty() && args.positional[0].is_string(), kInvalidArgument,
               "Object key must be a string: got {}", args.positional.empty() ? "nothing" : type_name(args.positional[0]));
      if (const Value* v = data->find(args.positional[0].s())) return *v;
      return args.positional.size() > 1 ? args.positional[1] : make_none();
    });
  }
  if (name == "items" || name == "keys" || name == "values") {
    return make_function(name, [data, name](Interpreter& in, const EnvPtr&, CallArgs&) {
      std::vector<Value> out;
      for (const auto& [k, v] : data->entries) {
        in.step();
        if (name == "items") out.push_back(make_array({make_string(k), v}));
        if (name == "keys") out.push_back(make_string(k));
        if (name == "values") out.push_back(v);
      }
      return make_array(std::move(out));
    });
  }
  if (name == "dictsort") {
    Value self = object;
    return make_function(name, [self](Interpreter&, const EnvPtr&, CallArgs& args) { return dictsort(self, args); });
  }
  return make_undefined();
}

std::string strftime_now(const std::string& format) {
  static const char* kMonths[] = {"January", "February", "March", "April", "May", "June", "July",
                                  "August", "September", "October", "November", "December"};
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%' || i + 1 >= format.size()) {
      out += format[i];
      continue;
    }
    const char c = format[i + 1];
    switch (c) {
      case 'Y': out += std::to_string(tm.tm_year + 1900); break;
      case 'm': out += fmt::format("{:02}", tm.tm_mon + 1); break;
      case 'd': out += fmt::format("{:02}", tm.tm_mday); break;
      case 'b': out += std::string(kMonths[tm.tm_mon]).substr(0, 3); break;
      case 'B': out += kMonths[tm.tm_mon]; break;
      case 'H': out += fmt::format("{:02}", tm.tm_hour); break;
      case 'M': out += fmt::format("{:02}", tm.tm_min); break;
      case '%': out += '%'; break;
      default: out += format.substr(i, 2);
    }
    ++i;
  }
  return out;
}

Value range_fn(Interpreter& in, const EnvPtr&, CallArgs& args) {
  TS_CHECK(!args.positional.empty() && args.positional.size() <= 3, kInvalidArgument,
           "range() takes 1 to 3 arguments, got {}", args.positional.size());
  for (const auto& a : args.positional)
    TS_CHECK(a.is_number(), kInvalidArgument, "range() arguments must be numbers, got {}", type_name(a));
  double start = 0, stop = args.positional[0].number, step = 1;
  if (args.positional.size() >= 2) {
    start = args.positional[0].number;
    stop = args.positional[1].number;
  }
  if (args.positional.size() == 3) step = args.positional[2].number;
  TS_CHECK(step != 0, kInvalidArgument, "range() step must not be zero");
  const double count = std::ceil((stop - start) / step);
  TS_CHECK(!(count > static_cast<double>(in.limits().max_range)), kInvalidArgument,
           "range() of {} elements is over the limit of {}", count, in.limits().max_range);
  std::vector<Value> out;
  for (double i = start; step > 0 ? i < stop : i > stop; i += step) {
    in.step();
    out.push_back(make_int(i));
  }
  in.charge(out.size() * sizeof(Value));
  return make_array(std::move(out));
}

Value namespace_fn(Interpreter&, const EnvPtr&, CallArgs& args) {
  TS_CHECK(args.positional.size() <= 1, kInvalidArgument, "namespace expected at most 1 argument, got {}",
           args.positional.size());
  std::vector<std::pair<std::string, Value>> entries;
  if (!args.positional.empty()) {
    const Value& src = args.positional[0];
    if (src.is_object()) {
      entries = src.object->entries;
    } else if (src.is_array()) {
      for (const auto& pair : src.array->items) {
        TS_CHECK(pair.is_array() && pair.array->items.size() == 2 && pair.array->items[0].is_string(), kInvalidArgument,
                 "namespace expected an object or an iterable of [key, value] pairs");
        entries.emplace_back(pair.array->items[0].s(), pair.array->items[1]);
      }
    } else {
      TS_THROW(kInvalidArgument, "'{}' object is not iterable", type_name(src));
    }
  }
  for (const auto& kv : args.keyword) entries.push_back(kv);
  return make_namespace(std::move(entries));
}

}  // namespace

std::string title_case(const std::string& s) {
  std::string out = s;
  for (size_t i = 0; i < out.size(); ++i) {
    const bool boundary = i == 0 || !is_word(out[i - 1]);
    if (boundary && out[i] >= 'a' && out[i] <= 'z') out[i] = static_cast<char>(out[i] - 32);
  }
  return out;
}

std::string capitalize(const std::string& s) {
  if (s.empty()) return s;
  size_t len = 0;
  utf8_decode(s, 0, len);
  return to_upper(s.substr(0, len)) + s.substr(len);
}

Value builtin_attribute(const Value& object, const std::string& name) {
  if (object.is_string()) {
    if (name == "length") return make_int(static_cast<double>(utf16_length(object.s())));
    return string_method(object, name);
  }
  if (object.is_array()) return name == "length" ? make_int(static_cast<double>(object.array->items.size())) : make_undefined();
  if (object.is_object()) return object_method(object, name);
  return make_undefined();
}

void install_globals(Env& env) {
  env.set("false", make_bool(false));
  env.set("true", make_bool(true));
  env.set("none", make_none());
  env.set("False", make_bool(false));
  env.set("True", make_bool(true));
  env.set("None", make_none());
  env.set("namespace", make_function("namespace", namespace_fn));
  env.set("range", make_function("range", range_fn));
  env.set("raise_exception", make_function("raise_exception", [](Interpreter& in, const EnvPtr&, CallArgs& args) -> Value {
            in.mark_raised();
            const std::string msg = args.positional.empty() ? "" : raw_js_string(args.positional[0]);
            TS_THROW(kInvalidArgument, "{}", msg);
          }));
  env.set("strftime_now", make_function("strftime_now", [](Interpreter&, const EnvPtr&, CallArgs& args) {
            const std::string format = args.positional.empty() ? "" : raw_js_string(args.positional[0]);
            return make_string(strftime_now(format));
          }));
}

bool Interpreter::apply_test(const std::string& name, const Value& v, const CallArgs& args) {
  step();
  const Value arg = args.positional.empty() ? make_undefined() : args.positional[0];
  if (name == "boolean") return v.kind == Kind::kBool;
  if (name == "callable") return v.kind == Kind::kFunction;
  if (name == "odd" || name == "even") {
    TS_CHECK(v.kind == Kind::kInt, kInvalidArgument, "cannot {} on {}", name, type_name(v));
    const bool odd = std::fmod(v.number, 2) != 0;
    return name == "odd" ? odd : !odd;
  }
  if (name == "false") return v.kind == Kind::kBool && !v.boolean;
  if (name == "true") return v.kind == Kind::kBool && v.boolean;
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.kind == Kind::kInt;
  if (name == "float") return v.kind == Kind::kFloat;
  if (name == "iterable") return v.is_array() || v.is_string();
  if (name == "mapping") return v.is_object();
  if (name == "sequence") return v.is_array() || v.is_object() || v.is_string();
  if (name == "lower") return v.is_string() && v.s() == to_lower(v.s());
  if (name == "upper") return v.is_string() && v.s() == to_upper(v.s());
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "equalto" || name == "eq" || name == "sameas" || name == "==") return strict_equal(v, arg);
  if (name == "ne" || name == "!=") return !strict_equal(v, arg);
  if (name == "in") {
    if (arg.is_array())
      for (const auto& item : arg.array->items)
        if (strict_equal(item, v)) return true;
    if (arg.is_string() && v.is_string()) return arg.s().find(v.s()) != std::string::npos;
    if (arg.is_object() && v.is_string()) return arg.object->find(v.s()) != nullptr;
    return false;
  }
  if (name == "divisibleby") {
    TS_CHECK(v.is_number() && arg.is_number() && arg.number != 0, kInvalidArgument,
             "divisibleby needs two numbers and a non-zero divisor, got {} and {}", type_name(v), type_name(arg));
    return std::fmod(v.number, arg.number) == 0;
  }
  if (name == "lt" || name == "le" || name == "gt" || name == "ge") {
    const int c = compare_values(v, arg, true);
    return name == "lt" ? c < 0 : name == "le" ? c <= 0 : name == "gt" ? c > 0 : c >= 0;
  }
  TS_THROW(kInvalidArgument, "Unknown test: {}", name);
}

}  // namespace tessera::jinja
