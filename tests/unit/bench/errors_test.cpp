// Unreachable endpoints, servers that are not HTTP or not OpenAI, HTTP errors and silent
// servers: a clear error of the right kind, quickly, never a hang.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "test_util.h"

namespace bench_test {
namespace {

std::string first_error(const RunResult& r) {
  for (const auto& rec : r.records)
    if (!rec.ok()) return rec.error_message;
  return "";
}

TEST(Errors, UnreachableEndpoint) {
  const std::string url = "http://127.0.0.1:" + std::to_string(stub::free_port());
  EndpointSpec ep;
  ep.url = *Url::parse(url);
  std::string warn;
  auto models = fetch_models(ep, 2000, &warn);
  ASSERT_FALSE(models.is_ok());
  EXPECT_NE(models.status().message().find("cannot connect"), std::string::npos) << models.status().message();

  RunConfig c = config_for(url, 100, 4);
  const int64_t t0 = tachyon::now_us();
  const auto r = run(c);
  EXPECT_LT((tachyon::now_us() - t0) / 1e6, 3.0);
  EXPECT_TRUE(r.aborted);  // fail fast: no point sending 100 requests to nothing
  EXPECT_NE(r.abort_reason.find("cannot connect"), std::string::npos) << r.abort_reason;
  EXPECT_LT(r.records.size(), 100u);
  for (const auto& rec : r.records) EXPECT_EQ(rec.error, ErrorKind::kConnect);
}

TEST(Errors, NotAnHttpServer) {
  stub::RawServer raw("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n");
  const auto r = run(config_for("http://127.0.0.1:" + std::to_string(raw.port()), 3, 1));
  ASSERT_FALSE(r.records.empty());
  EXPECT_EQ(r.records[0].error, ErrorKind::kProtocol) << r.records[0].error_message;
  EXPECT_NE(first_error(r).find("HTTP"), std::string::npos) << first_error(r);
}

TEST(Errors, HtmlPageIsNotOpenAI) {
  stub::Server srv([](int, const nlohmann::json&) {
    stub::Script s;
    s.raw_body = "<html><body>Welcome to nginx!</body></html>";
    return s;
  });
  const auto r = run(config_for(srv.url(), 3, 1));
  ASSERT_FALSE(r.records.empty());
  EXPECT_EQ(r.records[0].error, ErrorKind::kBadResponse);
  EXPECT_NE(first_error(r).find("not an OpenAI event stream"), std::string::npos) << first_error(r);
  EXPECT_NE(first_error(r).find("<html>"), std::string::npos) << first_error(r);
}

TEST(Errors, JsonInsteadOfStream) {
  stub::Server srv([](int, const nlohmann::json&) {
    stub::Script s;
    s.raw_body = R"({"id":"x","object":"chat.completion","choices":[{"message":{"content":"hi"}}]})";
    s.raw_content_type = "application/json";
    return s;
  });
  const auto r = run(config_for(srv.url(), 3, 1));
  EXPECT_EQ(r.records[0].error, ErrorKind::kBadResponse);
  EXPECT_NE(first_error(r).find("instead of an event stream"), std::string::npos) << first_error(r);
}

TEST(Errors, SseWithoutChoices) {
  stub::Server srv([](int, const nlohmann::json&) {
    stub::Script s;
    s.raw_body = "data: {\"hello\": 1}\n\n";
    s.raw_content_type = "text/event-stream";
    return s;
  });
  const auto r = run(config_for(srv.url(), 3, 1));
  EXPECT_EQ(r.records[0].error, ErrorKind::kBadResponse);
  EXPECT_NE(first_error(r).find("no 'choices'"), std::string::npos) << first_error(r);
}

TEST(Errors, StreamWithoutEnd) {
  stub::Server srv([](int, const nlohmann::json&) {
    stub::Script s;
    s.ttft_ms = 1;
    s.n_tokens = 2;
    s.no_done = true;  // still has finish_reason: complete
    return s;
  });
  const auto r = run(config_for(srv.url(), 2, 1));
  EXPECT_EQ(summarize(r.records, {}, kPcts).n_completed, 2);
}

TEST(Errors, WrongPathGivesHttpStatus) {
  stub::Server srv([](int, const nlohmann::json&) { return stub::Script{}; });
  const auto r = run(config_for(srv.url() + "/nope", 3, 1));
  ASSERT_FALSE(r.records.empty());
  EXPECT_EQ(r.records[0].error, ErrorKind::kHttpStatus);
  EXPECT_EQ(r.records[0].http_status, 404);
  EXPECT_NE(first_error(r).find("HTTP 404"), std::string::npos) << first_error(r);
  EXPECT_NE(first_error(r).find("not found"), std::string::npos) << first_error(r);
  EXPECT_TRUE(r.aborted);
}

TEST(Errors, SilentServerTimesOut) {
  // Listens (the kernel completes the handshake) but never accepts or answers.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  RunConfig c = config_for("http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)), 2, 2);
  c.timeout_ms = 300;
  const int64_t t0 = tachyon::now_us();
  const auto r = run(c);
  const double el = (tachyon::now_us() - t0) / 1e3;
  EXPECT_GE(el, 290);
  EXPECT_LT(el, 2000);
  ASSERT_EQ(r.records.size(), 2u);
  for (const auto& rec : r.records) {
    EXPECT_EQ(rec.error, ErrorKind::kTimeout);
    EXPECT_NE(rec.error_message.find("timed out after 300 ms"), std::string::npos) << rec.error_message;
  }
  ::close(fd);
}

TEST(Errors, BadUrls) {
  EXPECT_FALSE(Url::parse("localhost:8080").is_ok());
  auto https = Url::parse("https://api.example.com/v1");
  ASSERT_TRUE(https.is_ok());
  EXPECT_TRUE(https->tls());
  EXPECT_EQ(https->port, 443);
  EXPECT_EQ(https->str(), "https://api.example.com:443/v1");
  auto ftp = Url::parse("ftp://host/x");
  ASSERT_FALSE(ftp.is_ok());
  EXPECT_NE(ftp.status().message().find("unsupported scheme 'ftp'"), std::string::npos);
  EXPECT_FALSE(Url::parse("http://:80").is_ok());
  EXPECT_FALSE(Url::parse("http://host:99999").is_ok());
  auto u = Url::parse("http://127.0.0.1:8080/v1/");
  ASSERT_TRUE(u.is_ok());
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->base_path, "/v1");
  auto v6 = Url::parse("http://[::1]:9000");
  ASSERT_TRUE(v6.is_ok());
  EXPECT_EQ(v6->host, "::1");
}

}  // namespace
}  // namespace bench_test
