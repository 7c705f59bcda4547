// The server over real HTTP on 127.0.0.1 (port 0), with a fake engine that streams
// canned tokens from its own threads through real engine::RequestHandle objects.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <utility>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <map>
#include <thread>

#include "gguf/gguf.h"
#include "server/server.h"

namespace tachyon::server {
namespace {

using tcp = net::ip::tcp;
namespace beast = boost::beast;

class FakeBackend : public Backend {
 public:
  int token_delay_ms = 2;
  size_t export_bytes = 1000;
  std::atomic<bool> queue_full{false};
  std::atomic<int> n_cancelled{0};

  ~FakeBackend() override { shutdown(); }

  Result<std::shared_ptr<engine::RequestHandle>> submit(engine::GenerateRequest req) override {
    if (queue_full) return Status(ErrorCode::kInternal, "queue_full: 1 requests are waiting");
    auto h = std::make_shared<engine::RequestHandle>(++next_id_);
    std::lock_guard<std::mutex> lk(mu_);
    requests.push_back(req);
    threads_.emplace_back([this, h, req] { generate(h, req); });
    return h;
  }
  engine::EngineStats stats(bool) override {
    engine::EngineStats s;
    s.kv_pages_total = 64;
    s.kv_pages_free = 64;
    s.requests_cancelled = n_cancelled;
    return s;
  }
  void shutdown() override {
    stopping_ = true;
    std::vector<std::thread> ts;
    {
      std::lock_guard<std::mutex> lk(mu_);
      ts.swap(threads_);
    }
    for (auto& t : ts) t.join();
  }
  std::vector<engine::GenerateRequest> recorded() {
    std::lock_guard<std::mutex> lk(mu_);
    return requests;
  }

 private:
  void generate(std::shared_ptr<engine::RequestHandle> h, engine::GenerateRequest req) {
    int n = 0;
    std::string reason = "length";
    for (; n < req.max_tokens; ++n) {
      std::this_thread::sleep_for(std::chrono::milliseconds(token_delay_ms));
      if (h->cancelled() || stopping_) {
        reason = "cancelled";
        ++n_cancelled;
        break;
      }
      engine::Event e;
      e.token = 100 + n;
      e.text = "w" + std::to_string(n) + " ";
      e.logprob = -0.5f;
      for (int k = 0; k < std::max(0, req.top_logprobs); ++k) e.top.push_back({100 + k, "t" + std::to_string(k), -1.0f});
      h->push(std::move(e));
    }
    engine::Event f;
    f.kind = engine::Event::Kind::kFinish;
    f.finish_reason = reason;
    f.prompt_tokens = static_cast<int>(req.prompt.size());
    f.cached_tokens = 3;
    f.completion_tokens = n;
    f.prompt_ms = 1;
    f.decode_ms = 2;
    if (req.export_kv && reason != "cancelled") {  // a transfer of export_bytes, pattern-filled
      std::string kv(export_bytes, '\0');
      for (size_t i = 0; i < kv.size(); ++i) kv[i] = static_cast<char>(i * 131 + 7);
      f.kv_export = std::make_shared<const std::string>(std::move(kv));
      f.kv_export_pages = 3;
    }
    h->push(std::move(f));
  }

