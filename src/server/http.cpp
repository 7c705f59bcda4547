// Connection state machine (all on the connection's strand):
//
//   idle --first byte--> header --> body --> handling --response written--> idle | close
//
// While a request is being handled, an async_wait(read) stays armed so that a client
// that disconnects is noticed at once (its exchange's owner is told and cancels the
// work); bytes a client pipelines meanwhile are kept in the read buffer for the next
// request. The same wait serves as the idle keep-alive wait afterwards.
#include "server/http.h"

#include <boost/beast/core/flat_buffer.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <optional>

#include <sys/socket.h>

namespace tachyon::server {

using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

namespace {

constexpr size_t kMaxPipelinedBytes = size_t{1} << 20;  // read ahead while handling
constexpr size_t kMaxPendingWriteBytes = size_t{32} << 20;  // a reader this far behind is dropped
constexpr size_t kMaxLingerBytes = size_t{64} << 20;     // discarded after an error reply
constexpr int kLingerMs = 2'000;

std::string default_error_body(int status, std::string_view message) {
  std::string m;
  for (char c : message) {
    if (c == '"' || c == '\\') m += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) m += c;
  }
  return "{\"error\":{\"message\":\"" + m + "\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}";
}

bool is_http_parse_error(const error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category();
}

}  // namespace

