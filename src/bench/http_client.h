// An asynchronous HTTP/1.1 client for the load generator, on Boost.Beast/Asio.
//
// - Keep-alive connection pool per host:port; a request takes an idle connection or opens
//   a new one, and gives it back when the response ended cleanly and both sides allow
//   reuse. A request whose reused connection turns out stale (closed by the server while
//   idle, before any response byte arrived) is retried once on a fresh connection.
// - Responses stream: body bytes (chunked transfer encoding already decoded by Beast's
//   parser) are handed to on_data as they arrive, stamped with the arrival time.
// - One deadline per request (connect, send, whole response) plus a shorter connect
//   deadline; on expiry the connection is closed and the request ends with kTimeout.
//   Every request ends in exactly one on_done call: no path can hang past its deadline.
//
// Threading: an HttpClient belongs to one io_context run by ONE thread. request() and
// every callback run on that thread; nothing is locked. The client must outlive every
// request it started (destroy it after io_context::run() returned, or after the last
// on_done).
//
// TLS (https://): Boost.Asio SSL over OpenSSL. The certificate is verified against the
// system store (plus ClientConfig::tls.ca_file) with SNI and host name / IP checks unless
// tls.verify is false. The handshake runs under the connect deadline (bounded by the
// request deadline) and fails with kTls and a message naming the cause. http:// pays
// nothing for it: the plain path is the same socket calls as before, one branch each.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace boost::asio {
class io_context;
}

namespace tachyon::bench {

// http[s]://host[:port][/base/path]. The base path has no trailing '/'.
struct Url {
  std::string scheme = "http";
  std::string host;
  uint16_t port = 80;
  std::string base_path;  // "" or "/v1" ...

  // Errors (kInvalidArgument) name what is wrong: missing scheme, unsupported scheme,
  // empty host, bad port. The default port is 80 for http, 443 for https.
  static Result<Url> parse(std::string_view s);
  bool tls() const { return scheme == "https"; }
  uint16_t default_port() const { return tls() ? 443 : 80; }
  std::string host_port() const { return host + ":" + std::to_string(port); }
  std::string str() const { return scheme + "://" + host_port() + base_path; }
  // The request target for an API path such as "/v1/models": appended to base_path, with
  // one "/v1" dropped when base_path already ends in it (OpenAI-style base URLs).
  std::string target(std::string_view v1_path) const;
};

// How a request failed. Names (error_kind_name) appear in reports.
enum class ErrorKind {
  kNone = 0,
  kConnect,       // could not resolve or connect (refused, unreachable)
  kTls,           // TLS handshake failed (certificate not trusted, wrong host, not TLS)
  kTimeout,       // the per-request deadline passed (includes stalls)
  kHttpStatus,    // the server answered with a non-2xx status
  kProtocol,      // the bytes were not valid HTTP/1.1
  kDisconnected,  // the connection closed before the response (or stream) was complete
  kBadResponse,   // HTTP fine, but not an OpenAI-compatible (streaming) response
  kStreamError,   // the server reported an error inside the stream
  kCancelled,     // aborted by the caller
};
const char* error_kind_name(ErrorKind k);

struct HttpError {
  ErrorKind kind = ErrorKind::kNone;
  int http_status = 0;  // for kHttpStatus (and any response that got a status line)
  std::string message;  // human-readable, names the endpoint and the cause
  std::string body = {};  // kHttpStatus: the response body as sent (up to max_error_body_bytes)
  bool ok() const { return kind == ErrorKind::kNone; }
};

struct HttpRequest {
  std::string method = "POST";
  std::string target = "/";  // path and query
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  double timeout_ms = 0;  // whole exchange; 0 = no deadline (connect deadline still applies)
};

struct ResponseHead {
  int status = 0;
  std::string content_type;
  bool chunked = false;
};

struct StreamHandlers {
  // Once, when the status line and headers of a 2xx response arrived. t_us: steady clock.
  std::function<void(const ResponseHead& head, int64_t t_us)> on_head;
  // Body bytes of a 2xx response as they arrive (already de-chunked). Return false to
  // abort the request: the connection is closed and on_done gets kCancelled.
  std::function<bool(std::string_view data, int64_t t_us)> on_data;
  // Exactly once. For non-2xx answers the error message carries the status and the
  // server's error text (OpenAI's error.message when the body is such JSON).
  std::function<void(const HttpError& err, int64_t t_us)> on_done;
};

// How https:// servers are authenticated. Plain http:// ignores it.
struct TlsConfig {
  bool verify = true;   // false (--insecure): any certificate is accepted
  std::string ca_file;  // PEM file of CA certificates trusted besides the system store
};

struct ClientConfig {
  double connect_timeout_ms = 10'000;  // TCP connect; the TLS handshake gets as long again
  size_t read_buffer_bytes = 16 << 10;  // per in-flight request
  size_t max_idle_per_host = 4096;
  size_t max_error_body_bytes = 64 << 10;  // kept from non-2xx bodies for the message
  std::string user_agent = "tachyon-bench";
  TlsConfig tls;
};

struct ClientStats {
  int64_t n_requests = 0;
  int64_t n_connections_opened = 0;
  int64_t n_connections_reused = 0;
  int64_t n_stale_retries = 0;
  int64_t n_bytes_received = 0;
};

class HttpClient {
 public:
  HttpClient(boost::asio::io_context& io, ClientConfig cfg = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Starts one request to url (its base_path is NOT prepended: req.target is sent as is).
  // Must be called on the io_context's thread. Cost: O(1) plus the request's bytes.
  void request(const Url& url, HttpRequest req, StreamHandlers h);

  // Closes every idle pooled connection (in-flight requests are unaffected).
  void close_idle();
  const ClientStats& stats() const;
  size_t n_in_flight() const;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tachyon::bench
