// router_stub: the two C++ halves of the router overhead benchmark (bench/router_overhead.py).
//
//   router_stub [--port 0] [--host 127.0.0.1] [--io-threads 1]
//       A stub OpenAI backend on server/http.h: POST /v1/chat/completions and
//       /v1/completions answer at once with a fixed small completion (an SSE stream of two
//       chunks and [DONE] when the body asks for "stream": true); GET /health 200;
//       GET /v1/models one model. Prints "listening on http://HOST:PORT" on stderr and
//       serves until SIGINT/SIGTERM. No model, no engine work: whatever latency a client
//       measures through the router is the router's (plus the loopback and this stub's
//       few microseconds, which a direct run measures).
//
//   router_stub --load URL [--n 20000] [--c 16] [--path /v1/chat/completions] [--stream]
//               [--warmup 200] [--timeout-ms 10000]
//       A closed-loop load generator on bench/http_client.h: --c keep-alive connections
//       each send the next request as soon as the previous one ended, until --n requests
//       (after --warmup unmeasured ones) completed; --stream asks for SSE ("stream": true;
//       the latency is then to the stream's end). One I/O thread. Prints one JSON object
//       on stdout: n, c, ok, errors, wall_s, rps, and latency percentiles (us) of the
//       successful requests: p50_us, p90_us, p99_us, p999_us, mean_us, min_us, max_us.
//
// Costs: the stub allocates one response body per request; the load generator keeps one
// int64 per request. Exit codes: 0, 1 (listen failed / every request failed), 2 (usage).
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it
#include <vector>

#include <boost/asio.hpp>

#include "bench/http_client.h"
#include "server/http.h"

namespace {

using tachyon::server::Exchange;

constexpr std::string_view kChatBody =
    R"({"id":"chatcmpl-stub","object":"chat.completion","created":0,"model":"stub",)"
    R"("choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],)"
    R"("usage":{"prompt_tokens":8,"completion_tokens":1,"total_tokens":9,"prompt_tokens_details":{"cached_tokens":0}}})";
constexpr std::string_view kCompletionBody =
    R"({"id":"cmpl-stub","object":"text_completion","created":0,"model":"stub",)"
    R"("choices":[{"index":0,"text":"ok","finish_reason":"stop"}],)"
    R"("usage":{"prompt_tokens":8,"completion_tokens":1,"total_tokens":9}})";
constexpr std::string_view kChunk1 =
    R"(data: {"id":"chatcmpl-stub","object":"chat.completion.chunk","created":0,"model":"stub",)"
    R"("choices":[{"index":0,"delta":{"role":"assistant","content":"ok"},"finish_reason":null}]})"
    "\n\n";
constexpr std::string_view kChunk2 =
    R"(data: {"id":"chatcmpl-stub","object":"chat.completion.chunk","created":0,"model":"stub",)"
    R"("choices":[{"index":0,"delta":{},"finish_reason":"stop"}],)"
    R"("usage":{"prompt_tokens":8,"completion_tokens":1,"total_tokens":9}})"
    "\n\ndata: [DONE]\n\n";

void handle(const std::shared_ptr<Exchange>& ex) {
  const auto& req = ex->request();
  const std::string_view target(req.target().data(), req.target().size());
  const std::string_view path = target.substr(0, target.find('?'));
  const bool post = req.method() == tachyon::server::http::verb::post;
  if (path == "/health") return ex->respond(200, "application/json", R"({"status":"ok"})");
  if (path == "/v1/models" || path == "/models")
    return ex->respond(200, "application/json", R"({"object":"list","data":[{"id":"stub","object":"model"}]})");
  const bool chat = path == "/v1/chat/completions" || path == "/chat/completions";
  const bool completion = path == "/v1/completions" || path == "/completions";
  if (!post || (!chat && !completion))
    return ex->respond(404, "application/json", R"({"error":{"message":"stub: unknown route","type":"not_found"}})");
  const std::string& body = req.body();
  if (body.find("\"stream\":true") != std::string::npos || body.find("\"stream\": true") != std::string::npos) {
    ex->start_stream(200, "text/event-stream");
    ex->write_chunk(kChunk1);
    ex->write_chunk(kChunk2);
    ex->end_stream();
    return;
  }
  ex->respond(200, "application/json", std::string(chat ? kChatBody : kCompletionBody));
}

int serve(const std::string& host, int port, int io_threads) {
  tachyon::server::HttpConfig cfg;
  cfg.host = host;
  cfg.port = port;
  cfg.n_io_threads = io_threads;
  cfg.idle_timeout_ms = 120'000;
  tachyon::server::HttpServer srv(cfg, [](std::shared_ptr<Exchange> ex) { handle(ex); });
  if (tachyon::Status s = srv.listen(); !s) {
    std::fprintf(stderr, "router_stub: %s\n", s.message().c_str());
    return 1;
  }
  boost::asio::signal_set signals(srv.io_context(), SIGINT, SIGTERM);
  signals.async_wait([&srv](boost::system::error_code ec, int) {
    if (!ec) srv.stop();
  });
  std::fprintf(stderr, "listening on http://%s:%d\n", host.c_str(), srv.port());
  std::fflush(stderr);
  srv.run();
  return 0;
}

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct LoadOptions {
  std::string url, path = "/v1/chat/completions";
  int64_t n = 20000, warmup = 200;
  int c = 16;
  double timeout_ms = 10000;
  bool stream = false;
};