  std::atomic<uint64_t> next_id_{0};
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::vector<std::thread> threads_;
  std::vector<engine::GenerateRequest> requests;
};

const tok::Tokenizer& test_tokenizer() {
  static std::unique_ptr<tok::Tokenizer> t = [] {
    auto f = gguf::File::open(std::string(TACHYON_SHARED_DATA) + "/models/mini-qwen2-Q8_0.gguf");
    EXPECT_TRUE(f.is_ok()) << f.status().message();
    auto tk = tok::Tokenizer::from_gguf(*f.value());
    EXPECT_TRUE(tk.is_ok());
    return std::move(tk.value());
  }();
  return *t;
}

struct Resp {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;
  nlohmann::json json() const { return nlohmann::json::parse(body); }
};

class server_http : public ::testing::Test {
 protected:
  void start(std::vector<std::string> keys = {}, ServerRole role = ServerRole::kColocated) {
    ServerConfig cfg;
    cfg.role = role;
    cfg.http.port = 0;
    cfg.http.n_io_threads = 2;
    cfg.http.max_body_bytes = 64 << 10;
    cfg.http.header_timeout_ms = 1000;
    cfg.http.body_timeout_ms = 1000;
    cfg.http.idle_timeout_ms = 2000;
    cfg.api_keys = std::move(keys);
    ModelInfo info;
    info.id = "fake-model";
    info.n_ctx = 256;
    info.weight_type = "Q8_0";
    info.quantization = "Q8_0";
    auto chat = chat::ChatTemplate::parse(chat::default_template());
    ASSERT_TRUE(chat.is_ok());
    server_ = std::make_unique<Server>(cfg, backend_, test_tokenizer(), ChatFormat{chat.value(), "<s>", "</s>"}, info);
    ASSERT_TRUE(server_->listen().is_ok());
    port_ = server_->port();
    thread_ = std::thread([this] { server_->run(); });
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
  }

  Resp request(const std::string& method, const std::string& target, const std::string& body = "",
               std::map<std::string, std::string> headers = {}) {
    net::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_));
    http::request<http::string_body> req(http::string_to_verb(method), target, 11);
    req.set(http::field::host, "127.0.0.1");
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    for (auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    http::write(s, req);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> p;
    p.body_limit(64 << 20);
    http::read(s, buf, p);
    Resp r;
    r.status = p.get().result_int();
    r.body = p.get().body();
    for (auto& f : p.get()) r.headers[std::string(f.name_string())] = std::string(f.value());
    return r;
  }

  // Sends raw bytes; returns what the server sent back before closing (or timeout).
  std::string raw(const std::string& bytes, int timeout_ms = 3000, int chunk_delay_ms = 0) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    if (chunk_delay_ms == 0) {
      (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    } else {
      for (char c : bytes) {
        if (::send(fd, &c, 1, MSG_NOSIGNAL) != 1) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(chunk_delay_ms));
      }
    }
    // Read until the server closes or timeout_ms has passed in total.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    std::string out;
    char buf[4096];
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd pfd{fd, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) break;
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
  }

  static std::vector<nlohmann::json> sse_events(const std::string& body, bool* saw_done) {
    std::vector<nlohmann::json> out;
    *saw_done = false;
    size_t pos = 0;
    while (pos < body.size()) {
      const size_t end = body.find("\n\n", pos);
      EXPECT_NE(end, std::string::npos) << "unterminated event";
      if (end == std::string::npos) break;
      const std::string ev = body.substr(pos, end - pos);
      EXPECT_EQ(ev.rfind("data: ", 0), 0u) << ev;
      const std::string data = ev.substr(6);
      EXPECT_FALSE(*saw_done) << "event after [DONE]";
      if (data == "[DONE]") *saw_done = true;
      else out.push_back(nlohmann::json::parse(data));
      pos = end + 2;
    }
    return out;
  }

  FakeBackend backend_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  int port_ = 0;
};

const std::string kChat = R"({"messages":[{"role":"user","content":"hello"}],"max_tokens":3)";

// A prefill worker's KV export is one response of tens of MB: it must reach the client
// whole (the slow-reader cap on queued writes once dropped such connections).
TEST_F(server_http, KvExportOfFortyMegabytes) {
  backend_.export_bytes = 40u << 20;
  start({}, ServerRole::kPrefill);
  Resp r = request("POST", "/v1/chat/completions", kChat + "}", {{"X-Tachyon-KV-Export", "1"}});
  ASSERT_EQ(r.status, 200) << r.body.substr(0, 300);
  EXPECT_EQ(r.headers["Content-Type"], "application/octet-stream");
  EXPECT_EQ(r.headers["X-Tachyon-KV-Pages"], "3");
  ASSERT_EQ(r.body.size(), 40u << 20);
  bool same = true;
  for (size_t i = 0; i < r.body.size() && same; i += 4099) same = r.body[i] == static_cast<char>(i * 131 + 7);
  EXPECT_TRUE(same);
  const auto reqs = backend_.recorded();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_TRUE(reqs[0].export_kv);
  EXPECT_EQ(reqs[0].max_tokens, 1);  // prefill only
  // n > 1 cannot be exported; a colocated server refuses the header (409), and has no import route
  EXPECT_EQ(request("POST", "/v1/chat/completions",
                    R"({"messages":[{"role":"user","content":"hi"}],"n":2})", {{"X-Tachyon-KV-Export", "1"}})
                .status,
            400);
}

