// Test driver for the chat template parity test: reads a JSON file of render cases
// ({"cases": [{template, bos_token, eos_token, messages, tools, add_generation_prompt, extra}]})
// and prints one JSON array of results ({"ok": true, "output": ...} or {"ok": false, "error": ...}).
// It must never hide an error: a case that throws reports the message.
#include "common/error.h"
#include "tokenizer/chat_template.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: jinja_render_cases CASES.json\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::cerr << "cannot open " << argv[1] << "\n";
    return 2;
  }
  const auto doc = nlohmann::ordered_json::parse(in);
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  for (const auto& c : doc.at("cases")) {
    nlohmann::ordered_json r;
    try {
      tessera::ChatTemplate tmpl(c.at("template").get<std::string>(), c.value("bos_token", ""), c.value("eos_token", ""));
      const auto tools = c.contains("tools") ? c.at("tools") : nlohmann::ordered_json();
      const auto extra = c.contains("extra") ? c.at("extra") : nlohmann::ordered_json::object();
      r["ok"] = true;
      r["output"] = tmpl.render(c.at("messages"), tools, c.value("add_generation_prompt", false), extra);
    } catch (const tessera::Error& e) {
      r["ok"] = false;
      r["error"] = e.what();
      r["code"] = tessera::error_code_name(e.code());
    }
    results.push_back(std::move(r));
  }
  std::cout << results.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return 0;
}
