// HttpSession<Stream>: one HTTP/1.1 connection (plain TCP or TLS) on its own strand: reads a
// request with the body limit enforced while reading, answers through the router, streams SSE
// generation output as chunked transfer encoding, and cancels the generation when the client goes
// away. Internal to http_server.cpp. It must never block its strand or hold more than one write.
#pragma once

#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <cerrno>
#include <memory>
#include <optional>
#include <string>

#include "server/http_router.h"
#include "server/http_server.h"

namespace tessera::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

// "HTTP/1.1 <status> <reason>" + headers + body, with Content-Length.
std::string serialize_reply(const HttpReply& reply, bool keep_alive);

template <class Stream>
class HttpSession : public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  HttpSession(Stream stream, HttpRouter& router, const HttpServerConfig& config, std::atomic<int64_t>& open)
      : stream_(std::move(stream)), router_(router), config_(config), open_(open) {
    open_.fetch_add(1, std::memory_order_relaxed);
  }
  ~HttpSession() { open_.fetch_sub(1, std::memory_order_relaxed); }

  void run() {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->start(); });
  }

 private:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  void start() {
    if constexpr (kTls) {
      lowest().expires_after(config_.idle_timeout);
      stream_.async_handshake(net::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) return self->close();
                                self->do_read();
                              });
    } else {
      do_read();
    }
  }

  void do_read() {
    parser_.emplace();
    parser_->body_limit(config_.max_body_bytes);
    parser_->header_limit(static_cast<uint32_t>(config_.max_header_bytes));
    lowest().expires_after(config_.idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return reject_and_linger(413, fmt::format("request body is over the limit of {} bytes (--max-body-bytes)",
                                                config_.max_body_bytes));
    }
    if (ec == http::error::header_limit) {
      return reject_and_linger(431, fmt::format("request headers are over {} bytes", config_.max_header_bytes));
    }
    if (ec) {
      const bool quiet = ec == http::error::end_of_stream || ec == beast::error::timeout ||
                         ec == net::error::connection_reset || ec == net::error::operation_aborted ||
                         ec == net::ssl::error::stream_truncated;
      if (quiet) return close();
      return reject_and_linger(400, fmt::format("malformed HTTP request: {}", ec.message()));
    }
    auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    const auto auth = req[http::field::authorization];
    HttpRequestView view{std::string_view(req.method_string().data(), req.method_string().size()),
                         std::string_view(req.target().data(), req.target().size()),
                         std::string_view(auth.data(), auth.size()), req.body()};
    RouteResult result = router_.handle(view);
    route_ = std::move(result.route);
    if (result.reply) return send_reply(*result.reply);
    start_job(std::move(result.job));
  }

  void send_reply(const HttpReply& reply) {
    status_ = reply.status;
    write_buf_ = serialize_reply(reply, keep_alive_);
    lowest().expires_after(config_.write_timeout);
    net::async_write(stream_, net::buffer(write_buf_),
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       self->router_.record(self->route_, self->status_);
                       if (ec || !self->keep_alive_) return self->close();
                       self->do_read();
                     });
  }

  // 413/431/400: answer, then read and discard what the client still sends (bounded), so that it
  // sees the answer rather than a reset, and close.
  void reject_and_linger(unsigned status, std::string message) {
    HttpReply reply = HttpRouter::error_reply(Error(status == 413 ? ErrorCode::kResourceExhausted
                                                                  : ErrorCode::kInvalidArgument,
                                                    std::move(message)));
    reply.status = status;
    reply.headers.clear();
    keep_alive_ = false;
    status_ = status;
    route_ = "other";
    write_buf_ = serialize_reply(reply, false);
    lowest().expires_after(config_.write_timeout);
    net::async_write(stream_, net::buffer(write_buf_), [self = this->shared_from_this()](beast::error_code ec, size_t) {
      self->router_.record(self->route_, self->status_);
      if (ec || kTls) return self->close();
      beast::error_code ignored;
      self->lowest().socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
      self->lowest().expires_after(std::chrono::seconds(5));
      self->linger_bytes_ = 0;
      self->linger();
    });
  }

  void linger() {
    linger_buf_.resize(64 * 1024);
    lowest().async_read_some(net::buffer(linger_buf_), [self = this->shared_from_this()](beast::error_code ec,
                                                                                          size_t n) {
      self->linger_bytes_ += n;
      if (ec || self->linger_bytes_ > 64u * 1024 * 1024) return self->close();
      self->linger();
    });
  }

  void start_job(std::shared_ptr<GenerationJob> job) {
    job_ = std::move(job);
    std::weak_ptr<HttpSession> weak = this->shared_from_this();
    job_->set_notifier([weak] {
      if (auto self = weak.lock()) self->notify();
    });
    lowest().expires_never();
    watch_disconnect();
    if (job_->streaming()) {
      status_ = 200;
      std::string head =
          "HTTP/1.1 200 OK\r\nServer: tessera\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
          "Transfer-Encoding: chunked\r\n";
      head += keep_alive_ ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
      append_chunk(head, job_->start_bytes());
      write(std::move(head));
    } else {
      pump();
    }
  }

  static void append_chunk(std::string& out, const std::string& payload) {
    if (payload.empty()) return;
    out += fmt::format("{:x}\r\n", payload.size());
    out += payload;
    out += "\r\n";
  }

  // Engine thread: coalesce notifications into one pump on the strand.
  void notify() {
    if (notify_pending_.exchange(true, std::memory_order_acq_rel)) return;
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      self->notify_pending_.store(false, std::memory_order_release);
      self->pump();
    });
  }

  void pump() {
    if (!job_ || writing_ || job_finished_) return;
    GenerationJob::Poll p = job_->poll();
    std::string out;
    if (job_->streaming()) {
      append_chunk(out, p.bytes);
      if (p.done) out += "0\r\n\r\n";
    } else if (p.done) {
      status_ = static_cast<unsigned>(p.status);
      HttpReply reply{status_, "application/json", std::move(p.bytes), {}};
      out = serialize_reply(reply, keep_alive_);
    }
    if (p.done) job_finished_ = true;
    if (!out.empty()) write(std::move(out));
  }

  void write(std::string bytes) {
    writing_ = true;
    write_buf_ = std::move(bytes);
    lowest().expires_after(config_.write_timeout);
    net::async_write(stream_, net::buffer(write_buf_),
                     [self = this->shared_from_this()](beast::error_code ec, size_t) { self->on_write(ec); });
  }

  void on_write(beast::error_code ec) {
    writing_ = false;
    lowest().expires_never();
    if (ec) {
      if (job_) job_->cancel();
      return close();
    }
    if (!job_finished_) return pump();
    finish_job();
  }

  void finish_job() {
    router_.record(route_, status_);
    job_.reset();
    job_finished_ = false;
    watching_ = false;
    beast::error_code ignored;
    lowest().socket().cancel(ignored);  // the disconnect watch
    if (!keep_alive_) return close();
    do_read();
  }

  // While a job runs nothing is read; a readable socket that yields EOF means the client left.
  void watch_disconnect() {
    watching_ = true;
    lowest().socket().async_wait(net::socket_base::wait_read,
                                 [self = this->shared_from_this()](beast::error_code ec) { self->on_readable(ec); });
  }

  void on_readable(beast::error_code ec) {
    if (!watching_ || ec == net::error::operation_aborted || !job_) return;
    char byte;
    const ssize_t n = ::recv(lowest().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (ec || n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      job_->cancel();
      return close();
    }
    if (n < 0) return watch_disconnect();
    watching_ = false;  // the client sent data (pipelining or TLS records): leave it for the next read
  }

  void close() {
    if (job_ && !job_finished_) {
      router_.record(route_, 499);
      job_->cancel();
    }
    job_.reset();
    beast::error_code ignored;
    lowest().socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
    lowest().close();
  }

  Stream stream_;
  HttpRouter& router_;
  const HttpServerConfig& config_;
  std::atomic<int64_t>& open_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool keep_alive_ = false;
  std::string route_;
  unsigned status_ = 0;
  std::string write_buf_;
  std::string linger_buf_;
  size_t linger_bytes_ = 0;
  std::shared_ptr<GenerationJob> job_;
  bool writing_ = false;
  bool job_finished_ = false;
  bool watching_ = false;
  std::atomic<bool> notify_pending_{false};
};

}  // namespace tessera::server
