// Binary operators of the Jinja interpreter, in the order @huggingface/jinja resolves them:
// and/or, ==/!=, undefined/null checks, ~, **, numbers, arrays, `in`, string concatenation.
// Extension over it: < <= > >= also compare two strings (by code point, as Python does).
#include "common/error.h"
#include "tokenizer/jinja/interpreter.h"

#include <cmath>

namespace tessera::jinja {

namespace {
// String(a) + String(b), with the size charged to the budget before anything is allocated.
Value concat(Interpreter& in, const Value& a, const Value& b) {
  const std::string sa = a.is_string() ? std::string() : raw_js_string(a);
  const std::string sb = b.is_string() ? std::string() : raw_js_string(b);
  const std::string& ra = a.is_string() ? a.s() : sa;
  const std::string& rb = b.is_string() ? b.s() : sb;
  check_string_size(ra.size() + rb.size(), "concatenation");
  in.charge(ra.size() + rb.size());
  std::string out;
  out.reserve(ra.size() + rb.size());
  out.append(ra).append(rb);
  return make_string(std::move(out));
}

bool numeric_like(const Value& v) { return v.is_number() || v.kind == Kind::kBool; }
double numeric_value(const Value& v) { return v.kind == Kind::kBool ? (v.boolean ? 1 : 0) : v.number; }

std::optional<bool> membership(const std::string& op, const Value& left, const Value& right) {
  const bool negate = op == "not in";
  if (op != "in" && !negate) return std::nullopt;
  if (right.is_array()) {
    bool found = false;
    for (const auto& item : right.array->items)
      if (strict_equal(item, left)) {
        found = true;
        break;
      }
    return found != negate;
  }
  if (left.is_string() && right.is_string()) return (right.s().find(left.s()) != std::string::npos) != negate;
  if (left.is_string() && right.is_object()) return (right.object->find(left.s()) != nullptr) != negate;
  return std::nullopt;
}

std::optional<bool> compare(const std::string& op, int c) {
  if (op == "<") return c < 0;
  if (op == ">") return c > 0;
  if (op == "<=") return c <= 0;
  if (op == ">=") return c >= 0;
  return std::nullopt;
}
}  // namespace

Value Interpreter::eval_binary(const Node& n, const EnvPtr& env) {
  const std::string& op = n.text;
  Value left = eval(*n.a, env);
  if (op == "and") return truthy(left) ? eval(*n.b, env) : left;
  if (op == "or") return truthy(left) ? left : eval(*n.b, env);
  Value right = eval(*n.b, env);
  if (op == "==") return make_bool(loose_equal(left, right));
  if (op == "!=") return make_bool(!loose_equal(left, right));

  if (left.is_undefined() || right.is_undefined()) {
    if (right.is_undefined() && (op == "in" || op == "not in")) return make_bool(op == "not in");
    TS_THROW(kInvalidArgument, "Cannot perform operation {} on undefined values", op);
  }
  if (left.is_none() || right.is_none()) TS_THROW(kInvalidArgument, "Cannot perform operation {} on null values", op);
  if (op == "~") return concat(*this, left, right);
  if (op == "**" && numeric_like(left) && numeric_like(right)) {
    const double a = numeric_value(left), b = numeric_value(right);
    TS_CHECK(!(a == 0 && b < 0), kInvalidArgument, "0.0 cannot be raised to a negative power");
    const double r = std::pow(a, b);
    TS_CHECK(std::isfinite(r), kInvalidArgument, "Exponentiation result is not a finite real number");
    const bool is_float = left.kind == Kind::kFloat || right.kind == Kind::kFloat || b < 0;
    return is_float ? make_float(r) : make_int(r);
  }
  if (left.is_number() && right.is_number()) {
    const double a = left.number, b = right.number;
    const bool is_float = left.kind == Kind::kFloat || right.kind == Kind::kFloat;
    auto num = [&](double r) { return is_float ? make_float(r) : make_int(r); };
    if (op == "+") return num(a + b);
    if (op == "-") return num(a - b);
    if (op == "*") return num(a * b);
    if (op == "/") return make_float(a / b);
    if (op == "//") return num(std::floor(a / b));
    if (op == "%") return num(std::fmod(a, b));
    if (auto r = compare(op, a < b ? -1 : a > b ? 1 : (a == b ? 0 : 2))) {
      if (std::isnan(a) || std::isnan(b)) return make_bool(false);
      return make_bool(*r);
    }
  } else if (left.is_array() && right.is_array()) {
    if (op == "+") {
      charge((left.array->items.size() + right.array->items.size()) * sizeof(Value));
      std::vector<Value> items = left.array->items;
      items.insert(items.end(), right.array->items.begin(), right.array->items.end());
      return make_array(std::move(items));
    }
  } else if (right.is_array()) {
    if (auto r = membership(op, left, right)) return make_bool(*r);
  }
  if ((left.is_string() || right.is_string()) && op == "+") return concat(*this, left, right);
  if (!right.is_array())
    if (auto r = membership(op, left, right)) return make_bool(*r);
  if (left.is_string() && right.is_string()) {
    if (auto r = compare(op, left.s().compare(right.s()))) return make_bool(*r);
  }
  TS_THROW(kInvalidArgument, "Unknown operator \"{}\" between {} and {}", op, type_name(left), type_name(right));
}

}  // namespace tessera::jinja
