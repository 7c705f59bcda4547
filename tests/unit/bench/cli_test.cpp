// `tachyon bench ...` as a user runs it: against the stub, with bad flags, against
// unreachable and non-OpenAI endpoints. Every command runs under a hard time limit.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_util.h"

namespace bench_test {
namespace {

namespace fs = std::filesystem;

struct Cmd {
  int rc = -1;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class BenchCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(TACHYON_BIN, X_OK) != 0) GTEST_SKIP() << TACHYON_BIN << " not built (cmake --build ... --target tachyon)";
    dir_ = fs::temp_directory_path() / ("tachyon_bench_cli_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Runs `tachyon bench <args>` with a hard limit (never a hang).
  Cmd bench(const std::string& args, int limit_s = 60) {
    const std::string out = path("stdout.txt"), err = path("stderr.txt");
    const std::string cmd = "timeout -k 5 " + std::to_string(limit_s) + " " + TACHYON_BIN + " bench " + args + " >" +
                            out + " 2>" + err + " </dev/null";
    const int st = std::system(cmd.c_str());
    Cmd c;
    c.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    c.out = slurp(out);
    c.err = slurp(err);
    return c;
  }
  fs::path dir_;
};

stub::Script quick() {
  stub::Script s;
  s.ttft_ms = 5;
  s.gap_ms = 1;
  s.n_tokens = 8;
  s.timings = true;
  s.queue_ms = 1;
  s.prompt_ms = 2;
  return s;
}

TEST_F(BenchCli, RunWritesReports) {
  stub::Server srv([](int, const nlohmann::json&) { return quick(); });
  const Cmd c = bench("run --url " + srv.url() + " --model stub-model --num-requests 12 --concurrency 3 --warmup 2 "
                      "--input-len 16 --output-len 8 --slo ttft=500ms,tpot=50ms --percentiles 50,99.9 "
                      "--output-json " + path("r.json") + " --output-csv " + path("r.csv") +
                      " --output-requests-csv " + path("q.csv") + " --output-html " + path("r.html"));
  ASSERT_EQ(c.rc, 0) << c.out << c.err;
  EXPECT_NE(c.out.find("12 completed / 12 sent"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("p99.9"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("queue (server)"), std::string::npos) << c.out;
  EXPECT_NE(c.err.find("run: 12/12 done"), std::string::npos) << c.err;  // plain progress lines off a TTY
  auto j = nlohmann::json::parse(slurp(path("r.json")));
  const auto& prov = j["provenance"];
  for (const char* k : {"tool", "version", "client_host", "started_at", "workload", "arrival", "command_line"})
    EXPECT_TRUE(prov.contains(k)) << k;
  EXPECT_EQ(prov["workload"]["seed"], 0);
  const auto& run = j["runs"][0];
  EXPECT_EQ(run["endpoint"]["url"], srv.url());
  EXPECT_EQ(run["endpoint"]["served_models"][0], "stub-model");
  EXPECT_EQ(run["arrival"]["concurrency"], 3);
  EXPECT_EQ(run["warmup_requests"], 2);
  EXPECT_EQ(run["summary"]["completed"], 12);
  EXPECT_EQ(run["summary"]["total_output_tokens"], 96);
  EXPECT_EQ(run["summary"]["good_requests"], 12);
  EXPECT_TRUE(run["summary"]["ttft_ms"].contains("p99.9"));
  EXPECT_TRUE(run["summary"].contains("ttft_breakdown_ms"));
  ASSERT_EQ(run["requests"].size(), 12u);
  const auto& r0 = run["requests"][0];
  EXPECT_EQ(r0["chunk_ms"].size(), 8u);
  EXPECT_EQ(r0["usage"]["completion_tokens"], 8);
  EXPECT_EQ(r0["status"], "ok");
  for (const char* k : {"send_ms", "ttft_ms", "tpot_ms", "e2e_ms", "chunk_tokens", "timings"}) EXPECT_TRUE(r0.contains(k)) << k;
  const std::string csv = slurp(path("r.csv"));
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 2);
  EXPECT_NE(csv.find("ttft_p99.9_ms"), std::string::npos);
  const std::string qcsv = slurp(path("q.csv"));
  EXPECT_EQ(std::count(qcsv.begin(), qcsv.end(), '\n'), 13);
  EXPECT_NE(slurp(path("r.html")).find("data-chart=\"ttft-hist\""), std::string::npos);
}

TEST_F(BenchCli, SweepAndDefaultModel) {
  stub::Server srv([](int, const nlohmann::json&) { return quick(); });
  const Cmd c = bench("run --url " + srv.url() + "/v1 --sweep concurrency=1,2,4 --num-requests 8 --output-json " +
                      path("s.json") + " --no-progress");
  ASSERT_EQ(c.rc, 0) << c.out << c.err;
  EXPECT_NE(c.err.find("using model 'stub-model'"), std::string::npos) << c.err;
  EXPECT_NE(c.out.find("sweep over concurrency"), std::string::npos) << c.out;
  auto j = nlohmann::json::parse(slurp(path("s.json")));
  ASSERT_EQ(j["runs"].size(), 3u);
  EXPECT_EQ(j["runs"][2]["sweep"]["concurrency"], 4);
  EXPECT_EQ(j["runs"][2]["max_in_flight"], 4);
}

TEST_F(BenchCli, UnreachableEndpointFailsFast) {
  const Cmd c = bench("run --url http://127.0.0.1:" + std::to_string(stub::free_port()) + " --model m", 20);
  EXPECT_EQ(c.rc, 1) << c.out << c.err;
  EXPECT_NE(c.err.find("cannot connect"), std::string::npos) << c.err;
}

TEST_F(BenchCli, NotOpenAIEndpoint) {
  stub::Server srv([](int, const nlohmann::json&) {
    stub::Script s;
    s.raw_body = "<html>hello</html>";
    return s;
  });
  const Cmd c = bench("run --url " + srv.url() + " --model m --num-requests 20", 20);
  EXPECT_EQ(c.rc, 1) << c.out << c.err;
  EXPECT_NE(c.out.find("not an OpenAI event stream"), std::string::npos) << c.out;
  EXPECT_NE(c.err.find("no request completed"), std::string::npos) << c.err;
  EXPECT_LT(srv.n_requests(), 20);  // gave up early
}

TEST_F(BenchCli, HttpErrorIsReported) {
  stub::Server srv([](int, const nlohmann::json&) {
    stub::Script s;
    s.status = 401;
    return s;
  });
  const Cmd c = bench("run --url " + srv.url() + " --model m", 20);
  EXPECT_EQ(c.rc, 1);
  EXPECT_NE(c.out.find("http_401"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("HTTP 401"), std::string::npos) << c.out;
}

TEST_F(BenchCli, BadFlagsExitTwo) {
  const std::string url = " --url http://127.0.0.1:1 --model m";
  const std::vector<std::string> cases = {
       std::string("run --model m"), "run" + url + " --rate fast", "run" + url + " --len-dist zipf",
        std::string("run --url ftp://api.example.com --model m"), "run" + url + " --dataset /nonexistent.jsonl",
        "run" + url + " --slo ttft=soon", "run" + url + " --sweep threads=1,2", "run" + url + " --concurrency 0",
        "run" + url + " --tokenizer /nonexistent.gguf", "run" + url + " --api-key-env TACHYON_NO_SUCH_VAR_42",
        "run" + url + " --percentiles 50,101", std::string("frobnicate"), std::string("compare --config /nonexistent.toml")};
  for (const std::string& a : cases) {
    const Cmd c = bench(a, 20);
    EXPECT_EQ(c.rc, 2) << a << "\n" << c.out << c.err;
    EXPECT_FALSE(c.err.empty()) << a;
  }
}

TEST_F(BenchCli, CompareRanksAndRecommends) {
  stub::Server fast([](int, const nlohmann::json&) {
    stub::Script s = quick();
    s.ttft_ms = 5;
    return s;
  });
  stub::Server slow([](int, const nlohmann::json&) {
    stub::Script s = quick();
    s.ttft_ms = 400;  // far from the fast stub: the box may stall a request by tens of ms
    return s;
  });
  std::ofstream(path("e.toml")) << "# two stubs\n[[endpoint]]\nname = \"fast-pricey\"\nurl = \"" << fast.url()
                                << "\"\nmodel = \"stub-model\"\nprice_input_per_m = 1.0\nprice_output_per_m = 4.0\n\n"
                                << "[[endpoint]]\nname = 'slow-cheap'\nurl = \"" << slow.url()
                                << "\"\nmodel = \"stub-model\"  # trailing comment\nprice_input_per_m = 0.1\n"
                                << "price_output_per_m = 0.2\n";
  Cmd c = bench("compare --config " + path("e.toml") + " --num-requests 6 --concurrency 2 --recommend 'ttft_p90<200ms' "
                "--output-json " + path("c.json") + " --output-html " + path("c.html"));
  ASSERT_EQ(c.rc, 0) << c.out << c.err;
  EXPECT_NE(c.out.find("Recommendation: fast-pricey"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("rejected slow-cheap: ttft_p90"), std::string::npos) << c.out;
  auto j = nlohmann::json::parse(slurp(path("c.json")));
  EXPECT_EQ(j["leaderboard"][0]["name"], "fast-pricey");
  EXPECT_EQ(j["leaderboard"][1]["meets_constraints"], false);
  EXPECT_NE(slurp(path("c.html")).find("data-chart=\"leaderboard\""), std::string::npos);
  // Without constraints the cheapest wins.
  c = bench("compare --config " + path("e.toml") + " --num-requests 4 --recommend 'error_rate<=0%' --no-progress");
  ASSERT_EQ(c.rc, 0) << c.out << c.err;
  EXPECT_NE(c.out.find("Recommendation: slow-cheap, the cheapest"), std::string::npos) << c.out;
  c = bench("compare --config " + path("e.toml") + " --num-requests 4 --objective fastest --recommend 'e2e_p50<10s' --no-progress");
  EXPECT_NE(c.out.find("Recommendation: fast-pricey, the fastest"), std::string::npos) << c.out;
}

// The availability floor: a cheap endpoint that fails every second request is excluded
// (and told why) by default; an error_rate constraint given explicitly replaces the floor.
TEST_F(BenchCli, CompareAvailabilityFloor) {
  stub::Server flaky([](int i, const nlohmann::json&) {
    stub::Script s = quick();
    if (i % 2) s.status = 503;
    return s;
  });
  stub::Server healthy([](int, const nlohmann::json&) { return quick(); });
  std::ofstream(path("e.toml")) << "[[endpoint]]\nname = \"flaky-cheap\"\nurl = \"" << flaky.url()
                                << "\"\nmodel = \"stub-model\"\nprice_input_per_m = 0.1\nprice_output_per_m = 0.4\n\n"
                                << "[[endpoint]]\nname = \"healthy-pricey\"\nurl = \"" << healthy.url()
                                << "\"\nmodel = \"stub-model\"\nprice_input_per_m = 1.0\nprice_output_per_m = 4.0\n";
  const std::string run = "compare --config " + path("e.toml") + " --num-requests 12 --concurrency 2 --no-progress ";
  Cmd c = bench(run + "--recommend 'ttft_p90<2000ms' --output-json " + path("d.json"));
  ASSERT_EQ(c.rc, 0) << c.out << c.err;
  EXPECT_NE(c.out.find("Recommendation: healthy-pricey, the cheapest"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("of 1 of 2 endpoints meeting ttft_p90<2000ms and the availability floor error_rate<1%, "
                       "no timeouts (default)."),
            std::string::npos)
      << c.out;
  EXPECT_NE(c.out.find("\n  excluded flaky-cheap: error_rate 50.0% >= 1% (6/12 failed)"), std::string::npos) << c.out;
  // In the table: the healthy one first, the flaky one after it with its reason.
  const size_t t = c.out.find("Leaderboard");
  ASSERT_NE(t, std::string::npos) << c.out;
  EXPECT_LT(c.out.find("1  healthy-pricey", t), c.out.find("2  flaky-cheap", t)) << c.out;
  EXPECT_NE(c.out.find("excluded: error_rate 50.0% >= 1% (6/12 failed)", t), std::string::npos) << c.out;
  auto j = nlohmann::json::parse(slurp(path("d.json")));
  EXPECT_EQ(j["leaderboard"][0]["name"], "healthy-pricey");
  EXPECT_EQ(j["leaderboard"][0]["meets_constraints"], true);
  EXPECT_EQ(j["leaderboard"][1]["name"], "flaky-cheap");
  EXPECT_EQ(j["leaderboard"][1]["meets_constraints"], false);
  EXPECT_EQ(j["leaderboard"][1]["below_availability_floor"], true);
  EXPECT_EQ(j["leaderboard"][1]["violations"][0], "error_rate 50.0% >= 1% (6/12 failed)");
  EXPECT_EQ(j["recommendation_details"]["endpoint"], "healthy-pricey");
  EXPECT_EQ(j["recommendation_details"]["availability_floor"], "error_rate<1%, no timeouts");
  EXPECT_EQ(j["recommendation_details"]["floor_source"], "default");

  // Given explicitly, a 60% error budget admits the flaky one, and it is the cheapest.
  c = bench(run + "--recommend 'ttft_p90<2000ms,error_rate<60%' --output-json " + path("g.json"));
  ASSERT_EQ(c.rc, 0) << c.out << c.err;
  EXPECT_NE(c.out.find("Recommendation: flaky-cheap, the cheapest"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("of 2 of 2 endpoints meeting ttft_p90<2000ms and the availability floor error_rate<60% (given)."),
            std::string::npos)
      << c.out;
  EXPECT_EQ(c.out.find("excluded"), std::string::npos) << c.out;
  j = nlohmann::json::parse(slurp(path("g.json")));
  EXPECT_EQ(j["leaderboard"][0]["name"], "flaky-cheap");
  EXPECT_EQ(j["leaderboard"][0]["meets_constraints"], true);
  EXPECT_EQ(j["recommendation_details"]["availability_floor"], "error_rate<60%");
  EXPECT_EQ(j["recommendation_details"]["floor_source"], "given");
}

TEST_F(BenchCli, CompareKeepsADownEndpointInTheTable) {
  stub::Server srv([](int, const nlohmann::json&) { return quick(); });
  std::ofstream(path("e.json")) << R"({"endpoints": [{"name": "up", "url": ")" << srv.url()
                                << R"(", "model": "stub-model"}, {"name": "down", "url": "http://127.0.0.1:)"
                                << stub::free_port() << R"(", "model": "m"}]})";
  const Cmd c = bench("compare --config " + path("e.json") + " --num-requests 4 --no-progress", 30);
  EXPECT_EQ(c.rc, 0) << c.out << c.err;
  EXPECT_NE(c.out.find("2  down"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("no request completed: endpoint http://127.0.0.1:"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("cannot connect"), std::string::npos) << c.out;
}

TEST_F(BenchCli, BadEndpointsFile) {
  std::ofstream(path("bad.toml")) << "[[endpoint]]\nname = \"x\"\nurl = \"http://127.0.0.1:1\"\nprice = 3\n";
  Cmd c = bench("compare --config " + path("bad.toml"), 20);
  EXPECT_EQ(c.rc, 2);
  EXPECT_NE(c.err.find("unknown key 'price'"), std::string::npos) << c.err;
  std::ofstream(path("bad2.toml")) << "[[endpoint]]\nname = \"x\nurl = 5\n";
  c = bench("compare --config " + path("bad2.toml"), 20);
  EXPECT_EQ(c.rc, 2);
  EXPECT_NE(c.err.find("bad2.toml:2"), std::string::npos) << c.err;
}

TEST_F(BenchCli, ProbeRecordsAvailability) {
  stub::Server srv([](int i, const nlohmann::json&) {
    stub::Script s = quick();
    if (i % 2) s.status = 503;
    return s;
  });
  std::ofstream(path("p.json")) << R"([{"name": "stub", "url": ")" << srv.url() << R"(", "model": "stub-model"}])";
  const Cmd c = bench("probe --config " + path("p.json") + " --every 0.2s --duration 0.7s --output-json " + path("o.json"), 20);
  ASSERT_EQ(c.rc, 0) << c.out << c.err;
  auto j = nlohmann::json::parse(slurp(path("o.json")));
  const auto& s = j["probe"]["summary"][0];
  EXPECT_EQ(s["probes"], 4);
  EXPECT_EQ(s["ok"], 2);
  EXPECT_DOUBLE_EQ(s["availability_pct"].get<double>(), 50.0);
  EXPECT_NE(c.out.find("FAIL  http_503"), std::string::npos) << c.out;
}

// https: trusted through --ca-file, untrusted (a clear error, exit 1, no hang), --insecure.
TEST_F(BenchCli, HttpsRunCaFileUntrustedInsecure) {
  std::string err;
  const stub::TlsCert cert = stub::make_self_signed_cert("IP:127.0.0.1,DNS:localhost", &err);
  if (cert.empty()) GTEST_SKIP() << "cannot make a test certificate with OpenSSL: " << err;
  std::ofstream(path("ca.pem")) << cert.cert_pem;
  stub::Server srv([](int, const nlohmann::json&) { return quick(); }, 1, cert);
  const std::string run = "run --url " + srv.url() + "/v1 --num-requests 8 --concurrency 2 --no-progress ";
  Cmd c = bench(run + "--ca-file " + path("ca.pem") + " --output-json " + path("r.json"), 30);
  ASSERT_EQ(c.rc, 0) << c.out << c.err;
  EXPECT_NE(c.out.find("8 completed / 8 sent"), std::string::npos) << c.out;
  EXPECT_EQ(nlohmann::json::parse(slurp(path("r.json")))["runs"][0]["endpoint"]["ca_file"], path("ca.pem"));

  c = bench(run + "--model stub-model", 20);
  EXPECT_EQ(c.rc, 1) << c.out << c.err;
  EXPECT_NE(c.err.find("certificate verify failed: self-signed certificate"), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("--insecure"), std::string::npos) << c.err;

  c = bench(run + "--model stub-model --no-model-check", 20);  // the same, counted per request
  EXPECT_EQ(c.rc, 1) << c.out << c.err;
  EXPECT_NE(c.out.find("tls"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("certificate verify failed"), std::string::npos) << c.out;

  c = bench(run + "--insecure", 30);
  ASSERT_EQ(c.rc, 0) << c.out << c.err;
  EXPECT_NE(c.out.find("8 completed / 8 sent"), std::string::npos) << c.out;

  c = bench(run + "--ca-file " + path("nope.pem"), 20);
  EXPECT_EQ(c.rc, 2) << c.out << c.err;
  EXPECT_NE(c.err.find("nope.pem: cannot open"), std::string::npos) << c.err;
}

TEST_F(BenchCli, HttpsCompareTakesTlsKeysPerEndpoint) {
  std::string err;
  const stub::TlsCert cert = stub::make_self_signed_cert("IP:127.0.0.1", &err);
  if (cert.empty()) GTEST_SKIP() << "cannot make a test certificate with OpenSSL: " << err;
  std::ofstream(path("ca.pem")) << cert.cert_pem;
  stub::Server srv([](int, const nlohmann::json&) { return quick(); }, 1, cert);
  // ca_file is relative to the config file's directory.
  std::ofstream(path("e.toml")) << "[[endpoint]]\nname = \"trusted\"\nurl = \"" << srv.url()
                                << "\"\nmodel = \"stub-model\"\nca_file = \"ca.pem\"\n\n"
                                << "[[endpoint]]\nname = \"insecure\"\nurl = \"" << srv.url()
                                << "\"\nmodel = \"stub-model\"\ninsecure = true\n\n"
                                << "[[endpoint]]\nname = \"untrusted\"\nurl = \"" << srv.url()
                                << "\"\nmodel = \"stub-model\"\n";
  const Cmd c = bench("compare --config " + path("e.toml") + " --num-requests 4 --no-progress", 30);
  EXPECT_EQ(c.rc, 0) << c.out << c.err;
  EXPECT_NE(c.out.find("certificate verify failed: self-signed certificate"), std::string::npos) << c.out << c.err;
  const size_t n_ok = [&] {
    size_t n = 0;
    for (size_t p = 0; (p = c.out.find("4 completed / 4 sent", p)) != std::string::npos; ++p) ++n;
    return n;
  }();
  EXPECT_EQ(n_ok, 2u) << c.out;
}

// `tachyon bench run` against a real `tachyon serve` on a model from ../shared/data: the
// report's fields are present and its counts agree with the server's usage.
TEST_F(BenchCli, AgainstTachyonServe) {
  const std::string model = std::string(TACHYON_SHARED_DATA) + "/models/mini-qwen2-Q8_0.gguf";
  if (access(model.c_str(), R_OK) != 0) GTEST_SKIP() << model << " missing";
  const std::string log = path("serve.log");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    freopen(log.c_str(), "w", stdout);
    freopen(log.c_str(), "a", stderr);
    execl(TACHYON_BIN, TACHYON_BIN, "serve", "-m", model.c_str(), "--port", "0", "-t", "1", (char*)nullptr);
    _exit(127);
  }
  struct Stop {  // always stop what we started
    pid_t pid;
    ~Stop() {
      kill(pid, SIGTERM);
      for (int i = 0; i < 50 && waitpid(pid, nullptr, WNOHANG) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  } stop{pid};
  std::string url;
  for (int i = 0; i < 300 && url.empty(); ++i) {
    const std::string l = slurp(log);
    const size_t p = l.find("listening on ");
    if (p != std::string::npos && l.find('\n', p) != std::string::npos) url = l.substr(p + 13, l.find('\n', p) - p - 13);
    if (url.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (url.empty() && slurp(log).find("unknown command") != std::string::npos) GTEST_SKIP() << "no serve in this build";
  ASSERT_FALSE(url.empty()) << slurp(log);
  const Cmd c = bench("run --url " + url + " --num-requests 12 --concurrency 3 --warmup 2 --input-len 48 --output-len 16 "
                      "--ignore-eos --temperature 0 --tokenizer " + model + " --prefix-groups 2 --prefix-group-size 6 "
                      "--prefix-len 64 --output-json " + path("e.json") + " --no-progress", 120);
  ASSERT_EQ(c.rc, 0) << c.out << c.err << slurp(log);
  auto j = nlohmann::json::parse(slurp(path("e.json")));
  const auto& run = j["runs"][0];
  const auto& s = run["summary"];
  EXPECT_EQ(s["completed"], 12);
  EXPECT_EQ(s["failed"], 0);
  EXPECT_EQ(run["endpoint"]["served_models"][0], "mini-qwen2-Q8_0");
  EXPECT_EQ(s["token_counts"]["usage_missing"], 0);
  EXPECT_TRUE(s.contains("ttft_breakdown_ms")) << "tachyon serve reports timings";
  EXPECT_GT(s["total_cached_tokens"].get<int>(), 0) << "shared prefixes hit the radix cache";
  int sum_out = 0;
  for (const auto& r : run["requests"]) {
    EXPECT_EQ(r["usage"]["completion_tokens"], 16);  // --ignore-eos: exactly max_tokens
    EXPECT_EQ(r["output_tokens"], 16);
    EXPECT_EQ(r["timings"]["predicted_n"], 16);
    EXPECT_GT(r["usage"]["prompt_tokens"].get<int>(), 64 + 48);  // prompt + chat template
    int chunk_sum = 0;
    for (const auto& k : r["chunk_tokens"]) chunk_sum += k.get<int>();
    EXPECT_EQ(chunk_sum, 16);
    // At most one chunk per token (the server may merge tokens, e.g. held-back bytes).
    EXPECT_LE(r["chunk_ms"].size(), 16u);
    EXPECT_GE(r["chunk_ms"].size(), 1u);
    EXPECT_LE(r["ttft_ms"].get<double>(), r["e2e_ms"].get<double>());
    sum_out += r["output_tokens"].get<int>();
  }
  EXPECT_EQ(s["total_output_tokens"], sum_out);
}

}  // namespace
}  // namespace bench_test
