// The Jinja parser (see parser.h): a recursive-descent parser over the token stream.
#include "tokenizer/jinja/parser.h"

#include "common/error.h"
#include "tokenizer/jinja/token_cursor.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <string_view>
#include <initializer_list>
#include <set>

namespace tessera::jinja {
namespace {

double parse_number(const std::string& text) {
  std::string_view v = text;
  double sign = 1;
  if (!v.empty() && (v[0] == '+' || v[0] == '-')) {
    sign = v[0] == '-' ? -1 : 1;
    v.remove_prefix(1);
  }
  double out = 0;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), out);
  if (r.ec == std::errc::result_out_of_range) out = std::numeric_limits<double>::infinity();
  return sign * out;
}

class Parser : private TokenCursor {
 public:
  explicit Parser(const std::vector<Token>& tokens) : TokenCursor(tokens) {}

  NodePtr program() {
    auto prog = node(NodeKind::kProgram);
    while (cur_ < t_.size()) prog->list.push_back(any());
    return prog;
  }

 private:
  // Statements until one of `names` opens; fails at the end of the template.
  void body_until(std::vector<NodePtr>& out, std::initializer_list<const char*> names, const char* what) {
    while (!is_statement(names)) {
      if (cur_ >= t_.size()) fail(fmt::format("missing {{% {} %}}", what));
      out.push_back(any());
    }
  }

  NodePtr any() {
    Nest nest(*this);
    const Token& tok = peek();
    switch (tok.type) {
      case Tok::kComment: {
        auto n = node(NodeKind::kComment);
        ++cur_;
        return n;
      }
      case Tok::kText: {
        auto n = node(NodeKind::kText);
        n->text = next().value;
        return n;
      }
      case Tok::kOpenStatement: return statement();
      case Tok::kOpenExpression: {
        ++cur_;
        auto e = expression();
        expect(Tok::kCloseExpression, "expected '}}'");
        return e;
      }
      default: fail(fmt::format("unexpected {} '{}'", tok_name(tok.type), tok.value));
    }
  }

  NodePtr statement() {
    expect(Tok::kOpenStatement, "expected '{%'");
    if (!is(Tok::kIdentifier)) fail(fmt::format("expected a statement name, got {}", tok_name(peek().type)));
    const std::string name = t_[cur_].value;
    ++cur_;
    if (name == "set") return set_statement();
    if (name == "if") {
      auto n = if_statement();
      expect_end_tag("endif");
      return n;
    }
    if (name == "for") {
      auto n = for_statement();
      expect_end_tag("endfor");
      return n;
    }
    if (name == "macro") {
      auto n = macro_statement();
      expect_end_tag("endmacro");
      return n;
    }
    if (name == "call") return call_block();
    if (name == "filter") return filter_block();
    if (name == "break" || name == "continue") {
      auto n = node(name == "break" ? NodeKind::kBreak : NodeKind::kContinue);
      expect(Tok::kCloseStatement, "expected '%}'");
      return n;
    }
    --cur_;
    fail(fmt::format("unsupported statement '{{% {} %}}'", name));
  }

  NodePtr set_statement() {
    auto n = node(NodeKind::kSet);
    n->a = expression_sequence(false);
    if (is(Tok::kEquals)) {
      ++cur_;
      n->b = expression_sequence(false);
    } else {
      expect(Tok::kCloseStatement, "expected '%}'");
      body_until(n->list, {"endset"}, "endset");
      expect(Tok::kOpenStatement, "expected '{%'");
      expect_identifier("endset");
    }
    expect(Tok::kCloseStatement, "expected '%}'");
    return n;
  }

  NodePtr if_statement() {
    Nest nest(*this);
    auto n = node(NodeKind::kIf);
    n->a = expression();
    expect(Tok::kCloseStatement, "expected '%}'");
    body_until(n->list, {"elif", "else", "endif"}, "endif");
    if (is_statement({"elif"})) {
      cur_ += 2;
      n->list2.push_back(if_statement());
    } else if (is_statement({"else"})) {
      cur_ += 2;
      expect(Tok::kCloseStatement, "expected '%}'");
      body_until(n->list2, {"endif"}, "endif");
    }
    return n;
  }

