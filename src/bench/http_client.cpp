#include "bench/http_client.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <optional>
#include <unordered_map>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "base/clock.h"

namespace tachyon::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

const char* error_kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::kNone: return "ok";
    case ErrorKind::kConnect: return "connect";
    case ErrorKind::kTimeout: return "timeout";
    case ErrorKind::kHttpStatus: return "http_status";
    case ErrorKind::kProtocol: return "protocol";
    case ErrorKind::kDisconnected: return "disconnected";
    case ErrorKind::kBadResponse: return "bad_response";
    case ErrorKind::kStreamError: return "stream_error";
    case ErrorKind::kCancelled: return "cancelled";
  }
  return "unknown";
}

Result<Url> Url::parse(std::string_view s) {
  Url u;
  const size_t sep = s.find("://");
  if (sep == std::string_view::npos)
    return invalid_argument("URL '" + std::string(s) + "' has no scheme (expected http://host:port)");
  std::string scheme(s.substr(0, sep));
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme == "https")
    return invalid_argument("URL '" + std::string(s) +
                            "': https is not supported by this build (no TLS); use http:// or a local TLS proxy");
  if (scheme != "http") return invalid_argument("URL '" + std::string(s) + "': unsupported scheme '" + scheme + "'");
  std::string_view rest = s.substr(sep + 3);
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos)
    return invalid_argument("URL '" + std::string(s) + "': credentials in the URL are not supported (use --api-key-env)");
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {  // [::1]:8080
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return invalid_argument("URL '" + std::string(s) + "': unterminated IPv6 host");
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return invalid_argument("URL '" + std::string(s) + "': bad host");
      port = authority.substr(close + 2);
    }
  } else if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return invalid_argument("URL '" + std::string(s) + "' has no host");
  u.scheme = scheme;
  u.host = std::string(host);
  if (!port.empty()) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (ec != std::errc() || p != port.data() + port.size() || v == 0 || v > 65535)
      return invalid_argument("URL '" + std::string(s) + "': bad port '" + std::string(port) + "'");
    u.port = static_cast<uint16_t>(v);
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (path.find_first_of("?#") != std::string_view::npos)
    return invalid_argument("URL '" + std::string(s) + "': query or fragment not allowed in the base URL");
  u.base_path = std::string(path);
  return u;
}

std::string Url::target(std::string_view v1_path) const {
  std::string_view p = v1_path;
  if (base_path.size() >= 3 && base_path.compare(base_path.size() - 3, 3, "/v1") == 0 && p.substr(0, 4) == "/v1/")
    p.remove_prefix(3);
  return base_path + std::string(p);
}

namespace {

struct Connection {
  explicit Connection(asio::io_context& io) : sock(io) {}
  tcp::socket sock;
  beast::flat_buffer buf;
};

struct HostPool {
  std::vector<std::unique_ptr<Connection>> idle;
  std::optional<tcp::resolver::results_type> resolved;
};

// The server's own words from an error body: OpenAI's {"error":{"message":...}}, a bare
// {"error":"..."} or {"message":...}, else the first line of the text.
std::string error_text(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    if (j.contains("error")) {
      const auto& e = j["error"];
      if (e.is_string()) return e.get<std::string>();
      if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
    }
    if (j.contains("message") && j["message"].is_string()) return j["message"].get<std::string>();
    if (j.contains("detail") && j["detail"].is_string()) return j["detail"].get<std::string>();
  }
  std::string t = body.substr(0, std::min<size_t>(body.size(), 200));
  if (const size_t nl = t.find('\n'); nl != std::string::npos) t.resize(nl);
  return t;
}

}  // namespace

class HttpClient::Impl : public std::enable_shared_from_this<HttpClient::Impl> {
 public:
  Impl(asio::io_context& io, ClientConfig cfg) : io_(io), cfg_(std::move(cfg)), resolver_(io) {}
  asio::io_context& io_;
  ClientConfig cfg_;
  tcp::resolver resolver_;
  std::unordered_map<std::string, HostPool> pools_;
  ClientStats stats_;
  size_t n_in_flight_ = 0;

