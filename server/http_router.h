// HttpRouter: maps one parsed HTTP request (method, path, headers, body) to an immediate reply or a
// GenerationJob. Shared by every connection; thread-safe. It knows no sockets (the session does
// the I/O) and must never block: generation goes to the engine and comes back through the job.
//
// Routes: POST /v1/completions, /v1/chat/completions, /tokenize, /detokenize (also under /v1/);
// GET /v1/models[/{id}], /health (liveness), /ready (readiness), /metrics (Prometheus text).
// API keys, when set, guard everything but /health, /ready and /metrics (probes and scrapers).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "server/api_key_auth.h"
#include "server/generation_job.h"
#include "server/serving_core.h"

namespace tessera::server {

struct HttpReply {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct RouteResult {
  std::string route;                     // metrics label: the matched path, or "other"
  std::optional<HttpReply> reply;        // an immediate answer, or ...
  std::shared_ptr<GenerationJob> job;    // ... a generation the session streams / waits for
};

struct HttpRequestView {
  std::string_view method;               // "GET", "POST", ...
  std::string_view target;               // path and query
  std::string_view authorization;        // the Authorization header, or empty
  std::string_view body;
};

class HttpRouter {
 public:
  HttpRouter(ServingCore& core, const ApiKeyAuth& auth, MetricsRegistry& metrics);

  RouteResult handle(const HttpRequestView& req);
  // Counts a finished request by route and status (the session calls it when the reply is sent).
  void record(const std::string& route, unsigned status);
  // An error reply for failures outside a route (413 body too large, 400 bad HTTP).
  static HttpReply error_reply(const Error& e);

 private:
  RouteResult route(const HttpRequestView& req, const std::string& path);
  HttpReply models(std::string_view id) const;
  RouteResult generate(const HttpRequestView& req, bool chat);
  HttpReply tokenize(const HttpRequestView& req) const;
  HttpReply detokenize(const HttpRequestView& req) const;
  HttpReply health() const;
  HttpReply ready() const;

  ServingCore& core_;
  const ApiKeyAuth& auth_;
  MetricsRegistry& metrics_;
};

}  // namespace tessera::server
