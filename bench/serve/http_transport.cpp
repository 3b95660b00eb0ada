// OpenAI request bodies and the model lookup (GET /v1/models) for the HTTP transport.
#include "bench/serve/http_transport.h"

#include <nlohmann/json.hpp>

#include "bench/serve/streaming_call.h"
#include "common/error.h"

namespace tessera::bench {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string request_body(const LoadOptions& o, const std::string& model, const WorkItem& w) {
  nlohmann::json body = {{"model", model},
                         {"max_tokens", w.output_len},
                         {"temperature", o.temperature},
                         {"stream", true},
                         {"stream_options", {{"include_usage", true}}}};
  if (o.ignore_eos) body["ignore_eos"] = true;
  if (o.target.api == ApiKind::kChat) {
    body["messages"] = nlohmann::json::array({{{"role", "user"}, {"content", w.prompt_text}}});
  } else if (!w.prompt_ids.empty()) {
    body["prompt"] = w.prompt_ids;
  } else {
    body["prompt"] = w.prompt_text;
  }
  return body.dump();
}

std::string api_path(const Target& t) {
  return t.base_path + (t.api == ApiKind::kChat ? "/v1/chat/completions" : "/v1/completions");
}

tcp::resolver::results_type resolve(const Target& t) {
  net::io_context io;
  tcp::resolver resolver(io);
  boost::system::error_code ec;
  auto r = resolver.resolve(t.host, t.port, ec);
  TS_CHECK(!ec, kUnavailable, "cannot resolve {}:{}: {}", t.host, t.port, ec.message());
  return r;
}

}  // namespace

HttpTransport::HttpTransport(const LoadOptions& options) : options_(options), endpoints_(resolve(options.target)) {}

std::string HttpTransport::resolve_model() {
  const Target& t = options_.target;
  if (!t.model.empty()) return t.model;
  const std::string body = http_get(t.host, t.port, t.base_path + "/v1/models", t.api_key, 30);
  const auto j = nlohmann::json::parse(body, nullptr, false);
  TS_CHECK(!j.is_discarded() && j.contains("data") && j["data"].is_array() && !j["data"].empty() &&
               j["data"][0].contains("id") && j["data"][0]["id"].is_string(),
           kUnavailable, "GET /v1/models gave no model id: {}", body.substr(0, 200));
  return j["data"][0]["id"].get<std::string>();
}

void HttpTransport::start(net::io_context& io, const std::string& model, const WorkItem& item, RequestRecord record,
                          std::function<void(RequestRecord)> done) {
  const Target& t = options_.target;
  CallSpec spec{t.host + ":" + t.port, api_path(t), request_body(options_, model, item), t.api_key,
                options_.request_timeout_s};
  start_streaming_call(io, endpoints_, std::move(spec), std::move(record), std::move(done));
}

}  // namespace tessera::bench