  std::unique_ptr<Connection> take_idle(const std::string& key) {
    auto it = pools_.find(key);
    if (it == pools_.end() || it->second.idle.empty()) return nullptr;
    auto c = std::move(it->second.idle.back());
    it->second.idle.pop_back();
    return c;
  }
  void give_back(const std::string& key, std::unique_ptr<Connection> c) {
    auto& p = pools_[key];
    if (p.idle.size() >= cfg_.max_idle_per_host || c->buf.size() != 0) return;  // leftover bytes: not reusable
    p.idle.push_back(std::move(c));
  }
};

namespace {

// One request/response. Owned by the shared_ptrs its pending handlers hold.
class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(std::shared_ptr<HttpClient::Impl> client, const Url& url, HttpRequest req, StreamHandlers h)
      : c_(std::move(client)),
        url_(url),
        key_(url.host_port()),
        req_(std::move(req)),
        h_(std::move(h)),
        timer_(c_->io_),
        body_buf_(c_->cfg_.read_buffer_bytes) {
    msg_.method_string(req_.method);
    msg_.target(req_.target);
    msg_.version(11);
    msg_.set(http::field::host, url_.port == 80 ? url_.host : url_.host_port());
    msg_.set(http::field::user_agent, c_->cfg_.user_agent);
    for (const auto& [k, v] : req_.headers) msg_.set(k, v);
    msg_.body() = std::move(req_.body);
    msg_.prepare_payload();
    msg_.keep_alive(true);
  }

  void start() {
    ++c_->stats_.n_requests;
    ++c_->n_in_flight_;
    t_start_us_ = now_us();
    if (req_.timeout_ms > 0) deadline_us_ = t_start_us_ + static_cast<int64_t>(req_.timeout_ms * 1000);
    acquire();
  }

