// HttpServer: the OpenAI-compatible HTTP/1.1 door on Boost.Beast/Asio. Event-driven: a small fixed
// pool of io threads serves every connection (thousands of concurrent SSE streams), each session on
// its own strand. Optional TLS (OpenSSL). Request bodies are limited while they are read.
// It must never block an io thread on the engine: outputs arrive by notification.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "server/http_router.h"

namespace tessera::server {

struct TlsFiles {
  std::string cert_chain;   // PEM certificate chain
  std::string private_key;  // PEM private key
};

struct HttpServerConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 8000;                         // 0: an ephemeral port (see HttpServer::port())
  int io_threads = 2;
  size_t max_body_bytes = 4u << 20;             // larger bodies get 413 before they are read
  size_t max_header_bytes = 16u << 10;
  std::optional<TlsFiles> tls;
  std::chrono::seconds idle_timeout{75};        // keep-alive idle and header/body reading
  std::chrono::seconds write_timeout{60};       // a client that stops reading is dropped
};

class HttpServerImpl;

class HttpServer {
 public:
  HttpServer(HttpServerConfig config, HttpRouter& router);
  ~HttpServer();  // stops
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts the io threads. Throws Error(kUnavailable) naming the address on failure.
  void start();
  uint16_t port() const;
  void stop();
  int64_t open_connections() const;

 private:
  std::unique_ptr<HttpServerImpl> impl_;
};

}  // namespace tessera::server
