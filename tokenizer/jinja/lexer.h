// The Jinja lexer: the whitespace preprocessing transformers configures (trim_blocks, lstrip_blocks,
// the transformers-only {% generation %} tag removed) and the token stream, both exactly as
// @huggingface/jinja does them. Each token carries its line in the original source.
// It must never accept input it cannot tokenize: errors are tessera::Error(kUnimplemented) with a line.
#pragma once

#include <string>
#include <vector>

namespace tessera::jinja {

enum class Tok : uint8_t {
  kText, kNumber, kString, kIdentifier, kEquals, kOpenParen, kCloseParen, kOpenStatement, kCloseStatement,
  kOpenExpression, kCloseExpression, kOpenSquare, kCloseSquare, kOpenCurly, kCloseCurly, kComma, kDot, kColon,
  kPipe, kAdditive, kMultiplicative, kPower, kComparison, kUnary, kComment,
};

const char* tok_name(Tok t);

struct Token {
  Tok type;
  std::string value;
  int line;
};

constexpr size_t kMaxTemplateBytes = 1 << 20;

std::vector<Token> tokenize(const std::string& source);

}  // namespace tessera::jinja