TEST_F(server_http, KvRoutesFollowTheRole) {
  start();
  EXPECT_EQ(request("POST", "/v1/chat/completions", kChat + "}", {{"X-Tachyon-KV-Export", "1"}}).status, 409);
  EXPECT_EQ(request("POST", "/internal/kv/import", "xx").status, 404);
}

TEST_F(server_http, KvImportOnADecodeWorkerReportsTheBackendsVerdict) {
  start({}, ServerRole::kDecode);
  // the fake backend has no KV transfer: the default import refuses (501), never hangs
  Resp r = request("POST", "/internal/kv/import", "xx");
  EXPECT_EQ(r.status, 501);
  EXPECT_NE(r.body.find("not supported"), std::string::npos) << r.body;
  EXPECT_EQ(request("GET", "/internal/kv/import").status, 405);
}

TEST_F(server_http, HealthModelsMetrics) {
  start();
  auto h = request("GET", "/health");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.json()["status"], "ok");
  auto m = request("GET", "/v1/models");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.json()["object"], "list");
  EXPECT_EQ(m.json()["data"][0]["id"], "fake-model");
  EXPECT_EQ(m.json()["data"][0]["quantization"], "Q8_0");
  EXPECT_EQ(m.json()["data"][0]["context_length"], 256);
  auto x = request("GET", "/metrics");
  EXPECT_EQ(x.status, 200);
  EXPECT_NE(x.body.find("tachyon_http_requests_total{code=\"200\"}"), std::string::npos);
  EXPECT_NE(x.body.find("tachyon_kv_pages_free 64"), std::string::npos);
}

TEST_F(server_http, RoutingErrors) {
  start();
  auto r = request("GET", "/v1/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.json()["error"]["type"], "not_found_error");
  auto m = request("GET", "/v1/chat/completions");
  EXPECT_EQ(m.status, 405);
  EXPECT_EQ(m.headers["Allow"], "POST");
  EXPECT_TRUE(m.json()["error"].contains("message"));
}

TEST_F(server_http, ApiKey) {
  start({"k1", "secret"});
  EXPECT_EQ(request("GET", "/health").status, 200);
  auto none = request("POST", "/v1/chat/completions", kChat + "}");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.json()["error"]["code"], "invalid_api_key");
  EXPECT_EQ(request("POST", "/v1/chat/completions", kChat + "}", {{"Authorization", "Bearer wrong"}}).status, 401);
  EXPECT_EQ(request("GET", "/v1/models", "", {{"Authorization", "Basic abc"}}).status, 401);
  EXPECT_EQ(request("POST", "/v1/chat/completions", kChat + "}", {{"Authorization", "Bearer secret"}}).status, 200);
  EXPECT_EQ(request("GET", "/v1/models", "", {{"Authorization", "bearer k1"}}).status, 200);
}

TEST_F(server_http, ChatNonStream) {
  start();
  auto r = request("POST", "/v1/chat/completions", kChat + R"(,"seed":5})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = r.json();
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(j["model"], "fake-model");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "w0 w1 w2 ");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 3);
  EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], 3);
  EXPECT_TRUE(j["timings"].contains("prompt_ms"));
  auto reqs = backend_.recorded();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].sampling.seed, 5u);
  EXPECT_EQ(reqs[0].max_tokens, 3);
  // ChatML rendered and tokenized with one BOS
  EXPECT_EQ(reqs[0].prompt.front(), test_tokenizer().bos_id());
  EXPECT_EQ(j["usage"]["prompt_tokens"], static_cast<int>(reqs[0].prompt.size()));
}