// Closed loop: each of c slots sends a request when its previous one ended.
class Load {
 public:
  explicit Load(LoadOptions o) : o_(std::move(o)), client_(io_) {}

  int run() {
    auto u = tachyon::bench::Url::parse(o_.url);
    if (!u) {
      std::fprintf(stderr, "router_stub: --load %s: %s\n", o_.url.c_str(), u.status().message().c_str());
      return 2;
    }
    url_ = u.value();
    body_ = R"({"model":"stub","messages":[{"role":"user","content":"Say ok."}],"max_tokens":1})";
    if (o_.path.find("/completions") != std::string::npos && o_.path.find("chat") == std::string::npos)
      body_ = R"({"model":"stub","prompt":"Say ok.","max_tokens":1})";
    if (o_.stream) body_.insert(body_.size() - 1, R"(,"stream":true)");
    lat_us_.reserve(static_cast<size_t>(o_.n));
    for (int i = 0; i < o_.c; ++i) boost::asio::post(io_, [this] { next(); });
    io_.run();
    const double wall_s = static_cast<double>(t_end_us_ - t_begin_us_) / 1e6;
    std::sort(lat_us_.begin(), lat_us_.end());
    auto pct = [&](double q) -> double {
      if (lat_us_.empty()) return 0;
      const size_t i = std::min(lat_us_.size() - 1, static_cast<size_t>(q * static_cast<double>(lat_us_.size())));
      return static_cast<double>(lat_us_[i]);
    };
    double sum = 0;
    for (int64_t v : lat_us_) sum += static_cast<double>(v);
    const double mean = lat_us_.empty() ? 0 : sum / static_cast<double>(lat_us_.size());
    std::printf(
        "{\"url\":\"%s\",\"path\":\"%s\",\"stream\":%s,\"n\":%lld,\"c\":%d,\"ok\":%zu,\"errors\":%lld,\"wall_s\":%.4f,"
        "\"rps\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"mean_us\":%.1f,"
        "\"min_us\":%.1f,\"max_us\":%.1f,\"first_error\":\"%s\"}\n",
        o_.url.c_str(), o_.path.c_str(), o_.stream ? "true" : "false", static_cast<long long>(o_.n), o_.c, lat_us_.size(),
        static_cast<long long>(errors_), wall_s, wall_s > 0 ? static_cast<double>(measured_done_) / wall_s : 0.0,
        pct(0.50), pct(0.90), pct(0.99), pct(0.999), mean, lat_us_.empty() ? 0.0 : static_cast<double>(lat_us_.front()),
        lat_us_.empty() ? 0.0 : static_cast<double>(lat_us_.back()), json_escape(first_error_).c_str());
    return lat_us_.empty() ? 1 : 0;
  }

 private:
  static std::string json_escape(const std::string& s) {
    std::string o;
    for (char ch : s) {
      if (ch == '"' || ch == '\\') o += '\\';
      o += (static_cast<unsigned char>(ch) < 0x20) ? ' ' : ch;
    }
    return o;
  }

  void next() {
    if (issued_ >= o_.warmup + o_.n) return;
    const int64_t index = issued_++;
    const bool measured = index >= o_.warmup;
    tachyon::bench::HttpRequest req;
    req.method = "POST";
    req.target = o_.path;
    req.body = body_;
    req.timeout_ms = o_.timeout_ms;
    req.headers.push_back({"Content-Type", "application/json"});
    const int64_t t0 = now_us();
    if (measured && t_begin_us_ == 0) t_begin_us_ = t0;
    tachyon::bench::StreamHandlers h;
    h.on_data = [](std::string_view, int64_t) { return true; };
    h.on_done = [this, t0, measured](const tachyon::bench::HttpError& err, int64_t) {
      const int64_t t1 = now_us();
      if (measured) {
        ++measured_done_;
        t_end_us_ = t1;
        if (err.ok()) {
          lat_us_.push_back(t1 - t0);
        } else {
          if (errors_++ == 0) first_error_ = err.message;
        }
      }
      next();
    };
    client_.request(url_, std::move(req), std::move(h));
  }

  LoadOptions o_;
  boost::asio::io_context io_;
  tachyon::bench::HttpClient client_;
  tachyon::bench::Url url_;
  std::string body_;
  int64_t issued_ = 0, measured_done_ = 0, errors_ = 0;
  int64_t t_begin_us_ = 0, t_end_us_ = 0;
  std::vector<int64_t> lat_us_;  // [ok measured requests] microseconds
  std::string first_error_;
};

int usage() {
  std::fprintf(stderr,
               "usage: router_stub [--port P] [--host H] [--io-threads N]\n"
               "       router_stub --load URL [--n N] [--c C] [--path P] [--stream] [--warmup W] [--timeout-ms MS]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 0, io_threads = 1;
  LoadOptions lo;
  bool load = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "router_stub: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--port") port = std::atoi(val());
    else if (a == "--host") host = val();
    else if (a == "--io-threads") io_threads = std::max(1, std::atoi(val()));
    else if (a == "--load") load = true, lo.url = val();
    else if (a == "--n") lo.n = std::max(1LL, std::atoll(val()));
    else if (a == "--c") lo.c = std::max(1, std::atoi(val()));
    else if (a == "--path") lo.path = val();
    else if (a == "--warmup") lo.warmup = std::max(0LL, std::atoll(val()));
    else if (a == "--timeout-ms") lo.timeout_ms = std::atof(val());
    else if (a == "--stream") lo.stream = true;
    else return usage();
  }
  if (load) return Load(lo).run();
  return serve(host, port, io_threads);
}
