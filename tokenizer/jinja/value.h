// The runtime values of the Jinja interpreter, with the semantics @huggingface/jinja gives them:
// numbers are doubles tagged integer or float, arrays/objects are shared by reference (identity
// equality, as in JavaScript), objects keep insertion order. Only namespaces are mutable, and a
// namespace may never hold a namespace or a function, so values form no cycles.
// It must never build a value nested deeper than kMaxValueDepth.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tessera::jinja {

constexpr int kMaxValueDepth = 128;
// No single string a template builds (concatenation, replace, join, indent, tojson) may exceed this.
constexpr size_t kMaxStringBytes = size_t{64} << 20;
// Throws tessera::Error(kInvalidArgument) when a string being built would exceed kMaxStringBytes.
void check_string_size(size_t bytes, const char* what);

enum class Kind : uint8_t { kUndefined, kNull, kBool, kInt, kFloat, kString, kArray, kObject, kNamespace, kFunction };

struct Value;
struct ArrayData;
struct ObjectData;
struct Function;

struct Value {
  Kind kind = Kind::kUndefined;
  bool boolean = false;
  double number = 0;
  std::shared_ptr<const std::string> str;
  std::shared_ptr<const ArrayData> array;
  std::shared_ptr<ObjectData> object;  // kObject (never mutated after creation) or kNamespace
  std::shared_ptr<const Function> function;

  bool is_undefined() const { return kind == Kind::kUndefined; }
  bool is_none() const { return kind == Kind::kNull; }
  bool is_number() const { return kind == Kind::kInt || kind == Kind::kFloat; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_array() const { return kind == Kind::kArray; }
  bool is_object() const { return kind == Kind::kObject; }
  bool is_attribute_container() const { return kind == Kind::kObject || kind == Kind::kNamespace; }
  const std::string& s() const { return *str; }
  int depth() const;          // nesting depth: 0 for scalars
  bool holds_mutable() const;  // is or contains a namespace or function
};

struct ArrayData {
  std::vector<Value> items;
  bool is_tuple = false;
  int depth = 1;
  bool holds_mutable = false;
};

struct ObjectData {
  std::vector<std::pair<std::string, Value>> entries;  // insertion order
  std::unordered_map<std::string, size_t> index;
  int depth = 1;
  bool holds_mutable = false;

  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value value);  // keeps the position of an existing key
};

// Arguments of a call: positional values and keyword arguments in source order.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  const Value* kw(const std::string& name) const;
  // positional[i], else keyword `name`, else nullptr.
  const Value* get(size_t i, const std::string& name) const;
};

class Interpreter;
struct Env;

// A callable: a builtin (range, raise_exception, a bound string method...) or a macro.
struct Function {
  std::string name;
  std::function<Value(Interpreter&, const std::shared_ptr<Env>& call_env, CallArgs& args)> call;
};

Value make_undefined();
Value make_none();
Value make_bool(bool b);
Value make_int(double v);
Value make_float(double v);
Value make_string(std::string s);
Value make_array(std::vector<Value> items, bool tuple = false);
Value make_object(std::vector<std::pair<std::string, Value>> entries);
Value make_namespace(std::vector<std::pair<std::string, Value>> entries);
Value make_function(std::string name, decltype(Function::call) fn);

// JSON input -> values, as JSON.parse + @huggingface/jinja would see it: integral numbers are
// integers, object keys in JavaScript property order (array-index keys first, ascending).
Value from_json(const nlohmann::ordered_json& j);
Value from_json(const nlohmann::json& j);

// The @huggingface/jinja type name ("StringValue", ...) for error messages.
const char* type_name(const Value& v);

bool truthy(const Value& v);
// RuntimeValue.toString(): what {{ v }} prints.
std::string to_output(const Value& v);
// String(v.value) in JavaScript: what `+` and `~` concatenate and `join` joins.
std::string raw_js_string(const Value& v);

struct JsonOptions {
  std::optional<int> indent;
  bool ensure_ascii = false;
  bool sort_keys = false;
  std::optional<std::pair<std::string, std::string>> separators;
};
// The tojson filter (undefined_to_null) and the JSON form of containers in output (not).
std::string to_json(const Value& v, const JsonOptions& options, bool undefined_to_null);

bool loose_equal(const Value& a, const Value& b);   // JavaScript ==
bool strict_equal(const Value& a, const Value& b);  // JavaScript ===
// Ordering for sort/dictsort; throws on values of incomparable types.
int compare_values(const Value& a, const Value& b, bool case_sensitive);

}  // namespace tessera::jinja
