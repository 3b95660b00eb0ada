// The Jinja interpreter core: statements, expressions, scoping and the work budget.
#include "tokenizer/jinja/interpreter.h"

#include "common/error.h"
#include "tokenizer/jinja/text.h"

#include <cmath>

namespace tessera::jinja {

Value Env::lookup(const std::string& name) const {
  for (const Env* e = this; e != nullptr; e = e->parent.get()) {
    auto it = e->vars.find(name);
    if (it != e->vars.end()) return it->second;
  }
  return make_undefined();
}

struct Interpreter::DepthGuard {
  explicit DepthGuard(Interpreter& in) : in_(in) {
    TS_CHECK(++in_.depth_ <= in_.limits_.max_depth, kInvalidArgument,
             "chat template evaluation nested deeper than {} levels", in_.limits_.max_depth);
  }
  ~DepthGuard() { --in_.depth_; }
  Interpreter& in_;
};

void Interpreter::step() {
  TS_CHECK(++steps_ <= limits_.max_steps, kInvalidArgument, "chat template rendering took over {} steps",
           limits_.max_steps);
}

void Interpreter::charge(size_t bytes) {
  work_ += bytes;
  TS_CHECK(work_ <= limits_.max_work_bytes, kInvalidArgument, "chat template rendering produced over {} bytes of work",
           limits_.max_work_bytes);
}

std::string Interpreter::run(const Node& program, const EnvPtr& globals) {
  std::string out;
  exec_block(program.list, globals, out);
  TS_CHECK(signal_ == Signal::kNone, kInvalidArgument, "'{}' outside of a loop",
           signal_ == Signal::kBreak ? "break" : "continue");
  return out;
}

void Interpreter::exec_block(const std::vector<NodePtr>& body, const EnvPtr& env, std::string& out) {
  for (const auto& n : body) {
    exec(*n, env, out);
    if (signal_ != Signal::kNone) return;
  }
}

void Interpreter::exec(const Node& n, const EnvPtr& env, std::string& out) {
  DepthGuard guard(*this);
  step();
  line_ = n.line;
  const size_t before = out.size();
  switch (n.kind) {
    case NodeKind::kText: out += n.text; break;
    case NodeKind::kComment: break;
    case NodeKind::kIf: exec_block(truthy(eval(*n.a, env)) ? n.list : n.list2, env, out); break;
    case NodeKind::kFor: exec_for(n, env, out); break;
    case NodeKind::kSet: exec_set(n, env); break;
    case NodeKind::kMacro: define_macro(n, env); break;
    case NodeKind::kCallBlock: exec_call_block(n, env, out); break;
    case NodeKind::kFilterBlock: {
      std::string body;
      exec_block(n.list, env, body);
      charge(body.size());
      Value v = make_string(std::move(body));
      const Node& f = *n.a;
      if (f.kind == NodeKind::kCall) {
        CallArgs args = eval_args(f.list, env);
        v = apply_filter(v, f.a->text, &args, env);
      } else {
        v = apply_filter(v, f.text, nullptr, env);
      }
      if (!v.is_none() && !v.is_undefined()) out += to_output(v);
      break;
    }
    case NodeKind::kBreak: signal_ = Signal::kBreak; break;
    case NodeKind::kContinue: signal_ = Signal::kContinue; break;
    default: {
      Value v = eval(n, env);
      if (!v.is_none() && !v.is_undefined()) out += to_output(v);
    }
  }
  charge(out.size() - before);
  TS_CHECK(out.size() <= limits_.max_output_bytes, kInvalidArgument, "chat template output is over {} bytes",
           limits_.max_output_bytes);
}

namespace {
Value loop_object(size_t i, const std::vector<Value>& items) {
  const size_t n = items.size();
  return make_object({
      {"index", make_int(static_cast<double>(i + 1))},
      {"index0", make_int(static_cast<double>(i))},
      {"revindex", make_int(static_cast<double>(n - i))},
      {"revindex0", make_int(static_cast<double>(n - i - 1))},
      {"first", make_bool(i == 0)},
      {"last", make_bool(i + 1 == n)},
      {"length", make_int(static_cast<double>(n))},
      {"previtem", i > 0 ? items[i - 1] : make_undefined()},
      {"nextitem", i + 1 < n ? items[i + 1] : make_undefined()},
  });
}

void bind_loop_variable(const Node& target, const Value& item, Env& scope) {
  if (target.kind == NodeKind::kIdentifier) {
    scope.set(target.text, item);
    return;
  }
  TS_CHECK(item.is_array(), kInvalidArgument, "Cannot unpack non-iterable type: {}", type_name(item));
  const auto& parts = item.array->items;
  TS_CHECK(parts.size() == target.list.size(), kInvalidArgument, "Too {} items to unpack",
           target.list.size() > parts.size() ? "few" : "many");
  for (size_t j = 0; j < parts.size(); ++j) {
    TS_CHECK(target.list[j]->kind == NodeKind::kIdentifier, kInvalidArgument, "Cannot unpack non-identifier type");
    scope.set(target.list[j]->text, parts[j]);
  }
}
}  // namespace

void Interpreter::exec_for(const Node& n, const EnvPtr& env, std::string& out) {
  auto scope = std::make_shared<Env>();
  scope->parent = env;
  Value iterable = eval(*n.b, scope);
  std::vector<Value> keys;
  const std::vector<Value>* source = &keys;
  if (iterable.is_array()) {
    source = &iterable.array->items;  // `iterable` keeps the array alive
  } else if (iterable.is_object()) {
    for (const auto& [k, v] : iterable.object->entries) keys.push_back(make_string(k));
  } else {
    TS_THROW(kInvalidArgument, "Expected iterable or object type in for loop: got {}", type_name(iterable));
  }
  std::vector<Value> filtered;
  const std::vector<Value>* chosen = source;
  if (n.c) chosen = &filtered;
  for (const Value& item : *source) {
    step();
    if (n.c) {
      auto test_scope = std::make_shared<Env>();
      test_scope->parent = scope;
      bind_loop_variable(*n.a, item, *test_scope);
      if (truthy(eval(*n.c, test_scope))) filtered.push_back(item);
    }
  }
  const std::vector<Value>& items = *chosen;
  bool iterated = false;
  for (size_t i = 0; i < items.size(); ++i) {
    scope->set("loop", loop_object(i, items));
    bind_loop_variable(*n.a, items[i], *scope);
    std::string body;
    exec_block(n.list, scope, body);
    if (signal_ == Signal::kContinue) {
      signal_ = Signal::kNone;
      continue;
    }
    if (signal_ == Signal::kBreak) {
      signal_ = Signal::kNone;
      break;
    }
    out += body;
    iterated = true;
  }
  if (!iterated) exec_block(n.list2, scope, out);
}

void Interpreter::exec_set(const Node& n, const EnvPtr& env) {
  Value rhs;
  if (n.b) {
    rhs = eval(*n.b, env);
  } else {
    std::string body;
    exec_block(n.list, env, body);
    rhs = make_string(std::move(body));
  }
  const Node& target = *n.a;
  if (target.kind == NodeKind::kIdentifier) {
    env->set(target.text, std::move(rhs));
  } else if (target.kind == NodeKind::kTuple) {
    TS_CHECK(rhs.is_array(), kInvalidArgument, "Cannot unpack non-iterable type in set: {}", type_name(rhs));
    const auto& parts = rhs.array->items;
    TS_CHECK(parts.size() == target.list.size(), kInvalidArgument, "Too {} items to unpack in set",
             target.list.size() > parts.size() ? "few" : "many");
    for (size_t i = 0; i < parts.size(); ++i) {
      TS_CHECK(target.list[i]->kind == NodeKind::kIdentifier, kInvalidArgument,
               "Cannot unpack to non-identifier in set");
      env->set(target.list[i]->text, parts[i]);
    }
  } else if (target.kind == NodeKind::kMember) {
    Value object = eval(*target.a, env);
    TS_CHECK(object.kind == Kind::kNamespace, kInvalidArgument, "cannot assign attribute on non-namespace object");
    TS_CHECK(target.b->kind == NodeKind::kIdentifier && !target.flag, kInvalidArgument,
             "Cannot assign to member with non-identifier property");
    TS_CHECK(!rhs.holds_mutable(), kInvalidArgument, "namespace attribute '{}' cannot hold a {}", target.b->text,
             type_name(rhs));
    object.object->set(target.b->text, std::move(rhs));
    TS_CHECK(object.object->depth <= kMaxValueDepth, kInvalidArgument, "namespace nested over {} deep", kMaxValueDepth);
  } else {
    TS_THROW(kInvalidArgument, "Invalid left-hand side in set");
  }
}

namespace {
// Whether `body` reads the identifier `name` (kwargs / varargs of macros).
bool reads_identifier(const Node& n, const std::string& name) {
  if (n.kind == NodeKind::kIdentifier && n.text == name) return true;
  for (const Node* child : {n.a.get(), n.b.get(), n.c.get()})
    if (child && reads_identifier(*child, name)) return true;
  for (const auto* list : {&n.list, &n.list2})
    for (const auto& child : *list)
      if (child && reads_identifier(*child, name)) return true;
  return false;
}
}  // namespace

void Interpreter::bind_arguments(const std::string& display, const std::vector<NodePtr>& params, const Node* body_owner,
                                 CallArgs& args, const EnvPtr& scope) {
  std::vector<std::pair<std::string, Value>> keyword = args.keyword;
  std::vector<std::pair<std::string, const Node*>> pending_defaults;
  for (size_t i = 0; i < params.size(); ++i) {
    const Node& p = *params[i];
    const std::string& name = p.text;
    std::optional<Value> value;
    if (i < args.positional.size()) value = args.positional[i];
    if (!value) {
      for (auto it = keyword.begin(); it != keyword.end(); ++it) {
        if (it->first == name) {
          value = it->second;
          keyword.erase(it);
          break;
        }
      }
    }
    if (!value && p.kind == NodeKind::kKeywordArg) pending_defaults.emplace_back(name, p.a.get());
    scope->set(name, value ? *value : make_undefined());
  }
  const bool uses_kwargs = body_owner && reads_identifier(*body_owner, "kwargs");
  const bool uses_varargs = body_owner && reads_identifier(*body_owner, "varargs");
  if (uses_kwargs) {
    scope->set("kwargs", make_object(std::move(keyword)));
  } else if (!keyword.empty()) {
    TS_THROW(kInvalidArgument, "macro {} takes no keyword argument '{}'", display, keyword.front().first);
  }
  if (uses_varargs) {
    std::vector<Value> rest;
    for (size_t i = params.size(); i < args.positional.size(); ++i) rest.push_back(args.positional[i]);
    scope->set("varargs", make_array(std::move(rest)));
  } else if (args.positional.size() > params.size()) {
    TS_THROW(kInvalidArgument, "macro {} takes not more than {} argument(s)", display, params.size());
  }
  for (const auto& [name, expr] : pending_defaults) scope->set(name, eval(*expr, scope));
}

void Interpreter::define_macro(const Node& n, const EnvPtr& env) {
  const Node* node = &n;
  env->set(n.text, make_function(n.text, [node](Interpreter& in, const EnvPtr& call_env, CallArgs& args) {
             auto scope = std::make_shared<Env>();
             scope->parent = call_env;
             in.bind_arguments("'" + node->text + "'", node->list, node, args, scope);
             std::string out;
             in.exec_block(node->list2, scope, out);
             TS_CHECK(in.signal_ == Signal::kNone, kInvalidArgument, "break or continue escaping macro '{}'", node->text);
             return make_string(std::move(out));
           }));
}

void Interpreter::exec_call_block(const Node& n, const EnvPtr& env, std::string& out) {
  const Node* node = &n;
  std::weak_ptr<Env> weak_env = env;
  Value caller = make_function("caller", [node, weak_env](Interpreter& in, const EnvPtr&, CallArgs& args) {
    EnvPtr defining = weak_env.lock();
    TS_CHECK(defining != nullptr, kInvalidArgument, "caller() used after its call block ended");
    auto scope = std::make_shared<Env>();
    scope->parent = defining;
    in.bind_arguments("None", node->list2, node, args, scope);
    std::string body;
    in.exec_block(node->list, scope, body);
    TS_CHECK(in.signal_ == Signal::kNone, kInvalidArgument, "break or continue escaping a call block");
    return make_string(std::move(body));
  });
  const Node& call = *n.a;
  CallArgs args = eval_args(call.list, env);
  Value fn = eval(*call.a, env);
  TS_CHECK(fn.kind == Kind::kFunction, kInvalidArgument, "Cannot call something that is not a function: got {}",
           type_name(fn));
  auto scope = std::make_shared<Env>();
  scope->parent = env;
  scope->set("caller", std::move(caller));
  Value v = call_function(fn, args, scope);
  if (!v.is_none() && !v.is_undefined()) out += to_output(v);
}

CallArgs Interpreter::eval_args(const std::vector<NodePtr>& args, const EnvPtr& env) {
  CallArgs out;
  for (const auto& a : args) {
    if (a->kind == NodeKind::kSpread) {
      Value v = eval(*a->a, env);
      TS_CHECK(v.is_array(), kInvalidArgument, "Cannot unpack non-iterable type: {}", type_name(v));
      for (const auto& item : v.array->items) out.positional.push_back(item);
    } else if (a->kind != NodeKind::kKeywordArg && a->kind != NodeKind::kKeywordSpread) {
      out.positional.push_back(eval(*a, env));
    }
  }
  auto add_keyword = [&](const std::string& key, Value v) {
    TS_CHECK(out.kw(key) == nullptr, kInvalidArgument, "Got multiple values for keyword argument '{}'", key);
    out.keyword.emplace_back(key, std::move(v));
  };
  for (const auto& a : args) {
    if (a->kind == NodeKind::kKeywordArg) {
      add_keyword(a->text, eval(*a->a, env));
    } else if (a->kind == NodeKind::kKeywordSpread) {
      Value v = eval(*a->a, env);
      TS_CHECK(v.is_object(), kInvalidArgument, "Argument after ** must be a mapping, not {}", type_name(v));
      for (const auto& [k, val] : v.object->entries) add_keyword(k, val);
    }
  }
  return out;
}

Value Interpreter::call_function(const Value& fn, CallArgs& args, const EnvPtr& env) {
  TS_CHECK(fn.kind == Kind::kFunction, kInvalidArgument, "Cannot call something that is not a function: got {}",
           type_name(fn));
  DepthGuard guard(*this);
  return fn.function->call(*this, env, args);
}

Value Interpreter::eval(const Node& n, const EnvPtr& env) {
  DepthGuard guard(*this);
  step();
  line_ = n.line;
  switch (n.kind) {
    case NodeKind::kInteger: return make_int(n.number);
    case NodeKind::kFloat: return make_float(n.number);
    case NodeKind::kString:
    case NodeKind::kText: return make_string(n.text);
    case NodeKind::kIdentifier: return env->lookup(n.text);
    case NodeKind::kArray:
    case NodeKind::kTuple: {
      std::vector<Value> items;
      for (const auto& e : n.list) items.push_back(eval(*e, env));
      return make_array(std::move(items), n.kind == NodeKind::kTuple);
    }
    case NodeKind::kObject: {
      std::vector<std::pair<std::string, Value>> entries;
      for (size_t i = 0; i < n.list.size(); ++i) {
        Value key = eval(*n.list[i], env);
        TS_CHECK(key.is_string(), kInvalidArgument, "Object keys must be strings: got {}", type_name(key));
        entries.emplace_back(key.s(), eval(*n.list2[i], env));
      }
      return make_object(std::move(entries));
    }
    case NodeKind::kMember: return eval_member(n, env);
    case NodeKind::kCall: {
      CallArgs args = eval_args(n.list, env);
      Value fn = eval(*n.a, env);
      return call_function(fn, args, env);
    }
    case NodeKind::kUnary: return eval_unary(n, env);
    case NodeKind::kBinary: return eval_binary(n, env);
    case NodeKind::kFilter: return eval_filter(n, env);
    case NodeKind::kTest: {
      Value operand = eval(*n.a, env);
      CallArgs args = eval_args(n.list, env);
      const bool r = apply_test(n.text, operand, args);
      return make_bool(n.flag ? !r : r);
    }
    case NodeKind::kSelect: return truthy(eval(*n.b, env)) ? eval(*n.a, env) : make_undefined();
    case NodeKind::kTernary: return truthy(eval(*n.a, env)) ? eval(*n.b, env) : eval(*n.c, env);
    default: TS_THROW(kInvalidArgument, "unexpected syntax in an expression");
  }
}

Value Interpreter::eval_filter(const Node& n, const EnvPtr& env) {
  Value operand = eval(*n.a, env);
  const Node& f = *n.b;
  if (f.kind == NodeKind::kCall) {
    CallArgs args = eval_args(f.list, env);
    return apply_filter(operand, f.a->text, &args, env);
  }
  return apply_filter(operand, f.text, nullptr, env);
}

Value Interpreter::eval_unary(const Node& n, const EnvPtr& env) {
  Value v = eval(*n.a, env);
  if (n.text == "not") return make_bool(!truthy(v));
  const double sign = n.text == "-" ? -1 : 1;
  if (v.is_number()) return v.kind == Kind::kFloat ? make_float(sign * v.number) : make_int(sign * v.number);
  if (v.kind == Kind::kBool) return make_int(sign * (v.boolean ? 1 : 0));
  TS_THROW(kInvalidArgument, "Unknown operator \"{}\" for {}", n.text, type_name(v));
}

Value Interpreter::eval_member(const Node& n, const EnvPtr& env) {
  Value object = eval(*n.a, env);
  Value property;
  if (n.flag) {
    if (n.b->kind == NodeKind::kSlice) return eval_slice(object, *n.b, env);
    property = eval(*n.b, env);
  } else if (n.b->kind == NodeKind::kInteger) {
    property = make_int(n.b->number);
  } else {
    property = make_string(n.b->text);
  }
  return member(object, property);
}

Value Interpreter::member(const Value& object, const Value& property) {
  if (object.is_attribute_container()) {
    TS_CHECK(property.is_string(), kInvalidArgument, "Cannot access property with non-string: got {}",
             type_name(property));
    if (const Value* v = object.object->find(property.s())) return *v;
    return object.is_object() ? builtin_attribute(object, property.s()) : make_undefined();
  }
  if (object.is_array() || object.is_string()) {
    if (property.kind == Kind::kInt) {
      if (!std::isfinite(property.number)) return make_undefined();
      if (object.is_array()) {
        const auto& items = object.array->items;
        const double size = static_cast<double>(items.size());
        const double idx = property.number < 0 ? size + property.number : property.number;
        if (idx < 0 || idx >= size) return make_undefined();
        return items[static_cast<size_t>(idx)];
      }
      const auto chars = split_code_points(object.s());
      const double size = static_cast<double>(chars.size());
      const double idx = property.number < 0 ? size + property.number : property.number;
      if (idx < 0 || idx >= size) return make_undefined();
      return make_string(chars[static_cast<size_t>(idx)]);
    }
    TS_CHECK(property.is_string(), kInvalidArgument, "Cannot access property with non-string/non-number: got {}",
             type_name(property));
    return builtin_attribute(object, property.s());
  }
  TS_CHECK(property.is_string(), kInvalidArgument, "Cannot access property with non-string: got {}",
           type_name(property));
  return make_undefined();
}

Value Interpreter::eval_slice(const Value& object, const Node& slice, const EnvPtr& env) {
  TS_CHECK(object.is_array() || object.is_string(), kInvalidArgument, "Slice object must be an array or string");
  std::optional<int64_t> part[3];
  const Node* nodes[3] = {slice.a.get(), slice.b.get(), slice.c.get()};
  for (int i = 0; i < 3; ++i) {
    if (!nodes[i]) continue;
    Value v = eval(*nodes[i], env);
    if (v.is_undefined()) continue;
    TS_CHECK(v.kind == Kind::kInt, kInvalidArgument, "Slice {} must be numeric or undefined",
             i == 0 ? "start" : i == 1 ? "stop" : "step");
    part[i] = static_cast<int64_t>(std::fmax(std::fmin(v.number, 9e15), -9e15));
  }
  std::vector<std::string> chars;
  const std::vector<Value>* items = nullptr;
  if (object.is_string()) {
    chars = split_code_points(object.s());
  } else {
    items = &object.array->items;
  }
  const int64_t len = static_cast<int64_t>(items ? items->size() : chars.size());
  const int64_t stepv = part[2].value_or(1);
  const int64_t dir = stepv > 0 ? 1 : stepv < 0 ? -1 : 0;
  int64_t start = 0, stop = 0;
  if (dir >= 0) {
    start = part[0].value_or(0);
    start = start < 0 ? std::max<int64_t>(len + start, 0) : std::min(start, len);
    stop = part[1].value_or(len);
    stop = stop < 0 ? std::max<int64_t>(len + stop, 0) : std::min(stop, len);
  } else {
    start = part[0].value_or(len - 1);
    start = start < 0 ? std::max<int64_t>(len + start, -1) : std::min(start, len - 1);
    stop = part[1].value_or(-1);
    stop = stop < -1 ? std::max<int64_t>(len + stop, -1) : std::min(stop, len - 1);
  }
  std::vector<Value> out_items;
  std::string out_str;
  if (dir != 0) {
    for (int64_t i = start; dir * i < dir * stop; i += stepv) {
      step();
      if (items) {
        out_items.push_back((*items)[static_cast<size_t>(i)]);
      } else {
        out_str += chars[static_cast<size_t>(i)];
      }
    }
  }
  if (items) return make_array(std::move(out_items));
  charge(out_str.size());
  return make_string(std::move(out_str));
}

}  // namespace tessera::jinja