  NodePtr for_statement() {
    auto n = node(NodeKind::kFor);
    n->a = expression_sequence(true);
    if (n->a->kind != NodeKind::kIdentifier && n->a->kind != NodeKind::kTuple)
      fail("expected an identifier or tuple as the loop variable");
    if (!is_identifier("in")) fail("expected 'in' after the loop variable");
    ++cur_;
    NodePtr iterable = expression();
    if (iterable->kind == NodeKind::kSelect) {
      n->b = std::move(iterable->a);
      n->c = std::move(iterable->b);
    } else {
      n->b = std::move(iterable);
    }
    expect(Tok::kCloseStatement, "expected '%}'");
    body_until(n->list, {"endfor", "else"}, "endfor");
    if (is_statement({"else"})) {
      cur_ += 2;
      expect(Tok::kCloseStatement, "expected '%}'");
      body_until(n->list2, {"endfor"}, "endfor");
    }
    return n;
  }

  NodePtr macro_statement() {
    auto n = node(NodeKind::kMacro);
    NodePtr name = primary();
    if (name->kind != NodeKind::kIdentifier) fail("expected an identifier after 'macro'");
    n->text = name->text;
    n->list = arguments(true);
    expect(Tok::kCloseStatement, "expected '%}'");
    body_until(n->list2, {"endmacro"}, "endmacro");
    return n;
  }

  NodePtr call_block() {
    auto n = node(NodeKind::kCallBlock);
    if (is(Tok::kOpenParen)) n->list2 = arguments(true);
    NodePtr callee = primary();
    if (callee->kind != NodeKind::kIdentifier) fail("expected an identifier after 'call'");
    auto call = node(NodeKind::kCall);
    call->a = std::move(callee);
    call->list = arguments(false);
    n->a = std::move(call);
    expect(Tok::kCloseStatement, "expected '%}'");
    body_until(n->list, {"endcall"}, "endcall");
    expect_end_tag("endcall");
    return n;
  }

  NodePtr filter_block() {
    auto n = node(NodeKind::kFilterBlock);
    NodePtr f = primary();
    if (f->kind != NodeKind::kIdentifier) fail("expected a filter name after 'filter'");
    if (is(Tok::kOpenParen)) f = call_expression(std::move(f));
    n->a = std::move(f);
    expect(Tok::kCloseStatement, "expected '%}'");
    body_until(n->list, {"endfilter"}, "endfilter");
    expect_end_tag("endfilter");
    return n;
  }

  NodePtr expression_sequence(bool primary_only) {
    auto first = primary_only ? primary() : expression();
    if (!is(Tok::kComma)) return first;
    auto tuple = node(NodeKind::kTuple);
    tuple->list.push_back(std::move(first));
    while (is(Tok::kComma)) {
      ++cur_;
      tuple->list.push_back(primary_only ? primary() : expression());
    }
    return tuple;
  }

  NodePtr expression() {
    Nest nest(*this);
    return if_expression();
  }

  NodePtr if_expression() {
    NodePtr a = or_expression();
    if (!is_identifier("if")) return a;
    ++cur_;
    NodePtr test = or_expression();
    if (is_identifier("else")) {
      ++cur_;
      auto n = node(NodeKind::kTernary);
      n->a = std::move(test);
      n->b = std::move(a);
      n->c = if_expression();
      return n;
    }
    auto n = node(NodeKind::kSelect);
    n->a = std::move(a);
    n->b = std::move(test);
    return n;
  }

  NodePtr binary(std::string op, NodePtr l, NodePtr r) {
    auto n = node(NodeKind::kBinary);
    n->text = std::move(op);
    n->a = std::move(l);
    n->b = std::move(r);
    return height(std::move(n));
  }

  NodePtr or_expression() {
    NodePtr left = and_expression();
    while (is_identifier("or")) {
      ++cur_;
      left = binary("or", std::move(left), and_expression());
    }
    return left;
  }

  NodePtr and_expression() {
    NodePtr left = not_expression();
    while (is_identifier("and")) {
      ++cur_;
      left = binary("and", std::move(left), not_expression());
    }
    return left;
  }

  // As in @huggingface/jinja, each further `not` at this level replaces what was parsed before it
  // (`not a not b` is `not b`); a lone `not` elsewhere is read as an identifier.
  NodePtr not_expression() {
    if (!is_identifier("not")) return comparison();
    Nest nest(*this);
    NodePtr result;
    while (is_identifier("not")) {
      auto n = node(NodeKind::kUnary);
      ++cur_;
      n->text = "not";
      n->a = not_expression();
      result = height(std::move(n));
    }
    return result;
  }

