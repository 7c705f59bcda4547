#include "bench/http_client.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <optional>
#include <unordered_map>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <nlohmann/json.hpp>

#include "base/clock.h"

namespace tachyon::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

const char* error_kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::kNone: return "ok";
    case ErrorKind::kConnect: return "connect";
    case ErrorKind::kTls: return "tls";
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
  if (scheme != "http" && scheme != "https")
    return invalid_argument("URL '" + std::string(s) + "': unsupported scheme '" + scheme + "' (http or https)");
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
  u.port = u.default_port();
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

// A plain socket, or a TLS stream over its own socket (then `sock` stays unopened).
struct Connection {
  explicit Connection(asio::io_context& io) : sock(io) {}
  Connection(asio::io_context& io, ssl::context& ctx) : sock(io) { tls.emplace(io, ctx); }
  tcp::socket sock;
  std::optional<beast::ssl_stream<tcp::socket>> tls;
  beast::flat_buffer buf;
  tcp::socket& socket() { return tls ? tls->next_layer() : sock; }
  // f(stream) with the stream the HTTP bytes go through.
  template <class F>
  void with_stream(F&& f) {
    if (tls)
      f(*tls);
    else
      f(sock);
  }
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
  std::optional<ssl::context> ssl_ctx_;  // made on the first https request
  std::string ssl_ctx_error_;            // why it could not be made (bad --ca-file)

  // The TLS context for cfg_.tls, or null with *err set.
  ssl::context* tls_context(std::string* err) {
    if (!ssl_ctx_ && ssl_ctx_error_.empty()) {
      ssl::context ctx(ssl::context::tls_client);
      error_code ec;
      if (cfg_.tls.verify) {
        ctx.set_verify_mode(ssl::verify_peer, ec);
        ctx.set_default_verify_paths(ec);  // an empty system store is not an error here
        if (!cfg_.tls.ca_file.empty()) {
          ec = {};
          ctx.load_verify_file(cfg_.tls.ca_file, ec);
          if (ec) ssl_ctx_error_ = "cannot load CA file '" + cfg_.tls.ca_file + "': " + ec.message();
        }
      } else {
        ctx.set_verify_mode(ssl::verify_none, ec);
      }
      if (ssl_ctx_error_.empty()) ssl_ctx_.emplace(std::move(ctx));
    }
    if (!ssl_ctx_) *err = ssl_ctx_error_;
    return ssl_ctx_ ? &*ssl_ctx_ : nullptr;
  }

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
        key_(url.scheme + "://" + url.host_port()),
        req_(std::move(req)),
        h_(std::move(h)),
        timer_(c_->io_),
        body_buf_(c_->cfg_.read_buffer_bytes) {
    msg_.method_string(req_.method);
    msg_.target(req_.target);
    msg_.version(11);
    msg_.set(http::field::host, url_.port == url_.default_port() ? url_.host : url_.host_port());
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
  enum class Phase { kConnect, kHandshake, kExchange };

  void arm_timer(int64_t deadline_us, Phase phase) {
    phase_ = phase;
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
    const bool request_expired = deadline_us_ > 0 && now_us() >= deadline_us_;
    if (phase_ == Phase::kConnect && !request_expired) {
      finish({ErrorKind::kConnect, 0,
              "cannot connect to " + url_.host_port() + ": no answer within " +
                  std::to_string(static_cast<int>(c_->cfg_.connect_timeout_ms)) + " ms"});
    } else if (phase_ == Phase::kHandshake && !request_expired) {
      finish({ErrorKind::kTls, 0,
              "TLS handshake with " + url_.host_port() + " did not complete within " +
                  std::to_string(static_cast<int>(c_->cfg_.connect_timeout_ms)) + " ms (is it an https server?)"});
    } else {
      const char* phase = phase_ == Phase::kConnect     ? "connecting"
                          : phase_ == Phase::kHandshake ? "in the TLS handshake"
                          : got_bytes_                  ? "receiving the response"
                                                        : "waiting for the response";
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
      if (deadline_us_ > 0) arm_timer(deadline_us_, Phase::kExchange);
      send();
      return;
    }
    reused_ = false;
    if (url_.tls()) {
      std::string err;
      ssl::context* ctx = c_->tls_context(&err);
      if (!ctx) {
        // Asynchronously, like every other failure: on_done never runs inside request().
        asio::post(c_->io_, [self = shared_from_this(), err] {
          self->finish({ErrorKind::kTls, 0, "TLS setup for " + self->url_.host_port() + " failed: " + err});
        });
        return;
      }
      conn_ = std::make_unique<Connection>(c_->io_, *ctx);
    } else {
      conn_ = std::make_unique<Connection>(c_->io_);
    }
    ++c_->stats_.n_connections_opened;
    arm_timer(connect_deadline_us(), Phase::kConnect);
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
    asio::async_connect(conn_->socket(), eps, [self = shared_from_this()](error_code ec, const tcp::endpoint&) {
      if (self->done_) return;
      if (ec) {
        self->finish({ErrorKind::kConnect, 0, "cannot connect to " + self->url_.host_port() + ": " + ec.message()});
        return;
      }
      error_code ignored;
      self->conn_->socket().set_option(tcp::no_delay(true), ignored);
      if (self->conn_->tls) {
        self->handshake();
        return;
      }
      self->start_exchange();
    });
  }

  void start_exchange() {
    if (deadline_us_ > 0)
      arm_timer(deadline_us_, Phase::kExchange);
    else
      timer_.cancel();
    phase_ = Phase::kExchange;
    send();
  }

  // SNI and the name (or IP address) the certificate must carry, then the handshake,
  // under a fresh connect deadline bounded by the request deadline.
  void handshake() {
    arm_timer(connect_deadline_us(), Phase::kHandshake);
    SSL* ssl = conn_->tls->native_handle();
    error_code ec;
    asio::ip::make_address(url_.host, ec);
    const bool is_ip = !ec;
    if (!is_ip) SSL_set_tlsext_host_name(ssl, url_.host.c_str());  // SNI is for names only
    if (c_->cfg_.tls.verify) {
      const int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url_.host.c_str())
                           : SSL_set1_host(ssl, url_.host.c_str());
      if (ok != 1) {
        asio::post(c_->io_, [self = shared_from_this()] {
          self->finish({ErrorKind::kTls, 0, "TLS setup for " + self->url_.host_port() + " failed: cannot check host '" +
                                                self->url_.host + "' against the certificate"});
        });
        return;
      }
    }
    conn_->tls->async_handshake(ssl::stream_base::client, [self = shared_from_this()](error_code ec) {
      if (self->done_) return;
      if (ec) {
        self->finish(self->handshake_error(ec));
        return;
      }
      self->start_exchange();
    });
  }