std::string_view status_reason(int status) {
  const auto r = http::obsolete_reason(static_cast<http::status>(status));
  return {r.data(), r.size()};
}

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(HttpServer& server, tcp::socket socket)
      : server_(server),
        socket_(std::move(socket)),
        read_timer_(socket_.get_executor()),
        write_timer_(socket_.get_executor()),
        recheck_timer_(socket_.get_executor()) {
    server_.add(this);
    error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);  // SSE chunks must not wait for Nagle
  }
  ~Connection() { server_.remove(this); }

  void start() {
    net::dispatch(socket_.get_executor(), [self = shared_from_this()] { self->read_next(); });
  }

  net::any_io_executor executor() { return socket_.get_executor(); }
  bool closed() const { return closed_; }
  bool keep_alive() const { return keep_alive_ && !server_.stopping(); }
  void record_status(int status) {
    if (server_.cfg_.on_status) server_.cfg_.on_status(status);
  }

  // Queues bytes for the client. A client that lets more than kMaxPendingWriteBytes pile
  // up behind a write in progress (a stream it stopped reading) is dropped; one large
  // response (a KV transfer of tens of MB) is not held to that.
  void write(std::string_view bytes) {
    if (closed_) return;
    if (!out_.empty() && out_.size() + bytes.size() > kMaxPendingWriteBytes) {
      close();
      return;
    }
    out_.append(bytes);
    if (!write_pending_) start_write();
  }

  // The current exchange has produced its whole response.
  void exchange_done() {
    response_complete_ = true;
    if (!write_pending_ && out_.empty()) after_response();
  }

  // Closes the socket; an unfinished exchange's owner is told the client is gone.
  void close() {
    if (closed_) return;
    closed_ = true;
    ++read_timer_gen_;
    ++write_timer_gen_;
    read_timer_.cancel();
    write_timer_.cancel();
    recheck_timer_.cancel();
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    if (auto ex = std::move(exchange_)) ex->notify_gone();
  }

 private:
  enum class State { kIdle, kReadingHeader, kReadingBody, kHandling, kLingering };

  void read_next() {
    if (closed_) return;
    state_ = State::kIdle;
    timed_out_ = false;
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(std::min<size_t>(server_.cfg_.max_header_bytes, UINT32_MAX)));
    parser_->body_limit(server_.cfg_.max_body_bytes);
    if (buffer_.size() > 0) {
      read_header();
      return;
    }
    arm_read_timer(server_.cfg_.idle_timeout_ms);
    if (!wait_pending_) wait_readable();
  }

  void wait_readable() {
    wait_pending_ = true;
    socket_.async_wait(tcp::socket::wait_read,
                       [self = shared_from_this()](error_code ec) { self->on_readable(ec); });
  }

  void on_readable(error_code ec) {
    wait_pending_ = false;
    if (closed_) return;
    if (ec) {
      close();
      return;
    }
    if (state_ == State::kIdle) {
      read_first_bytes();
    } else if (state_ == State::kHandling) {
      // Readable while we answer: either the client left (EOF/reset) or it pipelines.
      const size_t avail = socket_.available(ec);
      if (ec) {
        close();
        return;
      }
      if (avail == 0) {
        // Nothing to read is EOF only if a peek says so: Asio's reactor can report a
        // socket still "ready" from the request's own bytes (read without hitting
        // EAGAIN), and closing then dropped live requests under load (~2% of a test's
        // authorized POSTs ended with no response while the box was busy).
        char c;
        const ssize_t n = ::recv(socket_.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
          // The reactor would report the same stale readiness at once: look again in 2 ms
          // (disconnects are still seen within milliseconds, without a busy loop).
          wait_pending_ = true;
          recheck_timer_.expires_after(std::chrono::milliseconds(2));
          recheck_timer_.async_wait([self = shared_from_this()](error_code e) {
            self->wait_pending_ = false;
            if (self->closed_) return;  // (close() is the only canceller)
            self->wait_readable();
          });
          return;
        }
        close();  // 0: orderly EOF; other errors: reset
        return;
      }
      const size_t n = std::min<size_t>(avail, 64 << 10);
      const size_t got = socket_.read_some(buffer_.prepare(n), ec);
      if (ec) {
        close();
        return;
      }
      buffer_.commit(got);
      if (buffer_.size() < kMaxPipelinedBytes) wait_readable();
    }
  }

  // Idle and told the socket is readable: a real read, under the idle timer still, before
  // the header timeout starts. The readiness can be stale (seen while handling, see
  // on_readable); on a stale one, read_header's timeout would cut an idle keep-alive
  // connection after the header timeout instead of the idle one.
  void read_first_bytes() {
    socket_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](error_code ec, size_t n) {
      if (self->closed_) return;
      if (ec) {
        self->close();  // EOF or reset between requests, or the idle timeout
        return;
      }
      self->buffer_.commit(n);
      self->read_header();
    });
  }

  void read_header() {
    state_ = State::kReadingHeader;
    arm_read_timer(server_.cfg_.header_timeout_ms);
    http::async_read_header(socket_, buffer_, *parser_,
                            [self = shared_from_this()](error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(error_code ec) {
    if (closed_) return;
    if (ec) {
      on_read_error(ec, "malformed request header");
      return;
    }
    const auto& h = parser_->get();
    if (parser_->content_length() && *parser_->content_length() > server_.cfg_.max_body_bytes) {
      reply_error_and_close(413, "request body of " + std::to_string(*parser_->content_length()) +
                                     " bytes exceeds the limit of " + std::to_string(server_.cfg_.max_body_bytes));
      return;
    }
    auto expect = h.find(http::field::expect);
    if (expect != h.end() && boost::beast::iequals(expect->value(), "100-continue") && h.version() >= 11)
      write("HTTP/1.1 100 Continue\r\n\r\n");
    state_ = State::kReadingBody;
    arm_read_timer(server_.cfg_.body_timeout_ms);
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](error_code ec, size_t) { self->on_body(ec); });
  }

  void on_body(error_code ec) {
    if (closed_) return;
    if (ec) {
      on_read_error(ec, "malformed request body");
      return;
    }
    disarm_read_timer();
    dispatch();
  }

  void on_read_error(const error_code& ec, const char* what) {
    if (timed_out_) {
      reply_error_and_close(408, "request not received in time");
    } else if (ec == http::error::body_limit) {
      reply_error_and_close(413, "request body exceeds the limit of " + std::to_string(server_.cfg_.max_body_bytes) +
                                     " bytes");
    } else if (ec == http::error::header_limit) {
      reply_error_and_close(431, "request header exceeds the limit of " +
                                     std::to_string(server_.cfg_.max_header_bytes) + " bytes");
    } else if (is_http_parse_error(ec) && ec != http::error::end_of_stream && ec != http::error::partial_message) {
      reply_error_and_close(400, std::string(what) + ": " + ec.message());
    } else {
      close();  // EOF, reset, or a message cut short: nobody to answer
    }
  }

  void dispatch() {
    state_ = State::kHandling;
    response_complete_ = false;
    close_after_response_ = false;
    keep_alive_ = parser_->get().keep_alive();
    exchange_ = std::make_shared<Exchange>(shared_from_this(), parser_->release());
    auto ex = exchange_;
    try {
      server_.handler_(ex);
    } catch (const std::exception& e) {
      if (!ex->completed()) ex->respond(500, "application/json", error_body(500, std::string("internal error: ") + e.what()));
    }
    // Watch for a disconnect while the exchange is unfinished (or pipelined bytes).
    if (!closed_ && state_ == State::kHandling && !wait_pending_ && buffer_.size() < kMaxPipelinedBytes)
      wait_readable();
  }

  std::string error_body(int status, const std::string& message) const {
    return server_.cfg_.error_body ? server_.cfg_.error_body(status, message) : default_error_body(status, message);
  }

  void reply_error_and_close(int status, const std::string& message) {
    disarm_read_timer();
    state_ = State::kHandling;
    keep_alive_ = false;
    close_after_response_ = true;
    const std::string body = error_body(status, message);
    std::string head = "HTTP/1.1 " + std::to_string(status) + " " + std::string(status_reason(status)) + "\r\n";
    head += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
            "\r\nConnection: close\r\n\r\n";
    record_status(status);
    write(head + body);
    exchange_done();
  }

  void after_response() {
    exchange_.reset();
    response_complete_ = false;
    if (closed_) return;
    if (close_after_response_ || !keep_alive()) {
      linger_close();
    } else {
      read_next();
    }
  }

  // Half-closes, then reads and drops what the client still sends (so that it sees our
  // response instead of a reset), for a bounded time and size.
  void linger_close() {
    state_ = State::kLingering;
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) {
      close();
      return;
    }
    arm_read_timer(kLingerMs);
    linger_read();
  }

  void linger_read() {
    if (!linger_buf_) linger_buf_ = std::make_unique<char[]>(kLingerChunk);
    socket_.async_read_some(net::buffer(linger_buf_.get(), kLingerChunk),
                            [self = shared_from_this()](error_code ec, size_t n) {
                              if (self->closed_) return;
                              self->lingered_ += n;
                              if (ec || self->lingered_ > kMaxLingerBytes) {
                                self->close();
                                return;
                              }
                              self->linger_read();
                            });
  }

  void start_write() {
    writing_.clear();
    writing_.swap(out_);
    write_pending_ = true;
    const uint64_t gen = ++write_timer_gen_;
    write_timer_.expires_after(std::chrono::milliseconds(server_.cfg_.write_timeout_ms));
    write_timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
      if (!ec && gen == self->write_timer_gen_) self->close();  // the client stopped reading
    });
    net::async_write(socket_, net::buffer(writing_),
                     [self = shared_from_this()](error_code ec, size_t) { self->on_write(ec); });
  }

  void on_write(error_code ec) {
    write_pending_ = false;
    ++write_timer_gen_;
    write_timer_.cancel();
    if (closed_) return;
    if (ec) {
      close();
      return;
    }
    if (!out_.empty()) {
      start_write();
    } else if (response_complete_) {
      after_response();
    }
  }

  void arm_read_timer(int ms) {
    const uint64_t gen = ++read_timer_gen_;
    read_timer_.expires_after(std::chrono::milliseconds(ms));
    read_timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
      if (ec || gen != self->read_timer_gen_ || self->closed_) return;
      self->on_read_timeout();
    });
  }

  void disarm_read_timer() {
    ++read_timer_gen_;
    read_timer_.cancel();
  }

  void on_read_timeout() {
    if (state_ == State::kReadingHeader || state_ == State::kReadingBody) {
      timed_out_ = true;
      error_code ec;
      socket_.cancel(ec);  // the pending read completes with an error -> 408
    } else if (state_ == State::kIdle || state_ == State::kLingering) {
      close();
    }
  }

  static constexpr size_t kLingerChunk = 64 << 10;

  HttpServer& server_;
  tcp::socket socket_;
  net::steady_timer read_timer_, write_timer_;
  net::steady_timer recheck_timer_;  // see on_readable: stale readiness while handling
  uint64_t read_timer_gen_ = 0, write_timer_gen_ = 0;  // a timer fires only for its own arming
  boost::beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  State state_ = State::kIdle;
  bool wait_pending_ = false;
  bool closed_ = false;
  bool timed_out_ = false;
  bool keep_alive_ = true;
  bool response_complete_ = false;
  bool close_after_response_ = false;
  bool write_pending_ = false;
  std::string out_, writing_;  // queued bytes; bytes of the write in flight
  std::unique_ptr<char[]> linger_buf_;
  size_t lingered_ = 0;
  std::shared_ptr<Exchange> exchange_;
};

