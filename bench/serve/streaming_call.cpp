// Beast client for one streamed request: connect, write, read the header, then read the body in
// pieces as they arrive, splitting server-sent events and timestamping content events.
#include "bench/serve/streaming_call.h"

#include <boost/asio/connect.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <chrono>

#include "common/error.h"

namespace tessera::bench {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxErrorBody = 300;

class Call : public std::enable_shared_from_this<Call> {
 public:
  Call(net::io_context& io, CallSpec spec, RequestRecord record, std::function<void(RequestRecord)> done)
      : stream_(io), spec_(std::move(spec)), record_(std::move(record)), done_(std::move(done)) {}

  void start(const tcp::resolver::results_type& endpoints) {
    sent_at_ = Clock::now();
    deadline_ = sent_at_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(spec_.timeout_s));
    req_.method(http::verb::post);
    req_.target(spec_.path);
    req_.version(11);
    req_.set(http::field::host, spec_.host_header);
    req_.set(http::field::content_type, "application/json");
    req_.set(http::field::accept, "text/event-stream");
    if (!spec_.api_key.empty()) req_.set(http::field::authorization, "Bearer " + spec_.api_key);
    req_.body() = spec_.body;
    req_.prepare_payload();
    parser_.body_limit(boost::none);
    stream_.expires_at(deadline_);
    stream_.async_connect(endpoints, [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
      if (ec) return self->fail("connect", ec.message());
      self->stream_.expires_at(self->deadline_);
      http::async_write(self->stream_, self->req_, [self](beast::error_code ec2, size_t) {
        if (ec2) return self->fail(self->kind_of(ec2, "connect"), ec2.message());
        self->stream_.expires_at(self->deadline_);
        http::async_read_header(self->stream_, self->buffer_, self->parser_,
                                [self](beast::error_code ec3, size_t) { self->on_header(ec3); });
      });
    });
  }

 private:
  std::string kind_of(const beast::error_code& ec, const char* otherwise) const {
    return ec == beast::error::timeout ? "timeout" : otherwise;
  }

  void on_header(beast::error_code ec) {
    if (ec) return fail(kind_of(ec, "stream"), ec.message());
    status_ = parser_.get().result_int();
    read_more();
  }

  void read_more() {
    parser_.get().body().data = buf_;
    parser_.get().body().size = sizeof(buf_);
    stream_.expires_at(deadline_);
    http::async_read_some(stream_, buffer_, parser_,
                          [self = shared_from_this()](beast::error_code ec, size_t) { self->on_body(ec); });
  }

  void on_body(beast::error_code ec) {
    if (ec == http::error::need_buffer) ec = {};
    const size_t got = sizeof(buf_) - parser_.get().body().size;
    if (got > 0) consume(std::string_view(buf_, got));
    if (finished_) return;
    if (ec) return fail(kind_of(ec, "stream"), ec.message());
    if (parser_.is_done()) {
      if (status_ != 200) return fail(fmt::format("http_{}", status_), error_body_);
      if (!saw_done_) return fail("stream", "stream ended without data: [DONE]");
      return succeed();
    }
    read_more();
  }

  void consume(std::string_view bytes) {
    if (status_ != 200) {
      error_body_.append(bytes.substr(0, kMaxErrorBody - std::min(kMaxErrorBody, error_body_.size())));
      return;
    }
    pending_.append(bytes);
    for (;;) {
      size_t end = pending_.find("\n\n");
      size_t sep = 2;
      const size_t crlf = pending_.find("\r\n\r\n");
      if (crlf != std::string::npos && (end == std::string::npos || crlf < end)) {
        end = crlf;
        sep = 4;
      }
      if (end == std::string::npos) return;
      const std::string event = pending_.substr(0, end);
      pending_.erase(0, end + sep);
      handle_event(event);
      if (finished_) return;
    }
  }