  NodePtr comparison() {
    NodePtr left = additive();
    while (true) {
      std::string op;
      if (is_identifier("not") && is_identifier("in", 1)) {
        op = "not in";
        cur_ += 2;
      } else if (is_identifier("in")) {
        op = "in";
        ++cur_;
      } else if (is(Tok::kComparison)) {
        op = next().value;
      } else {
        break;
      }
      left = binary(op, std::move(left), additive());
    }
    return left;
  }

  NodePtr additive() {
    NodePtr left = multiplicative();
    while (is(Tok::kAdditive)) {
      std::string op = next().value;
      left = binary(op, std::move(left), multiplicative());
    }
    return left;
  }

  NodePtr multiplicative() {
    NodePtr left = power();
    while (is(Tok::kMultiplicative)) {
      std::string op = next().value;
      left = binary(op, std::move(left), power());
    }
    return left;
  }

  NodePtr power() {
    NodePtr left = test_expression();
    while (is(Tok::kPower)) {
      ++cur_;
      left = binary("**", std::move(left), test_expression());
    }
    return left;
  }

  NodePtr test_expression() {
    NodePtr operand = filter_expression();
    while (is_identifier("is")) {
      ++cur_;
      auto n = node(NodeKind::kTest);
      if (is_identifier("not")) {
        n->flag = true;
        ++cur_;
      }
      NodePtr name = primary();
      if (name->kind != NodeKind::kIdentifier) fail("expected a test name after 'is'");
      n->text = name->text;
      if (is(Tok::kOpenParen)) n->list = arguments(false);
      n->a = std::move(operand);
      operand = height(std::move(n));
    }
    return operand;
  }

  NodePtr filter_expression() {
    NodePtr operand = unary_sign();
    while (is(Tok::kPipe)) {
      ++cur_;
      auto n = node(NodeKind::kFilter);
      NodePtr f = primary();
      if (f->kind != NodeKind::kIdentifier) fail("expected a filter name after '|'");
      if (is(Tok::kOpenParen)) f = call_expression(std::move(f));
      n->a = std::move(operand);
      n->b = std::move(f);
      operand = height(std::move(n));
    }
    return operand;
  }

  NodePtr unary_sign() {
    if ((is(Tok::kUnary) || is(Tok::kAdditive)) && (peek().value == "-" || peek().value == "+")) {
      Nest nest(*this);
      auto n = node(NodeKind::kUnary);
      n->text = next().value;
      n->a = unary_sign();
      return height(std::move(n));
    }
    return call_member();
  }

  NodePtr call_member() {
    NodePtr member = member_expression(primary());
    if (is(Tok::kOpenParen)) return call_expression(std::move(member));
    return member;
  }

  NodePtr call_expression(NodePtr callee) {
    while (true) {
      auto n = node(NodeKind::kCall);
      n->a = std::move(callee);
      n->list = arguments(false);
      callee = member_expression(height(std::move(n)));
      if (!is(Tok::kOpenParen)) return callee;
    }
  }

  std::vector<NodePtr> arguments(bool parameters) {
    Nest nest(*this);
    expect(Tok::kOpenParen, "expected '('");
    std::vector<NodePtr> args;
    std::set<std::string> names;
    bool saw_keyword = false, saw_spread = false;
    while (!is(Tok::kCloseParen)) {
      if (cur_ >= t_.size()) fail("missing ')'");
      const bool kw_spread = is(Tok::kPower);
      const bool spread = is(Tok::kMultiplicative) && peek().value == "*";
      if (parameters && (kw_spread || spread)) fail("argument unpacking is not allowed in parameter declarations");
      if (kw_spread) {
        auto n = node(NodeKind::kKeywordSpread);
        ++cur_;
        n->a = expression();
        args.push_back(std::move(n));
        if (is(Tok::kComma)) ++cur_;
        if (!is(Tok::kCloseParen)) fail("'**' must be applied to the final argument");
        break;
      }
      NodePtr arg;
      if (spread) {
        if (saw_spread) fail("only one '*' argument unpacking is allowed");
        saw_spread = true;
        arg = node(NodeKind::kSpread);
        ++cur_;
        arg->a = expression();
      } else {
        arg = expression();
        if (is(Tok::kEquals)) {
          ++cur_;
          if (arg->kind != NodeKind::kIdentifier)
            fail(parameters ? "expected an identifier for a parameter declaration" : "expected an identifier for a keyword argument");
          auto kw = node(NodeKind::kKeywordArg);
          kw->text = arg->text;
          kw->a = expression();
          arg = std::move(kw);
        }
        if (parameters) {
          if (arg->kind != NodeKind::kIdentifier && arg->kind != NodeKind::kKeywordArg)
            fail("expected an identifier for a parameter declaration");
          if (!names.insert(arg->text).second) fail(fmt::format("duplicate parameter name '{}'", arg->text));
        }
        if (arg->kind == NodeKind::kKeywordArg) {
          saw_keyword = true;
        } else if (saw_keyword) {
          fail(parameters ? "non-default argument follows default argument"
                          : "positional arguments must come before keyword arguments");
        } else if (saw_spread) {
          fail("positional arguments must not follow '*' argument unpacking");
        }
      }
      args.push_back(std::move(arg));
      if (is(Tok::kComma)) ++cur_;
    }
    expect(Tok::kCloseParen, "expected ')'");
    return args;
  }

