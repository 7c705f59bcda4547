#include "stub_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

namespace stub {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Server::Impl {
  asio::io_context io;
  tcp::acceptor acc{io};
  ScriptFn fn;
  std::mutex fn_mu;
  std::atomic<int> n_req{0}, n_conn{0}, n_hs_failed{0};
  std::optional<ssl::context> ssl_ctx;  // TLS mode
  std::vector<std::thread> threads;
  int port = 0;
  std::atomic<bool> stopped{false};
};

namespace {

std::string chunked(const std::string& data, bool raw) {
  if (raw) return data;
  char hex[32];
  std::snprintf(hex, sizeof hex, "%zx\r\n", data.size());
  return hex + data + "\r\n";
}

class Conn : public std::enable_shared_from_this<Conn> {
 public:
  Conn(tcp::socket s, Server::Impl* srv) : sock_(s.get_executor()), timer_(s.get_executor()), srv_(srv) {
    if (srv->ssl_ctx)
      tls_.emplace(std::move(s), *srv->ssl_ctx);
    else
      sock_ = std::move(s);
  }

  void start() {
    if (!tls_) return read();
    tls_->async_handshake(ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
      if (ec) {
        ++self->srv_->n_hs_failed;
        return self->close();
      }
      self->read();
    });
  }

  void read() {
    parser_.emplace();
    parser_->body_limit(64 << 20);
    with_stream([this](auto& s) {
      http::async_read(s, buf_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->close();
        self->on_request(self->parser_->release());
      });
    });
  }

 private:
  tcp::socket& socket() { return tls_ ? tls_->next_layer() : sock_; }
  template <class F>
  void with_stream(F&& f) {
    if (tls_)
      f(*tls_);
    else
      f(sock_);
  }

  enum class Action { kData, kStall, kClose, kEnd };
  struct Ev {
    Clock::time_point due;
    std::string data;
    Action action = Action::kData;
  };

  void on_request(http::request<http::string_body> req) {
    const std::string target(req.target());
    keep_alive_ = req.keep_alive();
    if (req.method() == http::verb::get && (target == "/v1/models" || target == "/health")) {
      respond(200, "application/json",
              target == "/health" ? R"({"status":"ok"})" : R"({"object":"list","data":[{"id":"stub-model","object":"model"}]})");
      return;
    }
    const bool chat = target == "/v1/chat/completions";
    if (req.method() != http::verb::post || (!chat && target != "/v1/completions")) {
      respond(404, "application/json", R"({"error":{"message":"not found","type":"invalid_request_error"}})");
      return;
    }
    json body = json::parse(req.body(), nullptr, false);
    if (body.is_discarded()) {
      respond(400, "application/json", R"({"error":{"message":"bad json"}})");
      return;
    }
    const int idx = srv_->n_req++;
    Script sc;
    {
      std::lock_guard<std::mutex> lk(srv_->fn_mu);
      sc = srv_->fn(idx, body);
    }
    if (sc.status != 200) {
      respond(sc.status, "application/json",
              json{{"error", {{"message", "injected error " + std::to_string(sc.status)}, {"type", "server_error"}}}}.dump());
      return;
    }
    if (!sc.raw_body.empty()) {
      respond(200, sc.raw_content_type, sc.raw_body);
      return;
    }
    stream(sc, body, chat);
  }

