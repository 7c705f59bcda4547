// https endpoints against a TLS stub whose self-signed certificate is made at test time:
// trusted through a CA file the run measures as over http; untrusted it fails fast with a
// message that names the cause; with verification off it succeeds; a wrong host, a plain
// HTTP server behind https:// and a silent server fail clearly and never hang.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "base/clock.h"
#include "test_util.h"

namespace bench_test {
namespace {

namespace fs = std::filesystem;

stub::Script quick(int n_tokens = 8) {
  stub::Script s;
  s.ttft_ms = 30;
  s.gap_ms = 5;
  s.n_tokens = n_tokens;
  return s;
}

std::string first_error(const RunResult& r) {
  for (const auto& rec : r.records)
    if (!rec.ok()) return rec.error_message;
  return "";
}

class Tls : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err;
    cert_ = stub::make_self_signed_cert("IP:127.0.0.1,DNS:localhost", &err);
    if (cert_.empty()) GTEST_SKIP() << "cannot make a test certificate with OpenSSL: " << err;
    ca_file_ = (fs::temp_directory_path() / ("tachyon_tls_" + std::to_string(getpid()) + "_" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".pem"))
                   .string();
    std::ofstream(ca_file_) << cert_.cert_pem;
  }
  void TearDown() override {
    if (!ca_file_.empty()) std::remove(ca_file_.c_str());
  }
  stub::TlsCert cert_;
  std::string ca_file_;
};

TEST_F(Tls, TrustedThroughCaFileMeasuresAsOverHttp) {
  stub::Server srv([](int, const nlohmann::json&) { return quick(16); }, 1, cert_);
  ASSERT_EQ(srv.url().rfind("https://", 0), 0u);
  RunConfig c = config_for(srv.url(), 12, 4);
  c.endpoint.tls.ca_file = ca_file_;

  std::string warn;
  auto models = fetch_models(c.endpoint, 5000, &warn);
  ASSERT_TRUE(models.is_ok()) << models.status().message();
  ASSERT_EQ(models->size(), 1u);
  EXPECT_EQ(models->front(), "stub-model");

  const auto r = run(c, small_workload(16));
  const Summary s = summarize(r.records, {}, kPcts);
  EXPECT_EQ(s.n_completed, 12) << first_error(r);
  EXPECT_FALSE(r.aborted) << r.abort_reason;
  for (const auto& rec : r.records) {
    EXPECT_EQ(rec.n_output_tokens, 16);
    EXPECT_EQ(rec.chunks.size(), 16u);
    EXPECT_TRUE(rec.saw_done);
  }
  EXPECT_EQ(s.total_output_tokens, 12 * 16);
  // Scripted: TTFT 30 ms after the request was read, then one token every 5 ms. A pooled
  // connection is already past its handshake, so TTFT stays near the script.
  EXPECT_GE(s.ttft.at(50), 29.0);
  EXPECT_LT(s.ttft.at(50), 30.0 + 60.0);
  EXPECT_NEAR(s.itl.at(50), 5.0, 2.5);
  // Keep-alive works over TLS: 4 handshakes (one per concurrent stream), then reuse.
  EXPECT_LE(r.client.n_connections_opened, 5);
  EXPECT_GE(r.client.n_connections_reused, 7);
  EXPECT_EQ(srv.n_handshakes_failed(), 0);
}

TEST_F(Tls, UntrustedCertificateFailsFastWithTheCause) {
  stub::Server srv([](int, const nlohmann::json&) { return quick(); }, 1, cert_);
  RunConfig c = config_for(srv.url(), 50, 4);  // no CA file: only the system store

  std::string warn;
  auto models = fetch_models(c.endpoint, 5000, &warn);
  ASSERT_FALSE(models.is_ok());
  EXPECT_NE(models.status().message().find("certificate verify failed: self-signed certificate"), std::string::npos)
      << models.status().message();

  const int64_t t0 = tachyon::now_us();
  const auto r = run(c);
  EXPECT_LT((tachyon::now_us() - t0) / 1e6, 3.0);
  EXPECT_TRUE(r.aborted);  // fail fast: the same certificate fails every request
  ASSERT_FALSE(r.records.empty());
  EXPECT_LT(r.records.size(), 50u);
  for (const auto& rec : r.records) EXPECT_EQ(rec.error, ErrorKind::kTls) << rec.error_message;
  const std::string e = first_error(r);
  EXPECT_NE(e.find("TLS handshake with 127.0.0.1:"), std::string::npos) << e;
  EXPECT_NE(e.find("certificate verify failed: self-signed certificate"), std::string::npos) << e;
  EXPECT_NE(e.find("--ca-file"), std::string::npos) << e;
  EXPECT_NE(e.find("--insecure"), std::string::npos) << e;
  const Summary s = summarize(r.records, {}, kPcts);
  EXPECT_EQ(s.errors.count("tls"), 1u);
  EXPECT_EQ(s.n_completed, 0);
  EXPECT_GE(srv.n_handshakes_failed(), 1);
}