TEST_F(server_http, ChatStream) {
  start();
  auto r = request("POST", "/v1/chat/completions",
                   kChat + R"(,"stream":true,"stream_options":{"include_usage":true},"logprobs":true,"top_logprobs":2})");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["Content-Type"], "text/event-stream");
  bool done = false;
  auto evs = sse_events(r.body, &done);
  EXPECT_TRUE(done);
  ASSERT_GE(evs.size(), 3u);
  EXPECT_EQ(evs[0]["choices"][0]["delta"]["role"], "assistant");
  std::string text;
  int n_lp = 0;
  for (auto& e : evs) {
    EXPECT_EQ(e["object"], "chat.completion.chunk");
    if (!e["choices"].empty() && e["choices"][0]["delta"].contains("content"))
      text += e["choices"][0]["delta"]["content"].get<std::string>();
    if (!e["choices"].empty() && !e["choices"][0]["logprobs"].is_null()) {
      for (auto& c : e["choices"][0]["logprobs"]["content"]) {
        EXPECT_EQ(c["top_logprobs"].size(), 2u);
        ++n_lp;
      }
    }
  }
  EXPECT_EQ(text, "w0 w1 w2 ");
  EXPECT_EQ(n_lp, 3);
  const auto& last = evs.back();
  EXPECT_TRUE(last["choices"].empty());
  EXPECT_EQ(last["usage"]["completion_tokens"], 3);
  EXPECT_EQ(evs[evs.size() - 2]["choices"][0]["finish_reason"], "length");
}

