#include "unary.h"

#include <grpcpp/impl/rpc_service_method.h>

#include <chrono>
#include <utility>

#include "calls.h"
#include "status.h"

namespace authd_front {
namespace {

constexpr int kAhead = 16;  // calls requested ahead, per method and queue

grpc::ByteBuffer Message(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace

// One call of a method of the service: requested, taken with its request, answered once, and
// deleted once gRPC gave back both its answer's tag and its end's (AsyncNotifyWhenDone:
// cancellation is known to the context from then on); both come on its queue's one thread.
class UnaryCall final {
 public:
  UnaryCall(UnaryService& service, int index, grpc::ServerCompletionQueue* cq)
      : service_(service), index_(index), cq_(cq), responder_(&ctx_) {
    ctx_.AsyncNotifyWhenDone(&ended_);
    service_.Request(index_, &ctx_, &request_, &responder_, cq_, &taken_);
  }

 private:
  using Step = QueueStep<UnaryCall>;

  void Taken(bool ok) {
    if (!ok) {  // the server shuts down: this call never started (nor will its end come)
      delete this;
      return;
    }
    new UnaryCall(service_, index_, cq_);
    if (index_ == service_.empty_) {
      Answer(grpc::Status::OK, std::string());
      return;
    }
    CallLink& link = *service_.link_;
    auto pending = std::make_unique<LinkedPending>();
    Describe(link.callers(), &ctx_, service_.names_[index_], pending.get());
    pending->call.set_request(Bytes(request_));
    request_.Clear();
    std::string lent;
    if (!ctx_.IsCancelled() && ctx_.deadline() >= std::chrono::system_clock::now() &&
        link.ServeLent(pending->call, &lent)) {
      Answer(grpc::Status::OK, lent);
      return;
    }
    pending->done = [this](const grpc::Status* refused, authd::v1::LinkedAnswer* answer) {
      if (refused != nullptr) {
        Answer(*refused, std::string());
      } else if (answer->has_error()) {
        Answer(ToGrpc(answer->error()), std::string());
      } else {
        Answer(grpc::Status::OK, answer->response());
      }
    };
    link.Submit(std::move(pending));
  }

  // Called once, on any thread; the last use of this call there.
  void Answer(const grpc::Status& status, const std::string& response) {
    if (status.ok()) {
      response_ = Message(response);
      responder_.Finish(response_, status, &answered_);
    } else {
      responder_.FinishWithError(status, &answered_);
    }
  }

  void Answered(bool) { Leave(); }
  void Ended(bool) { Leave(); }
  void Leave() {
    if (++left_ == 2) delete this;
  }

  UnaryService& service_;
  const int index_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext ctx_;
  grpc::ServerAsyncResponseWriter<grpc::ByteBuffer> responder_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  Step taken_{this, &UnaryCall::Taken};
  Step answered_{this, &UnaryCall::Answered};
  Step ended_{this, &UnaryCall::Ended};
  int left_ = 0;  // of the answer's tag and the end's
};

UnaryService::UnaryService(CallLink* link, const std::string& empty_method) : link_(link) {
  if (link_ != nullptr) {
    for (const auto& name : link_->methods()) names_.push_back(name);
  }
  if (!empty_method.empty()) {
    empty_ = static_cast<int>(names_.size());
    names_.push_back(empty_method);
  }
  for (size_t i = 0; i < names_.size(); ++i) {
    AddMethod(new grpc::internal::RpcServiceMethod(
        names_[i].c_str(), grpc::internal::RpcMethod::NORMAL_RPC, nullptr));
    MarkMethodRaw(static_cast<int>(i));
  }
}

void UnaryService::Start(const ServerQueues& queues) {
  for (grpc::ServerCompletionQueue* cq : queues.all()) {
    for (size_t index = 0; index < names_.size(); ++index) {
      for (int i = 0; i < kAhead; ++i) new UnaryCall(*this, static_cast<int>(index), cq);
    }
  }
}

}  // namespace authd_front
