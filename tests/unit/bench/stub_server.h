// A scripted OpenAI-compatible streaming server for the bench tests (Boost.Beast): known
// TTFT, known inter-token gaps, multi-token chunks, injected HTTP errors, stalls, broken
// connections and non-OpenAI bodies. Chunk times are absolute deadlines from the moment
// the request was read, so the scripted truth does not drift.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace stub {

struct Script {
  int status = 200;  // != 200: an OpenAI error body with this status
  double ttft_ms = 20;         // request read -> first token chunk
  double gap_ms = 5;           // per token: a chunk of k tokens comes k * gap_ms after the previous
  std::vector<int> chunk_tokens;  // tokens per chunk; empty: n_tokens chunks of one token
  int n_tokens = -1;              // -1: the request's max_tokens
  bool role_chunk = true;         // role-only chunk at once (must not count as a token)
  bool usage = true;              // usage chunk when stream_options.include_usage
  int usage_delta = 0;            // usage.completion_tokens = true N + delta
  bool timings = false;           // llama-server style timings on the usage chunk
  double queue_ms = 0, prompt_ms = 0;
  bool logprobs = false;          // logprobs.content with one entry per token
  int stall_after = -1;           // after this many token chunks: send nothing more, keep open
  int close_after = -1;           // after this many token chunks: close the connection
  int error_event_after = -1;     // after this many token chunks: an SSE error event, then end
  std::string raw_body;           // non-empty: 200 with this body and raw_content_type
  std::string raw_content_type = "text/html";
  bool connection_close = false;  // "Connection: close" and no chunked encoding (EOF-delimited)
  bool no_done = false;           // omit data: [DONE]
};

using ScriptFn = std::function<Script(int index, const nlohmann::json& request)>;

// A certificate and its private key, PEM.
struct TlsCert {
  std::string cert_pem, key_pem;
  bool empty() const { return cert_pem.empty(); }
};

// A fresh self-signed certificate (EC P-256, valid from an hour ago for a day) for the
// given subjectAltName list, e.g. "IP:127.0.0.1,DNS:localhost", made with the OpenSSL C
// API. On failure: empty, and *err says why.
TlsCert make_self_signed_cert(const std::string& subject_alt_names, std::string* err);

class Server {
 public:
  // With a certificate the server speaks only TLS (https://), else plain HTTP.
  explicit Server(ScriptFn fn, int n_threads = 1, TlsCert tls = {});
  ~Server();
  int port() const;
  std::string url() const { return (tls_ ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port()); }
  int n_handshakes_failed() const;  // TLS: connections whose handshake failed
  int n_requests() const;       // completion requests received
  int n_connections() const;    // TCP connections accepted
  void stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
  bool tls_ = false;
};

// A TCP server that answers every connection with fixed bytes (not HTTP) and closes.
class RawServer {
 public:
  explicit RawServer(std::string reply);
  ~RawServer();
  int port() const { return port_; }

 private:
  int fd_ = -1, port_ = 0;
  std::string reply_;
  std::atomic<bool> stop_{false};
  std::thread th_;
};

int free_port();  // a port with nothing listening (bound then released)

}  // namespace stub