TEST_F(Tls, InsecureAcceptsAnyCertificate) {
  stub::Server srv([](int, const nlohmann::json&) { return quick(); }, 1, cert_);
  RunConfig c = config_for(srv.url(), 6, 2);
  c.endpoint.tls.verify = false;
  const auto r = run(c);
  EXPECT_EQ(summarize(r.records, {}, kPcts).n_completed, 6) << first_error(r);
}

TEST_F(Tls, CertificateForAnotherHostIsRejected) {
  std::string err;
  const stub::TlsCert other = stub::make_self_signed_cert("DNS:api.example.com", &err);
  ASSERT_FALSE(other.empty()) << err;
  std::ofstream(ca_file_) << other.cert_pem;  // trusted, but not for 127.0.0.1
  stub::Server srv([](int, const nlohmann::json&) { return quick(); }, 1, other);
  RunConfig c = config_for(srv.url(), 3, 1);
  c.endpoint.tls.ca_file = ca_file_;
  const auto r = run(c);
  ASSERT_FALSE(r.records.empty());
  EXPECT_EQ(r.records[0].error, ErrorKind::kTls);
  EXPECT_NE(first_error(r).find("certificate verify failed: IP address mismatch"), std::string::npos) << first_error(r);
}

TEST_F(Tls, MissingCaFileIsReported) {
  stub::Server srv([](int, const nlohmann::json&) { return quick(); }, 1, cert_);
  RunConfig c = config_for(srv.url(), 3, 1);
  c.endpoint.tls.ca_file = ca_file_ + ".missing";
  const auto r = run(c);
  ASSERT_FALSE(r.records.empty());
  EXPECT_EQ(r.records[0].error, ErrorKind::kTls);
  EXPECT_NE(first_error(r).find("cannot load CA file"), std::string::npos) << first_error(r);
}

TEST_F(Tls, EofDelimitedStreamWithoutCloseNotify) {
  // "Connection: close" bodies end at EOF; the stub closes TLS without close_notify, as
  // many servers do: the response is complete, not truncated.
  stub::Server srv([](int, const nlohmann::json&) {
    stub::Script s = quick();
    s.connection_close = true;
    return s;
  }, 1, cert_);
  RunConfig c = config_for(srv.url(), 3, 1);
  c.endpoint.tls.ca_file = ca_file_;
  const auto r = run(c);
  EXPECT_EQ(summarize(r.records, {}, kPcts).n_completed, 3) << first_error(r);
}

TEST(TlsErrors, HttpsToAPlainHttpServer) {
  stub::Server srv([](int, const nlohmann::json&) { return quick(); });
  const std::string url = "https://127.0.0.1:" + std::to_string(srv.port());
  const int64_t t0 = tachyon::now_us();
  const auto r = run(config_for(url, 3, 1));
  EXPECT_LT((tachyon::now_us() - t0) / 1e6, 3.0);
  ASSERT_FALSE(r.records.empty());
  EXPECT_EQ(r.records[0].error, ErrorKind::kTls) << first_error(r);
  EXPECT_NE(first_error(r).find("TLS handshake with"), std::string::npos) << first_error(r);
}

TEST(TlsErrors, SilentServerTimesOutInTheHandshake) {
  // A listening socket that never answers: TCP connects (the kernel accepts), the
  // ClientHello gets no reply. The request deadline covers the handshake.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  RunConfig c = config_for("https://127.0.0.1:" + std::to_string(ntohs(a.sin_port)), 2, 2);
  c.timeout_ms = 300;
  const int64_t t0 = tachyon::now_us();
  const auto r = run(c);
  EXPECT_LT((tachyon::now_us() - t0) / 1e6, 2.0);
  ASSERT_EQ(r.records.size(), 2u);
  for (const auto& rec : r.records) {
    EXPECT_EQ(rec.error, ErrorKind::kTimeout);
    EXPECT_NE(rec.error_message.find("timed out after 300 ms while in the TLS handshake"), std::string::npos)
        << rec.error_message;
  }
  ::close(fd);
}

}  // namespace
}  // namespace bench_test
