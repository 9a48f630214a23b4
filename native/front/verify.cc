#include "verify.h"

#include <algorithm>

#include "status.h"
#include "verify_stream.h"

namespace authd_front {
namespace {

// The client's idempotency key of a unary Verify: carried to the engine, which checks it (and
// refuses it on VerifyBatch and VerifyStream, which name one per request).
constexpr const char* kIdempotencyKey = "x-authd-idempotency-key";

}  // namespace

bool Admission::Enter(int64_t count) {
  if (limit_ <= 0) {
    held_.fetch_add(count, std::memory_order_relaxed);
    return true;
  }
  int64_t held = held_.load(std::memory_order_relaxed);
  do {
    if (held + count > limit_ && count > 0) return false;
  } while (!held_.compare_exchange_weak(held, held + count, std::memory_order_relaxed));
  return true;
}

VerifyService::VerifyService(Callers& callers, Link& link, int64_t max_in_flight,
                             size_t batch_request_max)
    : callers_(callers),
      link_(link),
      admission_(max_in_flight),
      batch_request_max_(batch_request_max) {
  // Every other method of the service is forwarded to the daemon.
  const auto* service = authd::v1::VerifyRequest::descriptor()->file()->FindServiceByName(
      "OtpService");
  for (int i = 0; i < service->method_count(); ++i) {
    const std::string& name = service->method(i)->name();
    if (name != "Verify" && name != "VerifyBatch" && name != "VerifyStream") {
      MarkMethodGeneric(i);
    }
  }
  verify_ = {VerifyMethod::Kind::kVerify, "/authd.v1.OtpService/Verify", this,
             [this](grpc::ServerContext* ctx, grpc::ByteBuffer* request,
                    grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>* responder,
                    grpc::ServerCompletionQueue* cq, void* tag) {
               RequestVerify(ctx, request, responder, cq, cq, tag);
             }};
  batch_ = {VerifyMethod::Kind::kVerifyBatch, "/authd.v1.OtpService/VerifyBatch", this,
            [this](grpc::ServerContext* ctx, grpc::ByteBuffer* request,
                   grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>* responder,
                   grpc::ServerCompletionQueue* cq, void* tag) {
              RequestVerifyBatch(ctx, request, responder, cq, cq, tag);
            }};
}

void VerifyService::Start(const ServerQueues& queues) {
  ServeUnary(verify_, queues);
  ServeUnary(batch_, queues);
  ServeStream(*this, queues);
}

std::unique_ptr<Pending> VerifyService::Prepare(grpc::ServerContextBase* ctx,
                                                const Caller& caller, const char* method,
                                                size_t items) {
  auto pending = std::make_unique<Pending>();
  pending->ctx = ctx;
  pending->items = items;
  auto& call = pending->call;
  call.set_method(method);
  call.set_institution(caller.names.institution);
  call.set_role(caller.names.role);
  call.set_subject(caller.names.subject);
  const auto& metadata = ctx->client_metadata();
  auto key = metadata.find(kIdempotencyKey);
  if (key != metadata.end()) call.set_idempotency_key(key->second.data(), key->second.size());
  return pending;
}

bool VerifyService::Admit(const char* method, size_t items, grpc::Status* busy) {
  if (items > batch_request_max_) return true;  // the engine refuses it, evaluating nothing
  if (admission_.Enter(static_cast<int64_t>(items))) return true;
  int64_t held = admission_.held();
  double retry = std::clamp(static_cast<double>(held) * link_.Pace(), 0.01, 5.0);
  *busy = Busy(held, admission_.limit(), retry);
  link_.Shed(method, "RESOURCE_EXHAUSTED");
  return false;
}

void VerifyService::Leave(size_t items, bool admitted) {
  if (admitted && items <= batch_request_max_) {
    admission_.Leave(static_cast<int64_t>(items));
  }
}

}  // namespace authd_front