  HttpError handshake_error(error_code ec) const {
    const long v = SSL_get_verify_result(conn_->tls->native_handle());
    std::string cause;
    if (c_->cfg_.tls.verify && v != X509_V_OK) {
      cause = std::string("certificate verify failed: ") + X509_verify_cert_error_string(v) +
              (c_->cfg_.tls.ca_file.empty() ? " (--ca-file FILE to trust its CA, or --insecure)"
                                            : " (not covered by --ca-file; or --insecure)");
    } else if (ec == asio::error::eof || ec == ssl::error::stream_truncated || ec == asio::error::connection_reset) {
      cause = "the server closed the connection (" + ec.message() + "); is it an https server?";
    } else {
      cause = ec.message();
      if (cause.find("wrong version number") != std::string::npos ||
          cause.find("packet length too long") != std::string::npos)
        cause += " (the server does not speak TLS on this port; for plain HTTP use http://)";
    }
    return {ErrorKind::kTls, 0, "TLS handshake with " + url_.host_port() + " failed: " + cause};
  }

  void send() {
    conn_->with_stream([this](auto& stream) {
      http::async_write(stream, msg_, [self = shared_from_this()](error_code ec, size_t) {
        if (self->done_) return;
        if (ec) {
          if (self->retry_stale()) return;
          self->finish({ErrorKind::kDisconnected, 0,
                        "connection to " + self->url_.host_port() + " failed while sending: " + ec.message()});
          return;
        }
        self->read_header();
      });
    });
  }

  // A pooled connection the server closed while idle fails before any byte of the
  // response: try once more on a fresh connection.
  bool retry_stale() {
    if (!reused_ || got_bytes_ || retried_) return false;
    retried_ = true;
    ++c_->stats_.n_stale_retries;
    error_code ignored;
    conn_->socket().close(ignored);
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
    conn_->with_stream([this](auto& stream) {
      http::async_read_header(stream, conn_->buf, *parser_,
                              [self = shared_from_this()](error_code ec, size_t) { self->on_header(ec); });
    });
  }

  void on_header(error_code ec) {
    if (done_) return;
    if (ec) {
      if (retry_stale()) return;
      finish_read_error(ec);
      return;
    }
    got_bytes_ = true;
    const int64_t t = now_us();
    const auto& res = parser_->get();
    status_ = static_cast<int>(res.result_int());
    if (ok_status()) {
      ResponseHead head;
      head.status = status_;
      head.content_type = std::string(res[http::field::content_type]);
      head.chunked = parser_->chunked();
      if (h_.on_head) h_.on_head(head, t);
      if (done_) return;
    }
    read_body();
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
    conn_->with_stream([this](auto& stream) {
      http::async_read_some(stream, conn_->buf, *parser_,
                            [self = shared_from_this()](error_code ec, size_t) { self->on_body(ec); });
    });
  }

  void on_body(error_code ec) {
    if (done_) return;
    if (ec == http::error::need_buffer) ec = {};
    const size_t got = body_buf_.size() - parser_->get().body().size;
    if (got > 0) {
      const int64_t t = now_us();
      c_->stats_.n_bytes_received += static_cast<int64_t>(got);
      if (!deliver(std::string_view(body_buf_.data(), got), t)) return;
    }
    if (ec) {
      finish_read_error(ec);
      return;
    }
    read_body();
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
    HttpError e{ErrorKind::kHttpStatus, status_, msg};
    e.body = error_body_;
    return e;
  }

  void finish_read_error(error_code ec) {
    if (ec == ssl::error::stream_truncated && got_bytes_ && parser_->need_eof()) {
      // A TLS peer that closes without close_notify (common) ends an EOF-delimited body.
      error_code eof_ec;
      parser_->put_eof(eof_ec);
      if (!eof_ec && parser_->is_done()) {
        complete();
        return;
      }
    }
    if (ec == http::error::end_of_stream || ec == ssl::error::stream_truncated || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == http::error::partial_message) {
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
      conn_->socket().close(ignored);
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
  bool done_ = false, got_bytes_ = false, reused_ = false, retried_ = false;
  Phase phase_ = Phase::kConnect;
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
      c->socket().close(ignored);
    }
    p.idle.clear();
  }
}

const ClientStats& HttpClient::stats() const { return impl_->stats_; }
size_t HttpClient::n_in_flight() const { return impl_->n_in_flight_; }

}  // namespace tachyon::bench