  void stream(const Script& sc, const json& body, bool chat) {
    const auto t0 = Clock::now();
    auto ms = [&](double v) { return t0 + std::chrono::microseconds(static_cast<int64_t>(v * 1000)); };
    raw_ = sc.connection_close;
    if (raw_) keep_alive_ = false;
    std::vector<int> chunks = sc.chunk_tokens;
    if (chunks.empty()) {
      const int n = sc.n_tokens >= 0 ? sc.n_tokens : body.value("max_tokens", 16);
      chunks.assign(static_cast<size_t>(n), 1);
    }
    int n_total = 0;
    for (int k : chunks) n_total += k;
    int n_prompt = 1;
    if (body.contains("messages"))
      for (const auto& m : body["messages"]) {
        const std::string c = m.value("content", "");
        n_prompt += static_cast<int>(std::count(c.begin(), c.end(), ' '));
      }
    const json base = {{"id", "cmpl-stub"}, {"object", chat ? "chat.completion.chunk" : "text_completion"},
                       {"created", 0}, {"model", "stub-model"}};
    auto chunk = [&](const std::string& text, int k, const json& finish) {
      json c = base;
      json choice = {{"index", 0}, {"finish_reason", finish}};
      if (chat) choice["delta"] = text.empty() ? json::object() : json{{"content", text}};
      else choice["text"] = text;
      if (sc.logprobs && k > 0) {
        json lp = json::array();
        for (int i = 0; i < k; ++i) lp.push_back({{"token", "tok"}, {"logprob", -0.5}});
        choice["logprobs"] = chat ? json{{"content", lp}} : json{{"tokens", lp}};
      }
      c["choices"] = json::array({choice});
      return "data: " + c.dump() + "\n\n";
    };
    std::vector<Ev> evs;
    if (sc.role_chunk && chat) {
      json c = base;
      c["choices"] = json::array({{{"index", 0}, {"delta", {{"role", "assistant"}}}, {"finish_reason", nullptr}}});
      evs.push_back({t0, "data: " + c.dump() + "\n\n"});
    }
    double t = sc.ttft_ms;
    for (size_t i = 0; i < chunks.size(); ++i) {
      if (i > 0) t += sc.gap_ms * chunks[i];
      const int done = static_cast<int>(i);
      if (done == sc.stall_after) { evs.push_back({ms(t), "", Action::kStall}); break; }
      if (done == sc.close_after) { evs.push_back({ms(t), "", Action::kClose}); break; }
      if (done == sc.error_event_after) {
        evs.push_back({ms(t), R"(data: {"error":{"message":"injected stream error","type":"server_error"}})" "\n\n"});
        evs.push_back({ms(t), "", Action::kEnd});
        break;
      }
      std::string text;
      for (int k = 0; k < chunks[i]; ++k) text += "tok ";
      evs.push_back({ms(t), chunk(text, chunks[i], nullptr)});
    }
    if (evs.empty() || evs.back().action == Action::kData) {
      evs.push_back({ms(t), chunk("", 0, "length")});
      const bool want_usage = body.contains("stream_options") && body["stream_options"].value("include_usage", false);
      if (sc.usage && want_usage) {
        json u = base;
        u["choices"] = json::array();
        u["usage"] = {{"prompt_tokens", n_prompt},
                      {"completion_tokens", n_total + sc.usage_delta},
                      {"total_tokens", n_prompt + n_total + sc.usage_delta},
                      {"prompt_tokens_details", {{"cached_tokens", 0}}}};
        if (sc.timings)
          u["timings"] = {{"prompt_n", n_prompt}, {"prompt_ms", sc.prompt_ms},  {"predicted_n", n_total},
                          {"predicted_ms", 1.0},  {"queue_ms", sc.queue_ms},    {"cached_n", 0}};
        evs.push_back({ms(t), "data: " + u.dump() + "\n\n"});
      }
      if (!sc.no_done) evs.push_back({ms(t), "data: [DONE]\n\n"});
      evs.push_back({ms(t), "", Action::kEnd});
    }
    evs_ = std::move(evs);
    next_ = 0;
    std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n";
    head += raw_ ? "Connection: close\r\n\r\n" : "Transfer-Encoding: chunked\r\n\r\n";
    write(std::move(head));
    step();
  }

  void step() {
    const auto now = Clock::now();
    while (next_ < evs_.size() && evs_[next_].due <= now) {
      Ev& e = evs_[next_++];
      switch (e.action) {
        case Action::kData: write(chunked(e.data, raw_)); break;
        case Action::kStall: watch_close(); return;
        case Action::kClose: close_after_write_ = true; flush_end(); return;
        case Action::kEnd:
          if (!raw_) write("0\r\n\r\n");
          end_after_write_ = true;
          flush_end();
          return;
      }
    }
    if (next_ < evs_.size()) {
      timer_.expires_at(evs_[next_].due);
      timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (!ec) self->step();
      });
    }
  }

  // A stalled stream: hold the connection until the client gives up.
  void watch_close() {
    with_stream([this](auto& s) {
      s.async_read_some(asio::buffer(scratch_), [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->close();
        self->watch_close();
      });
    });
  }

  void respond(int status, const std::string& ctype, const std::string& body) {
    std::string r = "HTTP/1.1 " + std::to_string(status) + " " +
                    std::string(http::obsolete_reason(static_cast<http::status>(status))) + "\r\nContent-Type: " + ctype +
                    "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
                    (keep_alive_ ? "" : "Connection: close\r\n") + "\r\n" + body;
    raw_ = false;
    end_after_write_ = true;
    write(std::move(r));
  }

  void write(std::string s) {
    outq_.push_back(std::move(s));
    if (!writing_) do_write();
  }
  void do_write() {
    if (outq_.empty()) {
      writing_ = false;
      flush_end();
      return;
    }
    writing_ = true;
    with_stream([this](auto& s) {
      asio::async_write(s, asio::buffer(outq_.front()), [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->close();
        self->outq_.pop_front();
        self->do_write();
      });
    });
  }
  void flush_end() {
    if (writing_ || !outq_.empty()) return;
    if (close_after_write_) return close();
    if (!end_after_write_) return;
    end_after_write_ = false;
    if (raw_ || !keep_alive_) return close();
    read();
  }
  void close() {
    beast::error_code ec;
    timer_.cancel();
    // TLS too: no close_notify, as many servers do (the client must cope).
    socket().shutdown(tcp::socket::shutdown_both, ec);
    socket().close(ec);
  }

  tcp::socket sock_;  // plain HTTP; unused under TLS
  std::optional<beast::ssl_stream<tcp::socket>> tls_;
  asio::steady_timer timer_;
  Server::Impl* srv_;
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::vector<Ev> evs_;
  size_t next_ = 0;
  std::deque<std::string> outq_;
  bool writing_ = false, end_after_write_ = false, close_after_write_ = false, raw_ = false, keep_alive_ = true;
  char scratch_[512];
};