// ---- Exchange ----

Exchange::Exchange(std::shared_ptr<Connection> conn, HttpRequest req) : conn_(std::move(conn)), req_(std::move(req)) {}

bool Exchange::client_gone() const { return conn_->closed(); }

net::any_io_executor Exchange::executor() const { return conn_->executor(); }

namespace {
std::string response_head(int status, std::string_view content_type, const HeaderList& extra, bool keep_alive) {
  std::string h;
  h.reserve(256);
  h += "HTTP/1.1 ";
  h += std::to_string(status);
  h += ' ';
  h += status_reason(status);
  h += "\r\nContent-Type: ";
  h += content_type;
  h += "\r\n";
  for (const auto& [k, v] : extra) {
    h += k;
    h += ": ";
    h += v;
    h += "\r\n";
  }
  h += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  return h;
}
}  // namespace

void Exchange::respond(int status, std::string_view content_type, std::string body, const HeaderList& extra) {
  if (started_ || completed_) return;
  completed_ = true;
  auto owner = std::move(owner_);
  if (conn_->closed()) return;
  std::string msg = response_head(status, content_type, extra, conn_->keep_alive());
  msg += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  msg += body;
  conn_->record_status(status);
  conn_->write(msg);
  conn_->exchange_done();
}

void Exchange::start_stream(int status, std::string_view content_type, const HeaderList& extra) {
  if (started_ || completed_) return;
  started_ = true;
  if (conn_->closed()) return;
  std::string msg = response_head(status, content_type, extra, conn_->keep_alive());
  msg += "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n\r\n";
  conn_->record_status(status);
  conn_->write(msg);
}

