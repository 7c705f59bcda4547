#include "server/server.h"

#include <csignal>
#include <random>

#include "server/anthropic_api.h"
#include "server/completion_job.h"
#include "server/responses_api.h"
#include "server/structured.h"
#include "server/webui.h"

namespace tachyon::server {

namespace {

const HeaderList kCors = {{"Access-Control-Allow-Origin", "*"}};

std::mt19937_64& rng() {
  thread_local std::mt19937_64 r([] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }());
  return r;
}

HttpConfig with_hooks(HttpConfig hc, ServerMetrics* metrics) {
  hc.error_body = [](int status, std::string_view message) {
    ApiError e;
    e.status = status;
    e.type = error_type_for_status(status);
    e.message = std::string(message);
    return error_json(e);
  };
  hc.on_status = [metrics](int status) { metrics->record_status(status); };
  return hc;
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  return true;
}

// Compares without an early exit on the first differing byte.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? a[i] : 0, y = i < b.size() ? b[i] : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

ApiError context_error(int n_ctx, size_t n_prompt, int max_tokens, Endpoint ep) {
  ApiError e;
  e.code = "context_length_exceeded";
  e.param = ep == Endpoint::kChat ? "messages" : "prompt";
  const std::string what = ep == Endpoint::kChat ? "messages" : "prompt";
  if (max_tokens > 0) {
    e.message = "This model's maximum context length is " + std::to_string(n_ctx) + " tokens. However, you requested " +
                std::to_string(n_prompt + static_cast<size_t>(max_tokens)) + " tokens (" + std::to_string(n_prompt) +
                " in the " + what + ", " + std::to_string(max_tokens) +
                " in the completion). Please reduce the length of the " + what + " or completion.";
  } else {
    e.message = "This model's maximum context length is " + std::to_string(n_ctx) + " tokens. However, your " + what +
                " resulted in " + std::to_string(n_prompt) + " tokens. Please reduce the length of the " + what + ".";
  }
  return e;
}

}  // namespace

std::string make_request_id(const char* prefix) {
  static const char* kHex = "0123456789abcdef";
  std::string id = prefix;
  uint64_t a = rng()(), b = rng()();
  for (int i = 0; i < 16; ++i, a >>= 4) id += kHex[a & 15];
  for (int i = 0; i < 8; ++i, b >>= 4) id += kHex[b & 15];
  return id;
}

uint64_t random_seed() { return rng()(); }

Server::Server(ServerConfig cfg, Backend& backend, const tok::Tokenizer& tokenizer, ChatFormat chat, ModelInfo info)
    : cfg_(std::move(cfg)),
      backend_(backend),
      tok_(tokenizer),
      chat_(std::move(chat)),
      tool_family_(chat::detect_tool_family(chat_.tmpl.source())),
      info_(std::move(info)),
      http_(with_hooks(cfg_.http, &metrics_), [this](std::shared_ptr<Exchange> ex) { handle(ex); }) {
  // One post (one I/O thread wake-up) per engine step for all streams' notifications;
  // each job's notify then posts to its connection's strand from the I/O thread.
  backend_.set_notify_dispatcher([ioc = &http_.io_context()](engine::NotifyBatch&& batch) {
    net::post(*ioc, [batch = std::move(batch)] {
      for (const auto& fn : batch) fn();
    });
  });
}

Server::~Server() { backend_.set_notify_dispatcher(nullptr); }

Status Server::listen() { return http_.listen(); }

void Server::run() {
  if (cfg_.handle_signals) {
    signals_ = std::make_unique<net::signal_set>(http_.io_context(), SIGINT, SIGTERM);
    signals_->async_wait([this](boost::system::error_code ec, int) {
      if (!ec) stop();
    });
  }
  stats_timer_ = std::make_unique<net::steady_timer>(net::make_strand(http_.io_context()));
  schedule_stats();
  http_.run();
  backend_.shutdown();  // after this no notify callback posts to the I/O context
  signals_.reset();
}

void Server::stop() { http_.stop(); }

void Server::schedule_stats() {
  if (http_.stopping() || cfg_.stats_interval_ms <= 0) return;
  stats_timer_->expires_after(std::chrono::milliseconds(cfg_.stats_interval_ms));
  stats_timer_->async_wait([this](boost::system::error_code ec) {
    if (ec || http_.stopping()) return;
    metrics_.absorb_latencies(backend_.stats(/*take_latencies=*/true));
    schedule_stats();
  });
}