TEST_F(server_http, CompletionsNAndPrompts) {
  start();
  auto r = request("POST", "/v1/completions", R"({"prompt":["a","b"],"n":2,"max_tokens":2,"seed":10,"logprobs":1})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = r.json();
  EXPECT_EQ(j["object"], "text_completion");
  ASSERT_EQ(j["choices"].size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(j["choices"][i]["index"], i);
    EXPECT_EQ(j["choices"][i]["text"], "w0 w1 ");
    EXPECT_EQ(j["choices"][i]["logprobs"]["tokens"].size(), 2u);
  }
  EXPECT_EQ(j["usage"]["completion_tokens"], 8);
  auto reqs = backend_.recorded();
  ASSERT_EQ(reqs.size(), 4u);
  std::set<uint64_t> seeds;
  for (auto& q : reqs) seeds.insert(q.sampling.seed);
  EXPECT_EQ(seeds, (std::set<uint64_t>{10, 11, 12, 13}));

  auto ids = request("POST", "/v1/completions", R"({"prompt":[1,2,999999],"max_tokens":2})");
  EXPECT_EQ(ids.status, 400);
  EXPECT_EQ(ids.json()["error"]["param"], "prompt");
}

TEST_F(server_http, ContextLengthAndQueueFull) {
  start();
  auto r = request("POST", "/v1/completions", R"({"prompt":"hi","max_tokens":100000})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["error"]["code"], "context_length_exceeded");
  std::string long_prompt(3000, 'x');
  auto r2 = request("POST", "/v1/completions", R"({"prompt":")" + long_prompt + R"("})");
  EXPECT_EQ(r2.status, 400);
  EXPECT_EQ(r2.json()["error"]["code"], "context_length_exceeded");

  backend_.queue_full = true;
  auto q = request("POST", "/v1/chat/completions", kChat + "}");
  EXPECT_EQ(q.status, 429);
  EXPECT_EQ(q.headers["Retry-After"], "1");
  EXPECT_EQ(q.json()["error"]["type"], "rate_limit_error");
  backend_.queue_full = false;
}

TEST_F(server_http, BadBodies) {
  start();
  auto a = request("POST", "/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}],"temperature":"hot"})");
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(a.json()["error"]["param"], "temperature");
  EXPECT_EQ(request("POST", "/v1/chat/completions", "{\"messages\": [").status, 400);
  EXPECT_EQ(request("POST", "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"\xc3\x28\"}]}").status,
            400);
  auto big = request("POST", "/v1/chat/completions", std::string(100 << 10, ' '));
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(request("GET", "/health").status, 200);
}

TEST_F(server_http, MalformedHttpAndSlowClients) {
  start();
  EXPECT_NE(raw("GARBAGE\r\n\r\n").find("400"), std::string::npos);
  EXPECT_NE(raw("GET / HTTP/1.1\r\nBad Header\r\n\r\n").find("HTTP/1.1 400"), std::string::npos);
  const std::string huge_header = "GET /health HTTP/1.1\r\nX: " + std::string(40 << 10, 'a') + "\r\n\r\n";
  EXPECT_NE(raw(huge_header).find("431"), std::string::npos);
  // Headers that never finish: 408 after the header timeout, while others are served.
  std::thread slow([&] {
    const std::string out = raw("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n", 3000);
    EXPECT_NE(out.find("408"), std::string::npos) << out;
  });
  // A body shorter than its Content-Length: 408 too.
  std::thread short_body([&] {
    const std::string out = raw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{", 3000);
    EXPECT_NE(out.find("408"), std::string::npos) << out;
  });
  EXPECT_EQ(request("GET", "/health").status, 200);
  slow.join();
  short_body.join();
  // A slow but steady client within the timeout is served.
  const std::string slow_ok = raw("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 3000, 2);
  EXPECT_NE(slow_ok.find("200 OK"), std::string::npos);
  EXPECT_EQ(request("GET", "/health").status, 200);
}

TEST_F(server_http, KeepAliveAndPipelining) {
  start();
  const std::string one = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string last = "GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  const std::string out = raw(one + one + last);
  size_t n = 0;
  for (size_t p = out.find("HTTP/1.1 200"); p != std::string::npos; p = out.find("HTTP/1.1 200", p + 1)) ++n;
  EXPECT_EQ(n, 3u) << out;
}

// An idle keep-alive connection lives for the idle timeout (2 s here), not the header
// timeout (1 s), after a streamed-out POST.
TEST_F(server_http, IdleKeepAliveOutlivesTheHeaderTimeout) {
  backend_.token_delay_ms = 20;
  start();
  net::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_));
  beast::flat_buffer buf;
  for (int i = 0; i < 2; ++i) {
    if (i == 1) std::this_thread::sleep_for(std::chrono::milliseconds(1400));
    http::request<http::string_body> req(http::verb::post, "/v1/chat/completions", 11);
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::content_type, "application/json");
    req.body() = kChat + "}";
    req.prepare_payload();
    beast::error_code ec;
    http::write(s, req, ec);
    ASSERT_FALSE(ec) << "request " << i << ": " << ec.message();
    http::response<http::string_body> res;
    http::read(s, buf, res, ec);
    ASSERT_FALSE(ec) << "request " << i << " (the server closed the idle connection?): " << ec.message();
    EXPECT_EQ(res.result_int(), 200) << res.body();
  }
}

TEST_F(server_http, DisconnectMidStreamCancels) {
  backend_.token_delay_ms = 20;
  start();
  const std::string body = R"({"prompt":"x","max_tokens":200,"stream":true})";
  const std::string req = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body;
  const std::string got = raw(req, 150);  // reads ~150 ms of the stream, then closes
  EXPECT_NE(got.find("data: "), std::string::npos);
  const auto t0 = std::chrono::steady_clock::now();
  while (backend_.n_cancelled == 0 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(backend_.n_cancelled, 1);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1500));
}

TEST_F(server_http, StopWithStreamsInFlight) {
  backend_.token_delay_ms = 20;
  start();
  std::thread client([&] {
    const std::string body = R"({"prompt":"x","max_tokens":200,"stream":true})";
    const std::string got = raw(
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body, 5000);
    EXPECT_NE(got.find("data: "), std::string::npos) << got;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto t0 = std::chrono::steady_clock::now();
  server_->stop();
  thread_.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  client.join();
  EXPECT_EQ(backend_.n_cancelled, 1);
}

}  // namespace
}  // namespace tachyon::server