void Exchange::write_chunk(std::string_view data) {
  if (!started_ || completed_ || data.empty() || conn_->closed()) return;
  char size[24];
  const int n = std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  std::string msg;
  msg.reserve(data.size() + 32);
  msg.append(size, static_cast<size_t>(n));
  msg.append(data);
  msg += "\r\n";
  conn_->write(msg);
}

void Exchange::end_stream() {
  if (!started_ || completed_) return;
  completed_ = true;
  auto owner = std::move(owner_);
  if (conn_->closed()) return;
  conn_->write("0\r\n\r\n");
  conn_->exchange_done();
}

void Exchange::notify_gone() {
  if (completed_) return;
  completed_ = true;
  if (auto owner = std::move(owner_)) owner->on_client_gone();
}

// ---- HttpServer ----

HttpServer::HttpServer(HttpConfig cfg, Handler handler)
    : cfg_(std::move(cfg)),
      handler_(std::move(handler)),
      ioc_(std::max(1, cfg_.n_io_threads)),
      acceptor_(net::make_strand(ioc_)),
      accept_retry_(acceptor_.get_executor()),
      grace_(acceptor_.get_executor()) {}

HttpServer::~HttpServer() {
  std::lock_guard<std::mutex> lk(mu_);
  stopping_ = true;
  destroying_ = true;  // connections destroyed along with ioc_ must not call into it
}

