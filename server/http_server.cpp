// HttpServer: acceptor, io threads and TLS context; sessions are in http_session.h.
#include "server/http_server.h"

#include <spdlog/spdlog.h>

#include <thread>
#include <vector>

#include "server/http_session.h"

namespace tessera::server {

std::string serialize_reply(const HttpReply& reply, bool keep_alive) {
  const auto reason = http::obsolete_reason(static_cast<http::status>(reply.status));
  std::string out = fmt::format("HTTP/1.1 {} {}\r\nServer: tessera\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
                                reply.status, std::string_view(reason.data(), reason.size()), reply.content_type,
                                reply.body.size());
  for (const auto& [name, value] : reply.headers) out += fmt::format("{}: {}\r\n", name, value);
  out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  out += reply.body;
  return out;
}

class HttpServerImpl {
 public:
  HttpServerImpl(HttpServerConfig config, HttpRouter& router)
      : config_(std::move(config)), router_(router), acceptor_(ioc_), ssl_(net::ssl::context::tls_server) {}

  void start() {
    TS_CHECK(config_.io_threads >= 1 && config_.io_threads <= 256, kInvalidArgument,
             "HTTP io threads must be in [1, 256], got {}", config_.io_threads);
    if (config_.tls) load_tls();
    beast::error_code ec;
    const auto address = net::ip::make_address(config_.host, ec);
    TS_CHECK(!ec, kInvalidArgument, "--host '{}' is not an IP address: {}", config_.host, ec.message());
    const net::ip::tcp::endpoint endpoint(address, config_.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    TS_CHECK(!ec, kUnavailable, "cannot listen for HTTP on {}:{}: {}", config_.host, config_.port, ec.message());
    port_ = acceptor_.local_endpoint().port();
    do_accept();
    for (int i = 0; i < config_.io_threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
    spdlog::info("HTTP ({}) listening on {}:{} with {} io threads", config_.tls ? "TLS" : "plain", config_.host, port_,
                 config_.io_threads);
  }

  void stop() {
    if (stopped_.exchange(true)) return;
    net::post(ioc_, [this] {
      beast::error_code ignored;
      acceptor_.close(ignored);
    });
    ioc_.stop();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  uint16_t port() const { return port_; }
  int64_t open_connections() const { return open_.load(std::memory_order_relaxed); }

 private:
  void load_tls() {
    beast::error_code ec;
    ssl_.set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                     net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1);
    ssl_.use_certificate_chain_file(config_.tls->cert_chain, ec);
    TS_CHECK(!ec, kInvalidArgument, "cannot load --tls-cert '{}': {}", config_.tls->cert_chain, ec.message());
    ssl_.use_private_key_file(config_.tls->private_key, net::ssl::context::pem, ec);
    TS_CHECK(!ec, kInvalidArgument, "cannot load --tls-key '{}': {}", config_.tls->private_key, ec.message());
  }

  void do_accept() {
    acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec, net::ip::tcp::socket socket) {
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
      if (!ec) {
        socket.set_option(net::ip::tcp::no_delay(true), ec);
        if (config_.tls) {
          std::make_shared<HttpSession<beast::ssl_stream<beast::tcp_stream>>>(
              beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), ssl_), router_, config_,
              open_)
              ->run();
        } else {
          std::make_shared<HttpSession<beast::tcp_stream>>(beast::tcp_stream(std::move(socket)), router_, config_,
                                                           open_)
              ->run();
        }
      } else {
        spdlog::warn("HTTP accept failed: {}", ec.message());  // e.g. out of file descriptors
      }
      do_accept();
    });
  }

  HttpServerConfig config_;
  HttpRouter& router_;
  net::io_context ioc_;
  net::ip::tcp::acceptor acceptor_;
  net::ssl::context ssl_;
  std::vector<std::thread> threads_;
  std::atomic<int64_t> open_{0};
  std::atomic<bool> stopped_{false};
  uint16_t port_ = 0;
};

HttpServer::HttpServer(HttpServerConfig config, HttpRouter& router)
    : impl_(std::make_unique<HttpServerImpl>(std::move(config), router)) {}
HttpServer::~HttpServer() { stop(); }
void HttpServer::start() { impl_->start(); }
uint16_t HttpServer::port() const { return impl_->port(); }
void HttpServer::stop() { impl_->stop(); }
int64_t HttpServer::open_connections() const { return impl_->open_connections(); }

}  // namespace tessera::server
