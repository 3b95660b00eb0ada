// Batch driver for the parity test: reads JSON strings (one per line) from standard input, encodes
// each with add_special_tokens=true and decodes the ids, and prints one JSON object per line:
// {"ids": [...], "text": decode(ids)} or {"error": "..."}. Usage: tokenizer_parity_driver MODEL_DIR
// It must never stop at one bad line: each line is answered.
#include <nlohmann/json.hpp>

#include <iostream>
#include <string>

#include "common/error.h"
#include "tokenizer/tokenizer.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: tokenizer_parity_driver MODEL_DIR < lines.jsonl\n";
    return 2;
  }
  try {
    auto tokenizer = tessera::Tokenizer::from_directory(argv[1]);
    std::string line;
    while (std::getline(std::cin, line)) {
      nlohmann::json out;
      try {
        auto text = nlohmann::json::parse(line).get<std::string>();
        auto ids = tokenizer->encode(text, true);
        out["ids"] = ids;
        out["text"] = tokenizer->decode(ids, false);
      } catch (const std::exception& e) {
        out = {{"error", e.what()}};
      }
      std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    }
  } catch (const tessera::Error& e) {
    std::cerr << tessera::error_code_name(e.code()) << ": " << e.what() << '\n';
    return 1;
  }
  return 0;
}