Status HttpServer::listen() {
  error_code ec;
  const auto addr = net::ip::make_address(cfg_.host, ec);
  if (ec) return invalid_argument("--host: '" + cfg_.host + "' is not an IP address");
  if (cfg_.port < 0 || cfg_.port > 65535) return invalid_argument("--port: " + std::to_string(cfg_.port) + " out of range");
  const tcp::endpoint ep(addr, static_cast<unsigned short>(cfg_.port));
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return Status(ErrorCode::kIo, "cannot listen on " + cfg_.host + ":" + std::to_string(cfg_.port) + ": " + ec.message());
  port_ = acceptor_.local_endpoint().port();
  return Status::ok();
}

void HttpServer::run() {
  net::post(acceptor_.get_executor(), [this] { do_accept(); });
  std::vector<std::thread> threads;
  for (int i = 1; i < std::max(1, cfg_.n_io_threads); ++i) threads.emplace_back([this] { ioc_.run(); });
  ioc_.run();
  for (auto& t : threads) t.join();
}

void HttpServer::do_accept() {
  if (stopping_) return;
  acceptor_.async_accept(net::make_strand(ioc_),
                         [this](error_code ec, tcp::socket s) { on_accept(ec, std::move(s)); });
}

void HttpServer::on_accept(error_code ec, tcp::socket socket) {
  if (stopping_) return;
  if (ec) {
    if (ec == net::error::operation_aborted) return;
    // e.g. out of file descriptors: back off instead of spinning
    accept_retry_.expires_after(std::chrono::milliseconds(100));
    accept_retry_.async_wait([this](error_code e) {
      if (!e) do_accept();
    });
    return;
  }
  if (n_connections() >= cfg_.max_connections) {
    error_code ignored;
    socket.close(ignored);
  } else {
    std::make_shared<Connection>(*this, std::move(socket))->start();
  }
  do_accept();
}

void HttpServer::stop() {
  if (stopping_.exchange(true)) return;
  net::post(acceptor_.get_executor(), [this] {
    error_code ec;
    acceptor_.close(ec);
    accept_retry_.cancel();
    std::vector<std::shared_ptr<Connection>> live;
    {
      std::lock_guard<std::mutex> lk(mu_);
      for (Connection* c : conns_)
        if (auto p = c->weak_from_this().lock()) live.push_back(std::move(p));
      if (conns_.empty()) {
        ioc_.stop();
        return;
      }
    }
    for (auto& c : live) net::post(c->executor(), [c] { c->close(); });
    grace_.expires_after(std::chrono::milliseconds(cfg_.shutdown_grace_ms));
    grace_.async_wait([this](error_code e) {
      if (!e) ioc_.stop();
    });
  });
}

int HttpServer::n_connections() const {
  std::lock_guard<std::mutex> lk(mu_);
  return static_cast<int>(conns_.size());
}

void HttpServer::add(Connection* c) {
  std::lock_guard<std::mutex> lk(mu_);
  conns_.insert(c);
}

void HttpServer::remove(Connection* c) {
  std::lock_guard<std::mutex> lk(mu_);
  conns_.erase(c);
  if (stopping_ && conns_.empty() && !destroying_) ioc_.stop();
}

}  // namespace tachyon::server
