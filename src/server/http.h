// A small async HTTP/1.1 server on Boost.Beast/Asio: keep-alive, request size limits,
// per-phase timeouts, chunked streaming responses, client-disconnect detection and a
// graceful stop. It knows nothing about OpenAI or the engine: every complete request
// becomes an Exchange handed to one Handler.
//
// Threading: a fixed number of I/O threads run one io_context. Each connection lives on
// its own strand; the Handler and every Exchange method run on (and must be called on)
// that strand. Other threads reach a connection only through Exchange::post(), which is
// thread-safe and never blocks.
//
// Timeouts (each closes the connection): idle keep-alive wait for the first byte of a
// request, time to receive a complete header once it started, time to receive the body,
// and a write that makes no progress.
#pragma once
#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/http.hpp>

#include "base/status.h"

namespace tachyon::server {

namespace net = boost::asio;
namespace http = boost::beast::http;

struct HttpConfig {
  std::string host = "127.0.0.1";
  int port = 8080;                        // 0 = any free port (see HttpServer::port())
  int n_io_threads = 2;
  size_t max_body_bytes = size_t{8} << 20;  // larger bodies get 413
  size_t max_header_bytes = size_t{16} << 10;  // larger headers get 431
  int idle_timeout_ms = 30'000;    // keep-alive: waiting for the next request's first byte
  int header_timeout_ms = 10'000;  // first byte -> complete header
  int body_timeout_ms = 30'000;    // header -> complete body
  int write_timeout_ms = 60'000;   // one write that makes no progress
  int max_connections = 1024;      // beyond this, new connections are closed at once
  int shutdown_grace_ms = 2'000;   // stop(): after this, the I/O threads quit regardless
  // The body of responses the HTTP layer makes itself (400 malformed HTTP, 408, 413, 431,
  // 500); JSON. Default: OpenAI's error shape with type invalid_request_error.
  std::function<std::string(int status, std::string_view message)> error_body;
  // Called with the status of every response sent (for metrics); on an I/O thread.
  std::function<void(int status)> on_status;
};

using HttpRequest = http::request<http::string_body>;
using HeaderList = std::vector<std::pair<std::string, std::string>>;

class Connection;

// Told when the client of an unfinished exchange goes away (disconnect, timeout, server
// stop). Called on the connection's strand, at most once.
class ExchangeOwner {
 public:
  virtual ~ExchangeOwner() = default;
  virtual void on_client_gone() = 0;
};

// One request and its response. Exactly one of respond() or start_stream() ... end_stream()
// completes it; calls after completion or after the connection closed are ignored.
// All methods except post() must run on the connection's strand.
class Exchange {
 public:
  Exchange(std::shared_ptr<Connection> conn, HttpRequest req);

  const HttpRequest& request() const { return req_; }
  // A complete response with Content-Length.
  void respond(int status, std::string_view content_type, std::string body, const HeaderList& extra = {});
  // Starts a chunked response; then write_chunk() any number of times and end_stream().
  void start_stream(int status, std::string_view content_type, const HeaderList& extra = {});
  void write_chunk(std::string_view data);
  void end_stream();

  bool completed() const { return completed_; }
  bool client_gone() const;
  // Keeps `owner` alive until the exchange completes or the client goes away, and tells
  // it in the latter case.
  void set_owner(std::shared_ptr<ExchangeOwner> owner) { owner_ = std::move(owner); }
  // The connection's strand; post work here from other threads.
  net::any_io_executor executor() const;

 private:
  friend class Connection;
  void notify_gone();
  std::shared_ptr<Connection> conn_;
  HttpRequest req_;
  std::shared_ptr<ExchangeOwner> owner_;
  bool started_ = false, completed_ = false;
};

using Handler = std::function<void(std::shared_ptr<Exchange>)>;

class HttpServer {
 public:
  HttpServer(HttpConfig cfg, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens. Errors: kInvalidArgument for a bad address, kIo when binding fails.
  Status listen();
  int port() const { return port_; }  // the bound port (after listen())
  // Runs the I/O threads (the caller's thread is one of them) until stop() completes.
  void run();
  // Stops accepting, closes every connection (telling unfinished exchanges' owners),
  // and makes run() return once they are gone or after shutdown_grace_ms. Thread-safe,
  // idempotent, never blocks.
  void stop();
  bool stopping() const { return stopping_.load(); }

  net::io_context& io_context() { return ioc_; }
  const HttpConfig& config() const { return cfg_; }
  int n_connections() const;

 private:
  friend class Connection;
  void do_accept();
  void on_accept(boost::system::error_code ec, net::ip::tcp::socket socket);
  void add(Connection* c);
  void remove(Connection* c);

  HttpConfig cfg_;
  Handler handler_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  bool destroying_ = false;  // guarded by mu_
  mutable std::mutex mu_;
  std::unordered_set<Connection*> conns_;  // guarded by mu_; added in the constructor, removed in ~Connection
  // Declared last so that handlers still queued at destruction (holding connections)
  // are destroyed while the members above are alive.
  net::io_context ioc_;
  net::ip::tcp::acceptor acceptor_;
  net::steady_timer accept_retry_;
  net::steady_timer grace_;
};

// Reason phrase for a status code ("Not Found").
std::string_view status_reason(int status);

}  // namespace tachyon::server