void Server::send_error(const std::shared_ptr<Exchange>& ex, const ApiError& e, const HeaderList& extra) {
  HeaderList h = kCors;
  h.insert(h.end(), extra.begin(), extra.end());
  // Anthropic's routes answer in Anthropic's error shape
  const auto target = ex->request().target();
  const bool anthropic = std::string_view(target.data(), target.size()).rfind("/v1/messages", 0) == 0;
  ex->respond(e.status, "application/json", anthropic ? anthropic_error_json(e) : error_json(e), h);
}

void Server::handle(const std::shared_ptr<Exchange>& ex) {
  const HttpRequest& req = ex->request();
  std::string_view path(req.target().data(), req.target().size());
  if (auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const http::verb method = req.method();

  if (method == http::verb::options) {  // CORS preflight
    ex->respond(204, "text/plain", "",
                {{"Access-Control-Allow-Origin", "*"},
                 {"Access-Control-Allow-Methods", "GET, POST, OPTIONS"},
                 {"Access-Control-Allow-Headers", "Authorization, Content-Type"},
                 {"Access-Control-Max-Age", "86400"}});
    return;
  }

  if (cfg_.webui && (path == "/" || path == "/index.html")) {  // the chat page; it sends the key itself
    if (method != http::verb::get) {
      ApiError e;
      e.status = 405;
      e.message = "Method " + std::string(req.method_string()) + " not allowed for " + std::string(path) + " (use GET)";
      return send_error(ex, e, {{"Allow", "GET"}});
    }
    // The CSP keeps the page to this server: no other origin can be fetched or loaded.
    ex->respond(200, "text/html; charset=utf-8", std::string(webui_index_html()),
                {{"Cache-Control", "no-cache"},
                 {"X-Content-Type-Options", "nosniff"},
                 {"Content-Security-Policy",
                  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
                  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"}});
    return;
  }

  enum class Route {
    kNone, kHealth, kMetrics, kModels, kChat, kCompletions, kMessages, kCountTokens, kResponses, kKvImport
  };
  Route route = Route::kNone;
  if (path == "/health" || path == "/v1/health") route = Route::kHealth;
  else if (path == "/metrics") route = Route::kMetrics;
  else if (path == "/v1/models" || path == "/models") route = Route::kModels;
  else if (path == "/v1/chat/completions" || path == "/chat/completions") route = Route::kChat;
  else if (path == "/v1/completions" || path == "/completions") route = Route::kCompletions;
  else if (path == "/v1/messages") route = Route::kMessages;
  else if (path == "/v1/messages/count_tokens") route = Route::kCountTokens;
  else if (path == "/v1/responses" || path == "/responses") route = Route::kResponses;
  else if (path == "/internal/kv/import" && cfg_.role == ServerRole::kDecode) route = Route::kKvImport;

  if (route == Route::kNone) {
    ApiError e;
    e.status = 404;
    e.type = "not_found_error";
    e.message = "Invalid URL (" + std::string(req.method_string()) + " " + std::string(path.substr(0, 200)) + ")";
    send_error(ex, e);
    return;
  }
  const bool post = route == Route::kChat || route == Route::kCompletions || route == Route::kMessages ||
                    route == Route::kCountTokens || route == Route::kResponses || route == Route::kKvImport;
  if (method != (post ? http::verb::post : http::verb::get)) {
    ApiError e;
    e.status = 405;
    e.message = "Method " + std::string(req.method_string()) + " not allowed for " + std::string(path) + " (use " +
                (post ? "POST" : "GET") + ")";
    send_error(ex, e, {{"Allow", post ? "POST" : "GET"}});
    return;
  }
  switch (route) {
    case Route::kHealth:
      if (http_.stopping())
        ex->respond(503, "application/json", R"({"status":"shutting_down"})", kCors);
      else
        ex->respond(200, "application/json", R"({"status":"ok"})", kCors);
      return;
    case Route::kMetrics: handle_metrics(ex); return;
    case Route::kModels:
      if (check_api_key(ex)) handle_models(ex);
      return;
    case Route::kChat:
    case Route::kCompletions:
      if (check_api_key(ex)) handle_completion(ex, route == Route::kChat ? Endpoint::kChat : Endpoint::kCompletions);
      return;
    case Route::kMessages:
    case Route::kCountTokens:
      if (check_api_key(ex)) handle_anthropic(ex, route == Route::kCountTokens);
      return;
    case Route::kResponses:
      if (check_api_key(ex)) handle_responses(ex);
      return;
    case Route::kKvImport:
      if (check_api_key(ex)) handle_kv_import(ex);
      return;
    case Route::kNone: return;
  }
}

bool Server::check_api_key(const std::shared_ptr<Exchange>& ex) {
  if (cfg_.api_keys.empty()) return true;
  const HttpRequest& req = ex->request();
  auto it = req.find(http::field::authorization);
  ApiError e;
  e.status = 401;
  e.code = "invalid_api_key";
  if (auto xk = req.find("x-api-key"); xk != req.end()) {  // Anthropic clients send the key here
    std::string_view v(xk->value().data(), xk->value().size());
    bool ok = false;
    for (const auto& k : cfg_.api_keys) ok |= same_secret(v, k);
    if (ok) return true;
  }
  if (it == req.end()) {
    e.message = "Missing API key: send it as 'Authorization: Bearer <key>'";
  } else {
    std::string_view v(it->value().data(), it->value().size());
    if (iequals_prefix(v, "Bearer ")) {
      v.remove_prefix(7);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
      bool ok = false;
      for (const auto& k : cfg_.api_keys) ok |= same_secret(v, k);
      if (ok) return true;
      e.message = "Incorrect API key provided";
    } else {
      e.message = "Malformed Authorization header: expected 'Bearer <key>'";
    }
  }
  send_error(ex, e, {{"WWW-Authenticate", "Bearer"}});
  return false;
}

void Server::handle_models(const std::shared_ptr<Exchange>& ex) {
  ojson m = {{"id", info_.id},
             {"object", "model"},
             {"created", info_.created},
             {"owned_by", "tachyon"},
             {"architecture", info_.arch},
             {"weight_type", info_.weight_type},
             {"quantization", info_.quantization},
             {"context_length", info_.n_ctx},
             {"n_ctx_train", info_.n_ctx_train},
             {"n_vocab", info_.n_vocab},
             {"size_bytes", info_.size_bytes},
             {"path", info_.path}};
  ojson body = {{"object", "list"}, {"data", ojson::array({std::move(m)})}};
  ex->respond(200, "application/json", dump_json(body), kCors);
}

void Server::handle_metrics(const std::shared_ptr<Exchange>& ex) {
  engine::EngineStats s = backend_.stats(/*take_latencies=*/true);
  metrics_.absorb_latencies(s);
  ServerGauges g;
  g.open_connections = http_.n_connections();
  g.active_requests = active_requests_.load();
  ex->respond(200, "text/plain; version=0.0.4; charset=utf-8", metrics_.render(s, g));
}

bool Server::chat_prompt(const CompletionParams& p, std::vector<int32_t>* ids, ApiError* err, std::string* rendered) const {
  chat::RenderOptions opts;
  opts.bos_token = chat_.bos_token;
  opts.eos_token = chat_.eos_token;
  opts.add_generation_prompt = true;
  if (!p.tool_choice.is_null()) opts.extra_context["tool_choice"] = nlohmann::json::parse(p.tool_choice.dump());
  auto text = chat_.tmpl.render_ordered(p.messages, p.tools, opts);
  if (!text) {
    err->status = 400;
    err->param = "messages";
    err->message = "chat template: " + text.status().message();
    return false;
  }
  if (rendered) *rendered = text.value();
  std::string_view t = text.value();
  // The template writes the BOS text itself; encode() adds the BOS id: keep one.
  if (tok_.add_bos() && !chat_.bos_token.empty() && t.substr(0, chat_.bos_token.size()) == chat_.bos_token)
    t.remove_prefix(chat_.bos_token.size());
  *ids = tok_.encode(t, /*add_special=*/true, /*parse_special=*/true);
  if (ids->empty()) {
    err->status = 400;
    err->param = "messages";
    err->message = "the rendered conversation is empty";
    return false;
  }
  return true;
}

bool Server::completion_prompt(const PromptInput& in, std::vector<int32_t>* ids, ApiError* err) const {
  if (in.is_ids) {
    for (int32_t id : in.ids) {
      if (!tok_.valid_id(id)) {
        err->status = 400;
        err->param = "prompt";
        err->message = "token id " + std::to_string(id) + " is out of range (vocabulary of " +
                       std::to_string(tok_.n_vocab()) + ")";
        return false;
      }
    }
    *ids = in.ids;
  } else {
    *ids = tok_.encode(in.text, /*add_special=*/true, /*parse_special=*/true);
  }
  if (ids->empty()) {
    err->status = 400;
    err->param = "prompt";
    err->message = "the prompt is empty";
    return false;
  }
  return true;
}

void Server::handle_completion(const std::shared_ptr<Exchange>& ex, Endpoint ep) {
  CompletionParams p;
  ApiError err;
  if (!parse_completion_request(ep, ex->request().body(), cfg_.limits, &p, &err)) return send_error(ex, err);
  run_completion(ex, std::move(p), JobOptions{});
}

namespace {
// A converted API's body as JSON (its own parse errors named as the OpenAI parser names them).
bool parse_body(std::string_view body, const ParseLimits& lim, ojson* out, ApiError* err) {
  err->status = 400;
  if (json_nesting_depth(body) > lim.max_depth) {
    err->message = "JSON nested deeper than " + std::to_string(lim.max_depth) + " levels";
    return false;
  }
  *out = ojson::parse(body, nullptr, false);
  if (out->is_discarded()) {
    err->message = "invalid JSON in the request body";
    return false;
  }
  if (!out->is_object()) {
    err->message = "the request body must be a JSON object";
    return false;
  }
  return true;
}
}  // namespace

void Server::handle_anthropic(const std::shared_ptr<Exchange>& ex, bool count_tokens) {
  ApiError err;
  ojson body, chat_req;
  if (!parse_body(ex->request().body(), cfg_.limits, &body, &err)) return send_error(ex, err);
  if (!anthropic_to_chat_request(body, &chat_req, &err,
                                 count_tokens ? AnthropicEndpoint::kCountTokens : AnthropicEndpoint::kCreate))
    return send_error(ex, err);
  CompletionParams p;
  if (!parse_completion_request(Endpoint::kChat, dump_json(chat_req), cfg_.limits, &p, &err)) return send_error(ex, err);
  if (count_tokens) {
    std::vector<int32_t> ids;
    std::string rendered;
    if (!chat_prompt(p, &ids, &err, &rendered)) return send_error(ex, err);
    ex->respond(200, "application/json", dump_json(anthropic_count_tokens_json(static_cast<int>(ids.size()))), kCors);
    return;
  }
  JobOptions o;
  o.api = Api::kAnthropic;
  run_completion(ex, std::move(p), std::move(o));
}

void Server::handle_responses(const std::shared_ptr<Exchange>& ex) {
  ApiError err;
  ojson body, chat_req;
  if (!parse_body(ex->request().body(), cfg_.limits, &body, &err)) return send_error(ex, err);
  if (!responses_to_chat_request(body, &chat_req, &err)) return send_error(ex, err);
  CompletionParams p;
  if (!parse_completion_request(Endpoint::kChat, dump_json(chat_req), cfg_.limits, &p, &err)) return send_error(ex, err);
  JobOptions o;
  o.api = Api::kResponses;
  o.request_echo = body;
  run_completion(ex, std::move(p), std::move(o));
}

void Server::run_completion(const std::shared_ptr<Exchange>& ex, CompletionParams p, JobOptions opts) {
  ApiError err;
  const Endpoint ep = p.endpoint;
  if (opts.api != Api::kOpenAI && p.n != 1) {
    err.status = 400;
    err.param = "n";
    err.message = "this API returns one choice: 'n' must be 1";
    return send_error(ex, err);
  }
  if (http_.stopping()) {
    err.status = 503;
    err.type = "server_error";
    err.message = "the server is shutting down";
    return send_error(ex, err);
  }

  // A prefill worker's KV export (server/pd.cpp): one prompt, prefilled, answered with its pages.
  const bool kv_export = ex->request().find(kKvExportHeader) != ex->request().end();
  if (kv_export && cfg_.role != ServerRole::kPrefill) {
    err.status = 400;
    err.status = 409;
    err.message = std::string(kKvExportHeader) + ": KV export needs a server started with --role prefill";
    return send_error(ex, err);
  }
  if (kv_export && (p.n != 1 || p.prompts.size() > 1)) {
    err.status = 400;
    err.message = std::string(kKvExportHeader) + ": one prompt and n = 1 only";
    return send_error(ex, err);
  }

  std::vector<std::vector<int32_t>> prompts;
  std::string rendered;
  if (ep == Endpoint::kChat) {
    prompts.emplace_back();
    if (!chat_prompt(p, &prompts.back(), &err, &rendered)) return send_error(ex, err);
  } else {
    for (const auto& in : p.prompts) {
      prompts.emplace_back();
      if (!completion_prompt(in, &prompts.back(), &err)) return send_error(ex, err);
    }
  }
  const int n_ctx = info_.n_ctx;
  for (const auto& ids : prompts) {
    if (static_cast<int64_t>(ids.size()) >= n_ctx ||
        (p.max_tokens > 0 && static_cast<int64_t>(ids.size()) + p.max_tokens > n_ctx))
      return send_error(ex, context_error(n_ctx, ids.size(), p.max_tokens, ep));
  }

  sampling::SamplingParams sp = p.sampling;
  if (p.ignore_eos) {
    const auto& eog = tok_.eog_ids();
    sp.banned_tokens.insert(sp.banned_tokens.end(), eog.begin(), eog.end());
  }
  if (Status st = sp.validate(tok_.n_vocab()); !st) {
    err.status = 400;
    err.message = st.message();
    err.param = st.message().find("banned") != std::string::npos ? "logit_bias" : "";
    return send_error(ex, err);
  }

  // Structured output and tool calls: the grammar, and how the output is read back.
  StructuredPlan plan;
  if (!plan_structured(p, tool_family_, grammars_, &plan, &err)) return send_error(ex, err);
  opts.warnings = std::move(plan.warnings);
  opts.keep_alive_ms = cfg_.sse_keep_alive_ms;
  if (ep == Endpoint::kChat) {
    opts.family = tool_family_;
    opts.tools_enabled = p.tools.is_array() && !p.tools.empty();
    opts.stream_call_args = plan.calls_constrained;
    const size_t tail = std::min<size_t>(rendered.size(), 64);
    opts.reasoning = chat::detect_reasoning(chat_.tmpl.source(), std::string_view(rendered).substr(rendered.size() - tail));
    opts.parse_output = opts.tools_enabled || !opts.reasoning.open.empty();
  }

  std::vector<CompletionJob::Choice> choices;
  auto cancel_all = [&] {
    for (auto& c : choices) c.handle->cancel();
  };
  int index = 0;
  for (size_t pi = 0; pi < prompts.size(); ++pi) {
    for (int j = 0; j < p.n; ++j, ++index) {
      engine::GenerateRequest g;
      g.prompt = prompts[pi];
      g.sampling = sp;
      g.sampling.seed = p.seed_set ? p.sampling.seed + static_cast<uint64_t>(index) : random_seed();
      g.max_tokens = p.max_tokens > 0 ? p.max_tokens : n_ctx - static_cast<int>(prompts[pi].size());
      g.stop = p.stop;
      g.ignore_eos = p.ignore_eos;
      g.top_logprobs = p.logprobs;
      g.spec_mode = p.spec_mode;
      g.spec_max = p.spec_max;
      g.constraint = plan.constraint;
      if (kv_export) {  // prefill only: one token (discarded), then the prompt's pages
        g.max_tokens = 1;
        g.export_kv = true;
        g.constraint.reset();
        g.spec_mode = spec::Mode::kOff;
        g.top_logprobs = -1;
      }
      auto r = backend_.submit(std::move(g));
      if (!r) {
        cancel_all();
        const std::string& msg = r.status().message();
        ApiError e;
        if (msg.rfind("queue_full", 0) == 0) {
          e.status = 429;
          e.type = "rate_limit_error";
          e.code = "queue_full";
          e.message = "The server is busy (request queue full); retry after " + std::to_string(cfg_.retry_after_s) + " s";
          return send_error(ex, e, {{"Retry-After", std::to_string(cfg_.retry_after_s)}});
        }
        if (msg.rfind("context_length_exceeded", 0) == 0)
          return send_error(ex, context_error(n_ctx, prompts[pi].size(), p.max_tokens, ep));
        if (r.status().code() == ErrorCode::kInvalidArgument) {
          e.status = 400;
          e.message = msg;
        } else {
          e.status = http_.stopping() ? 503 : 500;
          e.type = "server_error";
          e.message = "engine: " + msg;
        }
        return send_error(ex, e);
      }
      CompletionJob::Choice c;
      c.handle = std::move(r.value());
      c.index = index;
      c.prompt_index = static_cast<int>(pi);
      c.prompt_tokens = static_cast<int>(prompts[pi].size());
      choices.push_back(std::move(c));
    }
  }
  if (kv_export) return start_kv_export(ex, std::move(choices[0].handle));
  auto job = std::make_shared<CompletionJob>(*this, ex, std::move(p), std::move(choices), std::move(opts));
  job->start();
}

}  // namespace tachyon::server
