// The syntax tree of a parsed template: one node type with a kind and typed slots, mirroring the
// node kinds of @huggingface/jinja. Nodes are immutable after parsing.
// It must never hold anything but the parsed template (no runtime values).
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace tessera::jinja {

enum class NodeKind : uint8_t {
  // Statements
  kProgram,      // list: body
  kText,         // text
  kComment,
  kIf,           // a: test, list: body, list2: alternate
  kFor,          // a: loop variable, b: iterable, c: filter test (`for x in xs if c`) or null; list: body, list2: else
  kSet,          // a: target, b: value or null (block set: list is the body)
  kMacro,        // text: name, list: parameters, list2: body
  kCallBlock,    // a: call expression, list: body, list2: caller parameters
  kFilterBlock,  // a: filter (identifier or call), list: body
  kBreak,
  kContinue,
  // Expressions
  kInteger,      // number
  kFloat,        // number
  kString,       // text
  kIdentifier,   // text
  kArray,        // list
  kTuple,        // list
  kObject,       // list: keys, list2: values
  kMember,       // a: object, b: property, flag: computed
  kSlice,        // a: start, b: stop, c: step (each may be null)
  kCall,         // a: callee, list: arguments
  kKeywordArg,   // text: name, a: value
  kSpread,       // a
  kKeywordSpread,// a
  kUnary,        // text: operator, a
  kBinary,       // text: operator, a, b
  kFilter,       // a: operand, b: filter (identifier or call)
  kTest,         // a: operand, text: test name, flag: negated, list: arguments
  kSelect,       // a: value, b: condition (`x if c` without else)
  kTernary,      // a: condition, b: if true, c: if false
};

struct Node;
using NodePtr = std::unique_ptr<Node>;

struct Node {
  NodeKind kind;
  int line = 0;
  std::string text;
  double number = 0;
  bool flag = false;
  int depth = 1;  // height of the subtree (bounded by the parser)
  NodePtr a, b, c;
  std::vector<NodePtr> list, list2;
};

}  // namespace tessera::jinja
