// The Jinja parser: tokens -> syntax tree, with the grammar and operator precedence of
// @huggingface/jinja (filters bind tighter than unary minus; `not` looser than comparisons).
// Extension over it: tests take arguments (`x is divisibleby(3)`).
// It must never recurse deeper than kMaxParseDepth; errors are tessera::Error(kUnimplemented) with a line.
#pragma once

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"

#include <vector>

namespace tessera::jinja {

constexpr int kMaxParseDepth = 64;
constexpr int kMaxTreeHeight = 256;  // left-deep chains (a+b+c..., x|f|g...) included

NodePtr parse(const std::vector<Token>& tokens);

}  // namespace tessera::jinja
