// TokenCursor: the parser's position in the token stream, with the checks every grammar rule
// uses (expect, lookahead, the nesting and tree-height guards) and errors naming the line.
// It must never read past the last token: every access is bounds-checked and fails cleanly.
#pragma once

#include "common/error.h"
#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/parser.h"

#include <algorithm>
#include <initializer_list>
#include <string>
#include <vector>

namespace tessera::jinja {

class TokenCursor {
 protected:
  explicit TokenCursor(const std::vector<Token>& tokens) : t_(tokens) {}

  // Depth guard: every nested statement or parenthesised expression passes through one.
  struct Nest {
    explicit Nest(TokenCursor& p) : p_(p) {
      if (++p_.depth_ > kMaxParseDepth) p_.fail(fmt::format("nesting deeper than {} levels", kMaxParseDepth));
    }
    ~Nest() { --p_.depth_; }
    TokenCursor& p_;
  };

  [[noreturn]] void fail(const std::string& what) const {
    const int line = cur_ < t_.size() ? t_[cur_].line : (t_.empty() ? 1 : t_.back().line);
    TS_THROW(kUnimplemented, "chat template line {}: {}", line, what);
  }
  NodePtr node(NodeKind kind) const {
    auto n = std::make_unique<Node>();
    n->kind = kind;
    n->line = cur_ < t_.size() ? t_[cur_].line : (t_.empty() ? 1 : t_.back().line);
    return n;
  }
  const Token& peek() const {
    if (cur_ >= t_.size()) fail("unexpected end of template");
    return t_[cur_];
  }
  const Token& next() {
    const Token& tok = peek();
    ++cur_;
    return tok;
  }
  bool is(Tok type, size_t ahead = 0) const { return cur_ + ahead < t_.size() && t_[cur_ + ahead].type == type; }
  bool is_identifier(const char* name, size_t ahead = 0) const {
    return is(Tok::kIdentifier, ahead) && t_[cur_ + ahead].value == name;
  }
  bool is_statement(std::initializer_list<const char*> names) const {
    if (!is(Tok::kOpenStatement) || !is(Tok::kIdentifier, 1)) return false;
    return std::any_of(names.begin(), names.end(), [&](const char* n) { return t_[cur_ + 1].value == n; });
  }
  void expect(Tok type, const char* what) {
    if (cur_ >= t_.size()) fail(fmt::format("{}, reached the end of the template", what));
    if (t_[cur_].type != type)
      fail(fmt::format("{}, got {} '{}'", what, tok_name(t_[cur_].type), t_[cur_].value));
    ++cur_;
  }
  void expect_identifier(const char* name) {
    if (!is_identifier(name)) fail(fmt::format("expected '{}'", name));
    ++cur_;
  }
  void expect_end_tag(const char* name) {
    expect(Tok::kOpenStatement, fmt::format("expected {{% {} %}}", name).c_str());
    expect_identifier(name);
    expect(Tok::kCloseStatement, "expected '%}'");
  }
  // Records the subtree height; a tree too tall to evaluate or destroy recursively is rejected.
  NodePtr height(NodePtr n) {
    int h = 0;
    for (const Node* c : {n->a.get(), n->b.get(), n->c.get()})
      if (c) h = std::max(h, c->depth);
    for (const auto* list : {&n->list, &n->list2})
      for (const auto& c : *list)
        if (c) h = std::max(h, c->depth);
    n->depth = h + 1;
    if (n->depth > kMaxTreeHeight) fail(fmt::format("expression nested deeper than {} levels", kMaxTreeHeight));
    return n;
  }

  const std::vector<Token>& t_;
  size_t cur_ = 0;
  int depth_ = 0;
};

}  // namespace tessera::jinja
