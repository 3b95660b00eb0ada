// The Jinja interpreter: evaluates a parsed template against variables, with the scoping and value
// semantics of @huggingface/jinja. Every render is bounded: evaluation steps, bytes produced,
// output size and evaluation depth all have limits, so an adversarial template or message list
// cannot hang the server, exhaust memory or overflow the stack.
// It must never execute anything but the template language (no I/O, no host calls but the clock).
#pragma once

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/value.h"

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

namespace tessera::jinja {

struct RenderLimits {
  size_t max_output_bytes = size_t{32} << 20;  // the rendered prompt
  size_t max_work_bytes = size_t{256} << 20;    // bytes produced by all string/array operations
  uint64_t max_steps = 20'000'000;             // nodes evaluated
  int max_depth = 200;                         // nested evaluations (macro recursion included)
  size_t max_range = 1'000'000;                // elements of one range()
};

// A variable scope; loops, macros and call blocks open child scopes.
struct Env {
  std::shared_ptr<Env> parent;
  std::unordered_map<std::string, Value> vars;

  Value lookup(const std::string& name) const;
  void set(const std::string& name, Value v) { vars[name] = std::move(v); }
};
using EnvPtr = std::shared_ptr<Env>;

class Interpreter {
 public:
  explicit Interpreter(RenderLimits limits) : limits_(limits) {}

  // Renders the program; throws tessera::Error(kInvalidArgument) on template errors.
  std::string run(const Node& program, const EnvPtr& globals);

  Value eval(const Node& n, const EnvPtr& env);
  Value call_function(const Value& fn, CallArgs& args, const EnvPtr& env);
  Value apply_filter(const Value& operand, const std::string& name, CallArgs* args, const EnvPtr& env);
  bool apply_test(const std::string& name, const Value& operand, const CallArgs& args);
  Value member(const Value& object, const Value& property);

  // Budget accounting: every evaluated node is a step; produced bytes count as work.
  void step();
  void charge(size_t bytes);
  int line() const { return line_; }
  bool raised() const { return raised_; }
  void mark_raised() { raised_ = true; }
  const RenderLimits& limits() const { return limits_; }

 private:
  enum class Signal { kNone, kBreak, kContinue };
  struct DepthGuard;

  void exec_block(const std::vector<NodePtr>& body, const EnvPtr& env, std::string& out);
  void exec(const Node& n, const EnvPtr& env, std::string& out);
  void exec_for(const Node& n, const EnvPtr& env, std::string& out);
  void exec_set(const Node& n, const EnvPtr& env);
  void define_macro(const Node& n, const EnvPtr& env);
  void exec_call_block(const Node& n, const EnvPtr& env, std::string& out);
  void bind_arguments(const std::string& display, const std::vector<NodePtr>& params, const Node* body_owner,
                      CallArgs& args, const EnvPtr& scope);
  CallArgs eval_args(const std::vector<NodePtr>& args, const EnvPtr& env);
  Value eval_binary(const Node& n, const EnvPtr& env);
  Value eval_unary(const Node& n, const EnvPtr& env);
  Value eval_member(const Node& n, const EnvPtr& env);
  Value eval_slice(const Value& object, const Node& slice, const EnvPtr& env);
  Value eval_filter(const Node& n, const EnvPtr& env);

  RenderLimits limits_;
  uint64_t steps_ = 0;
  size_t work_ = 0;
  int depth_ = 0;
  int line_ = 0;
  bool raised_ = false;
  Signal signal_ = Signal::kNone;
};

// Registers namespace, range, raise_exception, strftime_now and the constants in `env`.
void install_globals(Env& env);
// Methods of strings and objects reachable as attributes (`s.startswith`, `d.items`), or undefined.
Value builtin_attribute(const Value& object, const std::string& name);
// str.title() and str.capitalize() as @huggingface/jinja does them (/\b\w/ upper-cased; first char upper).
std::string title_case(const std::string& s);
std::string capitalize(const std::string& s);
// dict.dictsort(case_sensitive=false, by='key', reverse=false): [key, value] pairs, sorted.
Value dictsort(const Value& object, const CallArgs& args);

}  // namespace tessera::jinja