 private:
  void arm_timer(int64_t deadline_us, bool connect_phase) {
    connect_phase_ = connect_phase;
    timer_.expires_after(std::chrono::microseconds(std::max<int64_t>(0, deadline_us - now_us())));
    timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) self->on_deadline();
    });
  }
  int64_t connect_deadline_us() const {
    const int64_t c = now_us() + static_cast<int64_t>(c_->cfg_.connect_timeout_ms * 1000);
    return deadline_us_ > 0 ? std::min(c, deadline_us_) : c;
  }

  void on_deadline() {
    if (done_) return;
    if (connect_phase_ && (deadline_us_ == 0 || now_us() < deadline_us_)) {
      finish({ErrorKind::kConnect, 0,
              "cannot connect to " + url_.host_port() + ": no answer within " +
                  std::to_string(static_cast<int>(c_->cfg_.connect_timeout_ms)) + " ms"});
    } else {
      const char* phase = connect_phase_ ? "connecting" : (got_bytes_ ? "receiving the response" : "waiting for the response");
      finish({ErrorKind::kTimeout, status_,
              "timed out after " + std::to_string(static_cast<int64_t>(req_.timeout_ms)) + " ms while " + phase +
                  " (" + url_.host_port() + ")"});
    }
  }

  void acquire() {
    if (auto conn = c_->take_idle(key_)) {
      conn_ = std::move(conn);
      reused_ = true;
      ++c_->stats_.n_connections_reused;
      if (deadline_us_ > 0) arm_timer(deadline_us_, false);
      send();
      return;
    }
    reused_ = false;
    conn_ = std::make_unique<Connection>(c_->io_);
    ++c_->stats_.n_connections_opened;
    arm_timer(connect_deadline_us(), true);
    auto& pool = c_->pools_[key_];
    if (!pool.resolved) {
      // Numeric hosts need no resolver (whose first use starts a thread).
      error_code ec;
      const auto addr = asio::ip::make_address(url_.host, ec);
      if (!ec) pool.resolved = tcp::resolver::results_type::create(tcp::endpoint(addr, url_.port), url_.host, std::to_string(url_.port));
    }
    if (pool.resolved) {
      connect(*pool.resolved);
      return;
    }
    c_->resolver_.async_resolve(url_.host, std::to_string(url_.port),
                                [self = shared_from_this()](error_code ec, tcp::resolver::results_type r) {
                                  if (self->done_) return;
                                  if (ec) {
                                    self->finish({ErrorKind::kConnect, 0,
                                                  "cannot resolve host '" + self->url_.host + "': " + ec.message()});
                                    return;
                                  }
                                  self->c_->pools_[self->key_].resolved = r;
                                  self->connect(r);
                                });
  }

  void connect(const tcp::resolver::results_type& eps) {
    asio::async_connect(conn_->sock, eps, [self = shared_from_this()](error_code ec, const tcp::endpoint&) {
      if (self->done_) return;
      if (ec) {
        self->finish({ErrorKind::kConnect, 0, "cannot connect to " + self->url_.host_port() + ": " + ec.message()});
        return;
      }
      error_code ignored;
      self->conn_->sock.set_option(tcp::no_delay(true), ignored);
      if (self->deadline_us_ > 0)
        self->arm_timer(self->deadline_us_, false);
      else
        self->timer_.cancel();
      self->connect_phase_ = false;
      self->send();
    });
  }

  void send() {
    http::async_write(conn_->sock, msg_, [self = shared_from_this()](error_code ec, size_t) {
      if (self->done_) return;
      if (ec) {
        if (self->retry_stale()) return;
        self->finish({ErrorKind::kDisconnected, 0,
                      "connection to " + self->url_.host_port() + " failed while sending: " + ec.message()});
        return;
      }
      self->read_header();
    });
  }

  // A pooled connection the server closed while idle fails before any byte of the
  // response: try once more on a fresh connection.
  bool retry_stale() {
    if (!reused_ || got_bytes_ || retried_) return false;
    retried_ = true;
    ++c_->stats_.n_stale_retries;
    error_code ignored;
    conn_->sock.close(ignored);
    old_conns_.push_back(std::move(conn_));  // a pending handler may still reference it
    acquire_fresh();
    return true;
  }
  void acquire_fresh() {
    // Skip the pool: every idle connection may be as stale as the one that failed.
    auto it = c_->pools_.find(key_);
    if (it != c_->pools_.end()) it->second.idle.clear();
    acquire();
  }

  void read_header() {
    parser_.emplace();
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    http::async_read_header(conn_->sock, conn_->buf, *parser_, [self = shared_from_this()](error_code ec, size_t n) {
      if (self->done_) return;
      if (ec) {
        if (self->retry_stale()) return;
        self->finish_read_error(ec);
        return;
      }
      self->got_bytes_ = true;
      const int64_t t = now_us();
      const auto& res = self->parser_->get();
      self->status_ = static_cast<int>(res.result_int());
      if (self->ok_status()) {
        ResponseHead head;
        head.status = self->status_;
        head.content_type = std::string(res[http::field::content_type]);
        head.chunked = self->parser_->chunked();
        if (self->h_.on_head) self->h_.on_head(head, t);
        if (self->done_) return;
      }
      self->read_body();
    });
  }

  bool ok_status() const { return status_ >= 200 && status_ < 300; }

  void read_body() {
    if (parser_->is_done()) {
      complete();
      return;
    }
    auto& body = parser_->get().body();
    body.data = body_buf_.data();
    body.size = body_buf_.size();
    http::async_read_some(conn_->sock, conn_->buf, *parser_, [self = shared_from_this()](error_code ec, size_t) {
      if (self->done_) return;
      if (ec == http::error::need_buffer) ec = {};
      const size_t got = self->body_buf_.size() - self->parser_->get().body().size;
      if (got > 0) {
        const int64_t t = now_us();
        self->c_->stats_.n_bytes_received += static_cast<int64_t>(got);
        if (!self->deliver(std::string_view(self->body_buf_.data(), got), t)) return;
      }
      if (ec) {
        self->finish_read_error(ec);
        return;
      }
      self->read_body();
    });
  }

  bool deliver(std::string_view data, int64_t t) {
    if (ok_status()) {
      if (h_.on_data && !h_.on_data(data, t)) {
        finish({ErrorKind::kCancelled, status_, "aborted by the caller"});
        return false;
      }
      return !done_;
    }
    const size_t room = c_->cfg_.max_error_body_bytes - std::min(c_->cfg_.max_error_body_bytes, error_body_.size());
    error_body_.append(data.substr(0, room));
    if (data.size() > room) {  // enough of it: don't read an endless error body
      finish(status_error());
      return false;
    }
    return true;
  }

  HttpError status_error() const {
    const std::string reason(parser_->get().reason());
    std::string msg = "HTTP " + std::to_string(status_) + (reason.empty() ? "" : " " + reason) + " from " +
                      url_.host_port() + req_.target;
    const std::string text = error_text(error_body_);
    if (!text.empty()) msg += ": " + text;
    return {ErrorKind::kHttpStatus, status_, msg};
  }

  void finish_read_error(error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == http::error::partial_message) {
      if (!got_bytes_) {
        finish({ErrorKind::kDisconnected, 0,
                url_.host_port() + " closed the connection without answering (" + ec.message() + ")"});
      } else if (!ok_status()) {
        finish(status_error());
      } else {
        finish({ErrorKind::kDisconnected, status_,
                url_.host_port() + " closed the connection before the response was complete"});
      }
      return;
    }
    if (ec.category() == http::make_error_code(http::error::bad_version).category()) {
      finish({ErrorKind::kProtocol, status_,
              url_.host_port() + " did not answer with valid HTTP/1.1 (" + ec.message() + "); is it an HTTP server?"});
      return;
    }
    finish({ErrorKind::kDisconnected, status_, "reading from " + url_.host_port() + " failed: " + ec.message()});
  }

  void complete() {
    const bool reuse = parser_->keep_alive() && !parser_->need_eof();
    HttpError err;
    if (!ok_status()) err = status_error();
    if (reuse && !done_) {
      done_ = true;
      timer_.cancel();
      c_->give_back(key_, std::move(conn_));
      end(err);
      return;
    }
    finish(err);
  }

  void finish(HttpError err) {
    if (done_) return;
    done_ = true;
    timer_.cancel();
    if (conn_) {  // not reusable: pending operations complete with operation_aborted
      error_code ignored;
      conn_->sock.close(ignored);
    }
    end(err);
  }

  void end(const HttpError& err) {
    --c_->n_in_flight_;
    if (h_.on_done) h_.on_done(err, now_us());
    h_ = {};  // drop captured state early
  }

  std::shared_ptr<HttpClient::Impl> c_;
  Url url_;
  std::string key_;
  HttpRequest req_;
  StreamHandlers h_;
  asio::steady_timer timer_;
  std::unique_ptr<Connection> conn_;
  std::vector<std::unique_ptr<Connection>> old_conns_;
  http::request<http::string_body> msg_;
  std::optional<http::response_parser<http::buffer_body>> parser_;
  std::vector<char> body_buf_;
  std::string error_body_;
  int64_t t_start_us_ = 0, deadline_us_ = 0;
  int status_ = 0;
  bool done_ = false, got_bytes_ = false, reused_ = false, retried_ = false, connect_phase_ = false;
};

}  // namespace

HttpClient::HttpClient(asio::io_context& io, ClientConfig cfg) : impl_(std::make_shared<Impl>(io, std::move(cfg))) {}

HttpClient::~HttpClient() { close_idle(); }

void HttpClient::request(const Url& url, HttpRequest req, StreamHandlers h) {
  std::make_shared<Exchange>(impl_, url, std::move(req), std::move(h))->start();
}

void HttpClient::close_idle() {
  for (auto& [k, p] : impl_->pools_) {
    for (auto& c : p.idle) {
      error_code ignored;
      c->sock.close(ignored);
    }
    p.idle.clear();
  }
}

const ClientStats& HttpClient::stats() const { return impl_->stats_; }
size_t HttpClient::n_in_flight() const { return impl_->n_in_flight_; }

}  // namespace tachyon::bench
