// HTTP routes; see http_router.h.
#include "server/http_router.h"

#include <fmt/format.h>

#include "server/api_error.h"
#include "server/error_mapping.h"
#include "server/json_fields.h"

namespace tessera::server {

using nlohmann::json;

namespace {

HttpReply json_reply(unsigned status, const json& body) {
  return {status, "application/json", body.dump(-1, ' ', false, json::error_handler_t::replace), {}};
}

std::string_view path_of(std::string_view target) {
  const auto q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

}  // namespace

HttpRouter::HttpRouter(ServingCore& core, const ApiKeyAuth& auth, MetricsRegistry& metrics)
    : core_(core), auth_(auth), metrics_(metrics) {}

HttpReply HttpRouter::error_reply(const Error& e) {
  HttpReply r = json_reply(http_status(e.code()), error_body(e));
  if (e.code() == ErrorCode::kResourceExhausted) r.headers.emplace_back("Retry-After", "1");
  if (e.code() == ErrorCode::kUnavailable) r.headers.emplace_back("Retry-After", "5");
  if (e.code() == ErrorCode::kUnauthenticated) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

void HttpRouter::record(const std::string& route, unsigned status) {
  metrics_.counter("tessera_http_requests_total", "HTTP requests answered, by route and status",
                   {{"route", route}, {"status", std::to_string(status)}})
      .inc();
}

RouteResult HttpRouter::handle(const HttpRequestView& req) {
  const std::string path(path_of(req.target));
  try {
    return route(req, path);
  } catch (const Error& e) {
    RouteResult r;
    r.route = path.size() <= 64 ? path : "other";
    r.reply = error_reply(e);
    return r;
  } catch (const std::exception& e) {
    RouteResult r;
    r.route = "other";
    r.reply = error_reply(Error(ErrorCode::kInternal, e.what()));
    return r;
  }
}

RouteResult HttpRouter::route(const HttpRequestView& req, const std::string& path) {
  RouteResult r;
  const bool get = req.method == "GET", post = req.method == "POST";
  auto method_check = [&](bool ok, const char* allowed) {
    if (!ok) {
      HttpReply reply = json_reply(405, error_body(ErrorCode::kInvalidArgument,
                                                   fmt::format("{} does not accept {}; use {}", path,
                                                               req.method.substr(0, 16), allowed)));
      reply.headers.emplace_back("Allow", allowed);
      r.reply = std::move(reply);
    }
    return ok;
  };
  // Unauthenticated: liveness, readiness, metrics.
  if (path == "/health") {
    r.route = path;
    if (method_check(get, "GET")) r.reply = health();
    return r;
  }
  if (path == "/ready") {
    r.route = path;
    if (method_check(get, "GET")) r.reply = ready();
    return r;
  }
  if (path == "/metrics") {
    r.route = path;
    if (method_check(get, "GET")) r.reply = HttpReply{200, "text/plain; version=0.0.4", metrics_.render_prometheus(), {}};
    return r;
  }
  const bool known = path == "/v1/completions" || path == "/v1/chat/completions" || path == "/tokenize" ||
                     path == "/v1/tokenize" || path == "/detokenize" || path == "/v1/detokenize" ||
                     path == "/v1/models" || path.rfind("/v1/models/", 0) == 0;
  if (!known) {
    r.route = "other";
    r.reply = json_reply(404, error_body(ErrorCode::kNotFound, fmt::format("no route {} {}", req.method.substr(0, 16),
                                                                           path.substr(0, 128))));
    return r;
  }
  r.route = path.rfind("/v1/models/", 0) == 0 ? "/v1/models/{id}" : path;
  if (!auth_.allows(req.authorization)) {
    r.reply = error_reply(Error(ErrorCode::kUnauthenticated,
                                req.authorization.empty() ? "missing API key: send Authorization: Bearer <key>"
                                                          : "invalid API key"));
    return r;
  }
  if (path == "/v1/models") {
    if (method_check(get, "GET")) r.reply = models("");
  } else if (path.rfind("/v1/models/", 0) == 0) {
    if (method_check(get, "GET")) r.reply = models(std::string_view(path).substr(11));
  } else if (path == "/v1/completions" || path == "/v1/chat/completions") {
    if (method_check(post, "POST")) {
      RouteResult g = generate(req, path == "/v1/chat/completions");
      g.route = r.route;
      return g;
    }
  } else if (path == "/tokenize" || path == "/v1/tokenize") {
    if (method_check(post, "POST")) r.reply = tokenize(req);
  } else if (method_check(post, "POST")) {
    r.reply = detokenize(req);
  }
  return r;
}

HttpReply HttpRouter::health() const {
  const EngineHealth h = core_.health();
  if (h.alive) return json_reply(200, {{"status", "ok"}});
  return json_reply(503, {{"status", "dead"}, {"reason", h.reason}});
}

HttpReply HttpRouter::ready() const {
  const EngineHealth h = core_.health();
  if (h.ready) return json_reply(200, {{"status", "ready"}, {"model", core_.model_name()}});
  return json_reply(503, {{"status", "not ready"}, {"reason", h.reason}});
}

HttpReply HttpRouter::models(std::string_view id) const {
  auto entry = [&](const std::string& name) {
    return json{{"id", name},
                {"object", "model"},
                {"created", 0},
                {"owned_by", "tessera"},
                {"max_model_len", core_.limits().max_model_len}};
  };
  if (!id.empty()) {
    for (const auto& name : core_.limits().model_names) {
      if (name == id) return json_reply(200, entry(name));
    }
    API_THROW(kNotFound, "model", "model '{}' does not exist", id.substr(0, 256));
  }
  json data = json::array();
  for (const auto& name : core_.limits().model_names) data.push_back(entry(name));
  return json_reply(200, {{"object", "list"}, {"data", data}});
}

RouteResult HttpRouter::generate(const HttpRequestView& req, bool chat) {
  const json body = parse_request_body(req.body);
  PreparedGeneration prepared;
  bool streaming = false;
  if (chat) {
    ParsedChat parsed = validate_chat_request(body, core_.limits());
    streaming = parsed.gen.stream;
    prepared = core_.prepare_chat(parsed);
  } else {
    ParsedCompletion parsed = validate_completion_request(body, core_.limits());
    streaming = parsed.gen.stream;
    prepared = core_.prepare_completion(parsed);
  }
  auto streams = core_.submit(prepared);
  RouteResult r;
  r.job = std::make_shared<GenerationJob>(std::move(prepared), std::move(streams), core_.token_text(), streaming);
  return r;
}

HttpReply HttpRouter::tokenize(const HttpRequestView& req) const {
  const ParsedTokenize parsed = validate_tokenize_request(parse_request_body(req.body), core_.limits());
  const auto ids = core_.tokenize(parsed);
  return json_reply(200, {{"tokens", ids}, {"count", ids.size()}, {"max_model_len", core_.limits().max_model_len}});
}

HttpReply HttpRouter::detokenize(const HttpRequestView& req) const {
  const ParsedDetokenize parsed = validate_detokenize_request(parse_request_body(req.body), core_.limits());
  return json_reply(200, {{"prompt", core_.detokenize(parsed)}});
}

}  // namespace tessera::server
