// Prefill/decode disaggregation on the server side (ServerRole in server.h): a prefill
// worker answers an export request with the prompt's KV pages once the prompt is
// prefilled; a decode worker imports such pages into its prefix cache. The router moves
// the bytes between them (router/router.h, PD mode) and falls back to the decode worker's
// own prefill when anything fails, so both ends only report errors, never retry.
#include <boost/asio/post.hpp>

#include "server/server.h"

namespace tachyon::server {

namespace {

// Waits (on the exchange's strand) for the export request's finish event and answers with
// its transfer bytes. The client going away cancels the request.
class KvExportJob : public ExchangeOwner, public std::enable_shared_from_this<KvExportJob> {
 public:
  KvExportJob(std::shared_ptr<Exchange> ex, std::shared_ptr<engine::RequestHandle> h)
      : ex_(std::move(ex)), h_(std::move(h)) {}
  ~KvExportJob() override {
    if (!done_) h_->cancel();
  }

  void start() {
    ex_->set_owner(shared_from_this());
    std::weak_ptr<KvExportJob> w = weak_from_this();
    auto exec = ex_->executor();
    h_->set_notify([w, exec] {
      net::post(exec, [w] {
        if (auto self = w.lock()) self->pump();
      });
    });
    pump();  // events pushed before set_notify()
  }

  void on_client_gone() override {
    done_ = true;
    h_->cancel();
  }

 private:
  void pump() {
    if (done_) return;
    if (ex_->client_gone()) return on_client_gone();
    events_.clear();
    h_->drain(&events_);
    for (auto& e : events_) {
      if (e.kind != engine::Event::Kind::kFinish) continue;
      done_ = true;
      if (e.kv_export) {
        ex_->respond(200, "application/octet-stream", std::string(*e.kv_export),
                     {{"X-Tachyon-KV-Pages", std::to_string(e.kv_export_pages)},
                      {"X-Tachyon-Prompt-Tokens", std::to_string(e.prompt_tokens)}});
      } else {
        ApiError err;
        err.status = e.finish_reason == "cancelled" ? 503 : e.kv_export_error.empty() ? 500 : 409;
        err.type = "server_error";
        err.message = !e.kv_export_error.empty() ? e.kv_export_error
                      : !e.error.empty()         ? "KV export: " + e.error
                                                 : "KV export: the request ended '" + e.finish_reason + "'";
        ex_->respond(err.status, "application/json", error_json(err));
      }
      return;
    }
  }

  std::shared_ptr<Exchange> ex_;
  std::shared_ptr<engine::RequestHandle> h_;
  std::vector<engine::Event> events_;
  bool done_ = false;
};

}  // namespace

void Server::start_kv_export(const std::shared_ptr<Exchange>& ex, std::shared_ptr<engine::RequestHandle> h) {
  std::make_shared<KvExportJob>(ex, std::move(h))->start();
}

void Server::handle_kv_import(const std::shared_ptr<Exchange>& ex) {
  const std::string& body = ex->request().body();
  auto exec = ex->executor();
  // Verification runs here (this I/O thread), the insertion on the engine thread; the
  // answer comes back to the exchange's strand. The exchange (and its body) lives until
  // it is answered.
  backend_.import_kv(body, [ex, exec](Result<engine::KvImportResult> r) {
    net::post(exec, [ex, r = std::move(r)] {
      if (r) {
        const auto& v = r.value();
        ojson j{{"imported_pages", v.added}, {"present_pages", v.present}, {"pages", v.pages}};
        ex->respond(200, "application/json", dump_json(j));
        return;
      }
      ApiError err;
      const ErrorCode c = r.status().code();
      err.status = c == ErrorCode::kCorrupt ? 400 : c == ErrorCode::kUnsupported ? 501 : 503;
      err.type = err.status == 400 ? "invalid_request_error" : "server_error";
      err.message = r.status().message();
      ex->respond(err.status, "application/json", error_json(err));
    });
  });
}

}  // namespace tachyon::server