  void handle_event(const std::string& event) {
    size_t pos = 0;
    while (pos <= event.size()) {
      size_t nl = event.find('\n', pos);
      if (nl == std::string::npos) nl = event.size();
      std::string_view line(event.data() + pos, nl - pos);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.substr(0, 5) == "data:") {
        std::string_view data = line.substr(5);
        if (!data.empty() && data.front() == ' ') data.remove_prefix(1);
        handle_data(data);
        if (finished_) return;
      }
      pos = nl + 1;
    }
  }

  void handle_data(std::string_view data) {
    if (data == "[DONE]") {
      saw_done_ = true;
      return;
    }
    const auto j = nlohmann::json::parse(data, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return fail("protocol", fmt::format("event is not JSON: {}", data.substr(0, 120)));
    if (j.contains("error")) return fail("server_error", j["error"].dump().substr(0, kMaxErrorBody));
    bool content = false;
    if (j.contains("choices") && j["choices"].is_array()) {
      for (const auto& c : j["choices"]) {
        if (c.contains("text") && c["text"].is_string() && !c["text"].get_ref<const std::string&>().empty()) content = true;
        if (c.contains("delta") && c["delta"].is_object() && c["delta"].contains("content") &&
            c["delta"]["content"].is_string() && !c["delta"]["content"].get_ref<const std::string&>().empty())
          content = true;
      }
    }
    if (j.contains("usage") && j["usage"].is_object()) {
      const auto& u = j["usage"];
      if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer())
        usage_completion_ = u["completion_tokens"].get<int32_t>();
      if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer())
        usage_prompt_ = u["prompt_tokens"].get<int32_t>();
    }
    if (!content) return;
    const auto now = Clock::now();
    const double since_send = std::chrono::duration<double>(now - sent_at_).count();
    if (content_events_ == 0) {
      record_.ttft_s = since_send;
    } else {
      record_.itl_s.push_back(std::chrono::duration<double>(now - last_content_).count());
    }
    last_content_ = now;
    ++content_events_;
  }

  void succeed() {
    record_.ok = true;
    record_.e2e_s = std::chrono::duration<double>(Clock::now() - sent_at_).count();
    record_.output_tokens = usage_completion_ >= 0 ? usage_completion_ : content_events_;
    record_.prompt_tokens = usage_prompt_ >= 0 ? usage_prompt_ : record_.input_len;
    finish();
  }

  void fail(std::string kind, std::string message) {
    record_.ok = false;
    record_.error_kind = std::move(kind);
    record_.error_message = message.substr(0, kMaxErrorBody);
    record_.e2e_s = std::chrono::duration<double>(Clock::now() - sent_at_).count();
    finish();
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    done_(std::move(record_));
  }

  beast::tcp_stream stream_;
  CallSpec spec_;
  RequestRecord record_;
  std::function<void(RequestRecord)> done_;
  http::request<http::string_body> req_;
  http::response_parser<http::buffer_body> parser_;
  beast::flat_buffer buffer_;
  char buf_[16384];
  std::string pending_;
  std::string error_body_;
  unsigned status_ = 0;
  bool saw_done_ = false;
  bool finished_ = false;
  int32_t content_events_ = 0;
  int32_t usage_completion_ = -1;
  int32_t usage_prompt_ = -1;
  Clock::time_point sent_at_;
  Clock::time_point deadline_;
  Clock::time_point last_content_;
};

}  // namespace

void start_streaming_call(net::io_context& io, const tcp::resolver::results_type& endpoints, CallSpec spec,
                          RequestRecord record, std::function<void(RequestRecord)> done) {
  std::make_shared<Call>(io, std::move(spec), std::move(record), std::move(done))->start(endpoints);
}

std::string http_get(const std::string& host, const std::string& port, const std::string& path,
                     const std::string& api_key, double timeout_s) {
  net::io_context io;
  tcp::resolver resolver(io);
  beast::tcp_stream stream(io);
  beast::error_code ec;
  const auto endpoints = resolver.resolve(host, port, ec);
  TS_CHECK(!ec, kUnavailable, "cannot resolve {}:{}: {}", host, port, ec.message());
  stream.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(timeout_s)));
  stream.connect(endpoints, ec);
  TS_CHECK(!ec, kUnavailable, "cannot connect to {}:{}: {}", host, port, ec.message());
  http::request<http::empty_body> req{http::verb::get, path, 11};
  req.set(http::field::host, host + ":" + port);
  if (!api_key.empty()) req.set(http::field::authorization, "Bearer " + api_key);
  http::write(stream, req, ec);
  TS_CHECK(!ec, kUnavailable, "GET {} failed: {}", path, ec.message());
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(16 * 1024 * 1024);
  http::read(stream, buffer, parser, ec);
  TS_CHECK(!ec, kUnavailable, "GET {} failed: {}", path, ec.message());
  const auto& res = parser.get();
  TS_CHECK(res.result_int() == 200, kUnavailable, "GET {} answered HTTP {}: {}", path, res.result_int(),
           res.body().substr(0, kMaxErrorBody));
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  return res.body();
}

}  // namespace tessera::bench
