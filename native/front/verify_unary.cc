#include "verify_unary.h"

#include <memory>
#include <utility>

#include "status.h"
#include "verify.h"

namespace authd_front {
namespace {

constexpr int kAhead = 16;  // calls requested ahead, per method and queue

using authd::v1::LinkAnswer;
using Kind = VerifyMethod::Kind;

// One call of a method: requested, taken with its request, answered once, and deleted once
// gRPC gave back both its answer's tag and its end's (AsyncNotifyWhenDone: cancellation is
// known to the context from then on, and the link drops a call whose caller went away); both
// come on its queue's one thread.
class VerifyCall final {
 public:
  VerifyCall(const VerifyMethod& method, grpc::ServerCompletionQueue* cq)
      : method_(method), cq_(cq), responder_(&ctx_) {
    ctx_.AsyncNotifyWhenDone(&ended_);
    method_.request(&ctx_, &request_, &responder_, cq_, &taken_);
  }

 private:
  using Step = QueueStep<VerifyCall>;

  void Taken(bool ok) {
    if (!ok) {  // the server shuts down: this call never started (nor will its end come)
      delete this;
      return;
    }
    new VerifyCall(method_, cq_);
    VerifyService& service = *method_.service;
    const char* name = method_.name.c_str();
    authd::v1::VerifyRequest one;
    authd::v1::VerifyBatchRequest batch;
    size_t items = 1;
    if (method_.kind == Kind::kVerify && !Parse(&one)) return;
    if (method_.kind == Kind::kVerifyBatch) {
      if (!Parse(&batch)) return;
      items = static_cast<size_t>(batch.requests_size());
    }
    request_.Clear();
    grpc::Status busy;
    if (!service.Admit(name, items, &busy)) {
      Fail(busy);
      return;
    }
    auto caller = service.callers().Of(ctx_);
    // The empty linked call: one item, as a unary Verify (the same frames and queue bound).
    auto pending = service.Prepare(&ctx_, *caller, name, items);
    if (method_.kind == Kind::kVerify) pending->call.add_requests()->Swap(&one);
    if (method_.kind == Kind::kVerifyBatch) {
      pending->call.mutable_requests()->Swap(batch.mutable_requests());
    }
    pending->done = [this, items](const grpc::Status* refused, LinkAnswer* answer) {
      method_.service->Leave(items, true);
      Reply(refused, answer, items);
    };
    service.link().Submit(std::move(pending));
  }

  // False (the call answered) when the request does not parse.
  bool Parse(grpc::protobuf::MessageLite* message) {
    if (grpc::SerializationTraits<grpc::protobuf::MessageLite>::Deserialize(&request_, message)
            .ok()) {
      return true;
    }
    Fail(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, ""));
    return false;
  }

  // On the link's thread (or the queue's, for what the link answers at once); the last use of
  // this call there.
  void Reply(const grpc::Status* refused, LinkAnswer* answer, size_t items) {
    if (refused != nullptr) return Fail(*refused);
    if (answer->has_error()) return Fail(ToGrpc(answer->error()));
    switch (method_.kind) {
      case Kind::kVerify:
        if (answer->responses_size() != 1) return Fail(Mismatch());
        if (answer->responses(0).has_error()) return Fail(ToGrpc(answer->responses(0).error()));
        return Send(answer->responses(0));
      case Kind::kVerifyBatch: {
        if (static_cast<size_t>(answer->responses_size()) != items) return Fail(Mismatch());
        authd::v1::VerifyBatchResponse response;
        response.mutable_responses()->Swap(answer->mutable_responses());
        return Send(response);
      }
      case Kind::kEmptyLinked: {
        if (answer->responses_size() != 0) return Fail(Mismatch());
        grpc::Slice empty("", 0);
        response_ = grpc::ByteBuffer(&empty, 1);
        responder_.Finish(response_, grpc::Status::OK, &answered_);
        return;
      }
    }
  }

  void Send(const grpc::protobuf::MessageLite& message) {
    bool own = false;
    grpc::Status made = grpc::SerializationTraits<grpc::protobuf::MessageLite>::Serialize(
        message, &response_, &own);
    if (!made.ok()) return Fail(made);
    responder_.Finish(response_, grpc::Status::OK, &answered_);
  }

  void Fail(const grpc::Status& status) { responder_.FinishWithError(status, &answered_); }

  void Answered(bool) { Leave(); }
  void Ended(bool) { Leave(); }
  void Leave() {
    if (++left_ == 2) delete this;
  }

  const VerifyMethod& method_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext ctx_;
  grpc::ServerAsyncResponseWriter<grpc::ByteBuffer> responder_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  Step taken_{this, &VerifyCall::Taken};
  Step answered_{this, &VerifyCall::Answered};
  Step ended_{this, &VerifyCall::Ended};
  int left_ = 0;  // of the answer's tag and the end's
};

}  // namespace

void ServeUnary(const VerifyMethod& method, const ServerQueues& queues) {
  for (grpc::ServerCompletionQueue* cq : queues.all()) {
    for (int i = 0; i < kAhead; ++i) new VerifyCall(method, cq);
  }
}

}  // namespace authd_front