  NodePtr subscript() {
    std::vector<NodePtr> parts;
    bool is_slice = false;
    while (!is(Tok::kCloseSquare)) {
      if (cur_ >= t_.size()) fail("missing ']'");
      if (is(Tok::kColon)) {
        parts.push_back(nullptr);
        ++cur_;
        is_slice = true;
      } else {
        parts.push_back(expression());
        if (is(Tok::kColon)) {
          ++cur_;
          is_slice = true;
        }
      }
    }
    if (parts.empty()) fail("expected at least one argument in '[]'");
    if (!is_slice) return std::move(parts[0]);
    if (parts.size() > 3) fail("expected at most 3 parts in a slice");
    auto n = node(NodeKind::kSlice);
    parts.resize(3);
    n->a = std::move(parts[0]);
    n->b = std::move(parts[1]);
    n->c = std::move(parts[2]);
    return n;
  }

  NodePtr member_expression(NodePtr object) {
    while (is(Tok::kDot) || is(Tok::kOpenSquare)) {
      const bool computed = is(Tok::kOpenSquare);
      ++cur_;
      auto n = node(NodeKind::kMember);
      n->flag = computed;
      if (computed) {
        Nest nest(*this);
        n->b = subscript();
        expect(Tok::kCloseSquare, "expected ']'");
      } else {
        n->b = primary();
        if (n->b->kind != NodeKind::kIdentifier && n->b->kind != NodeKind::kInteger)
          fail("expected an identifier or integer after '.'");
      }
      n->a = std::move(object);
      object = height(std::move(n));
    }
    return object;
  }

  NodePtr primary() {
    Nest nest(*this);
    const Token& tok = peek();
    switch (tok.type) {
      case Tok::kNumber: {
        auto n = node(tok.value.find('.') != std::string::npos ? NodeKind::kFloat : NodeKind::kInteger);
        n->number = parse_number(tok.value);
        ++cur_;
        return n;
      }
      case Tok::kString: {
        auto n = node(NodeKind::kString);
        n->text = next().value;
        while (is(Tok::kString)) n->text += next().value;
        return n;
      }
      case Tok::kIdentifier: {
        auto n = node(NodeKind::kIdentifier);
        n->text = next().value;
        return n;
      }
      case Tok::kOpenParen: {
        ++cur_;
        auto e = expression_sequence(false);
        expect(Tok::kCloseParen, "expected ')'");
        return e;
      }
      case Tok::kOpenSquare: {
        auto n = node(NodeKind::kArray);
        ++cur_;
        while (!is(Tok::kCloseSquare)) {
          if (cur_ >= t_.size()) fail("missing ']'");
          n->list.push_back(expression());
          if (is(Tok::kComma)) ++cur_;
        }
        ++cur_;
        return n;
      }
      case Tok::kOpenCurly: {
        auto n = node(NodeKind::kObject);
        ++cur_;
        while (!is(Tok::kCloseCurly)) {
          if (cur_ >= t_.size()) fail("missing '}'");
          n->list.push_back(expression());
          expect(Tok::kColon, "expected ':' between key and value");
          n->list2.push_back(expression());
          if (is(Tok::kComma)) ++cur_;
        }
        ++cur_;
        return n;
      }
      default: fail(fmt::format("unexpected {} '{}'", tok_name(tok.type), tok.value));
    }
  }

};

}  // namespace

NodePtr parse(const std::vector<Token>& tokens) { return Parser(tokens).program(); }

}  // namespace tessera::jinja