void do_accept(Server::Impl* srv) {
  srv->acc.async_accept(asio::make_strand(srv->io), [srv](beast::error_code ec, tcp::socket s) {
    if (ec) return;
    ++srv->n_conn;
    s.set_option(tcp::no_delay(true), ec);
    std::make_shared<Conn>(std::move(s), srv)->start();
    do_accept(srv);
  });
}

}  // namespace

Server::Server(ScriptFn fn, int n_threads, TlsCert tls) : impl_(std::make_shared<Impl>()), tls_(!tls.empty()) {
  impl_->fn = std::move(fn);
  if (tls_) {
    ssl::context ctx(ssl::context::tls_server);
    ctx.use_certificate_chain(asio::buffer(tls.cert_pem));
    ctx.use_private_key(asio::buffer(tls.key_pem), ssl::context::pem);
    impl_->ssl_ctx.emplace(std::move(ctx));
  }
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acc.open(ep.protocol());
  impl_->acc.set_option(asio::socket_base::reuse_address(true));
  impl_->acc.bind(ep);
  impl_->acc.listen(4096);
  impl_->port = impl_->acc.local_endpoint().port();
  do_accept(impl_.get());
  for (int i = 0; i < n_threads; ++i) impl_->threads.emplace_back([this] { impl_->io.run(); });
}

Server::~Server() { stop(); }

void Server::stop() {
  if (impl_->stopped.exchange(true)) return;
  asio::post(impl_->io, [i = impl_.get()] {
    beast::error_code ec;
    i->acc.close(ec);
  });
  impl_->io.stop();
  for (auto& t : impl_->threads) t.join();
}

int Server::port() const { return impl_->port; }
int Server::n_requests() const { return impl_->n_req.load(); }
int Server::n_connections() const { return impl_->n_conn.load(); }
int Server::n_handshakes_failed() const { return impl_->n_hs_failed.load(); }

TlsCert make_self_signed_cert(const std::string& subject_alt_names, std::string* err) {
  TlsCert out;
  EVP_PKEY* key = nullptr;
  X509* x = nullptr;
  BIO* cert_bio = nullptr;
  BIO* key_bio = nullptr;
  auto fail = [&](const char* what) {
    *err = what;
    out = {};
  };
  EVP_PKEY_CTX* kctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nullptr);
  if (!kctx || EVP_PKEY_keygen_init(kctx) <= 0 ||
      EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kctx, NID_X9_62_prime256v1) <= 0 || EVP_PKEY_keygen(kctx, &key) <= 0) {
    fail("EC key generation failed");
  } else if (!(x = X509_new())) {
    fail("X509_new failed");
  } else {
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), static_cast<long>(Clock::now().time_since_epoch().count() & 0x7fffffff));
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("tachyon-test"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, nullptr, nullptr, 0);
    X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, subject_alt_names.c_str());
    if (!san || X509_add_ext(x, san, -1) != 1) {
      fail("bad subjectAltName");
    } else if (X509_sign(x, key, EVP_sha256()) <= 0) {
      fail("X509_sign failed");
    } else {
      cert_bio = BIO_new(BIO_s_mem());
      key_bio = BIO_new(BIO_s_mem());
      if (!PEM_write_bio_X509(cert_bio, x) ||
          !PEM_write_bio_PrivateKey(key_bio, key, nullptr, nullptr, 0, nullptr, nullptr)) {
        fail("PEM encoding failed");
      } else {
        char* p = nullptr;
        long n = BIO_get_mem_data(cert_bio, &p);
        out.cert_pem.assign(p, static_cast<size_t>(n));
        n = BIO_get_mem_data(key_bio, &p);
        out.key_pem.assign(p, static_cast<size_t>(n));
      }
    }
    X509_EXTENSION_free(san);
  }
  BIO_free(cert_bio);
  BIO_free(key_bio);
  X509_free(x);
  EVP_PKEY_free(key);
  EVP_PKEY_CTX_free(kctx);
  return out;
}

RawServer::RawServer(std::string reply) : reply_(std::move(reply)) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(fd_, 64);
  socklen_t len = sizeof a;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  th_ = std::thread([this] {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      char buf[4096];
      pollfd pc{c, POLLIN, 0};
      if (::poll(&pc, 1, 500) > 0) (void)!::read(c, buf, sizeof buf);
      (void)!::write(c, reply_.data(), reply_.size());
      ::close(c);
    }
  });
}

RawServer::~RawServer() {
  stop_ = true;
  th_.join();
  ::close(fd_);
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

}  // namespace stub
