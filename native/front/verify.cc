#include "verify.h"

#include <algorithm>
#include <deque>
#include <mutex>

#include "status.h"

namespace authd_front {
namespace {

constexpr const char* kVerify = "/authd.v1.OtpService/Verify";
constexpr const char* kVerifyBatch = "/authd.v1.OtpService/VerifyBatch";
constexpr const char* kVerifyStream = "/authd.v1.OtpService/VerifyStream";
constexpr size_t kFramesAhead = 64;  // VerifyStream frames read before the oldest is answered
// The client's idempotency key of a unary Verify: carried to the engine, which checks it (and
// refuses it on VerifyBatch and VerifyStream, which name one per request).
constexpr const char* kIdempotencyKey = "x-authd-idempotency-key";

using authd::v1::LinkAnswer;
using authd::v1::VerifyBatchRequest;
using authd::v1::VerifyBatchResponse;

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
}

std::unique_ptr<Pending> VerifyService::Start(grpc::CallbackServerContext* ctx,
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

grpc::ServerUnaryReactor* VerifyService::Verify(grpc::CallbackServerContext* ctx,
                                                const authd::v1::VerifyRequest* request,
                                                authd::v1::VerifyResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  grpc::Status busy;
  if (!Admit(kVerify, 1, &busy)) {
    reactor->Finish(busy);
    return reactor;
  }
  auto caller = callers_.Of(*ctx);
  auto pending = Start(ctx, *caller, kVerify, 1);
  *pending->call.add_requests() = *request;
  pending->done = [this, reactor, response](const grpc::Status* refused, LinkAnswer* answer) {
    Leave(1, true);
    if (refused != nullptr) {
      reactor->Finish(*refused);
    } else if (answer->has_error()) {
      reactor->Finish(ToGrpc(answer->error()));
    } else if (answer->responses_size() != 1) {
      reactor->Finish(Mismatch());
    } else if (answer->responses(0).has_error()) {
      reactor->Finish(ToGrpc(answer->responses(0).error()));
    } else {
      response->Swap(answer->mutable_responses(0));
      reactor->Finish(grpc::Status::OK);
    }
  };
  link_.Submit(std::move(pending));
  return reactor;
}

grpc::ServerUnaryReactor* VerifyService::VerifyBatch(
    grpc::CallbackServerContext* ctx, const authd::v1::VerifyBatchRequest* request,
    authd::v1::VerifyBatchResponse* response) {
  auto* reactor = ctx->DefaultReactor();
  size_t items = static_cast<size_t>(request->requests_size());
  grpc::Status busy;
  if (!Admit(kVerifyBatch, items, &busy)) {
    reactor->Finish(busy);
    return reactor;
  }
  auto caller = callers_.Of(*ctx);
  auto pending = Start(ctx, *caller, kVerifyBatch, items);
  *pending->call.mutable_requests() = request->requests();
  pending->done = [this, reactor, response, items](const grpc::Status* refused,
                                                  LinkAnswer* answer) {
    Leave(items, true);
    if (refused != nullptr) {
      reactor->Finish(*refused);
    } else if (answer->has_error()) {
      reactor->Finish(ToGrpc(answer->error()));
    } else if (static_cast<size_t>(answer->responses_size()) != items) {
      reactor->Finish(Mismatch());
    } else {
      response->mutable_responses()->Swap(answer->mutable_responses());
      reactor->Finish(grpc::Status::OK);
    }
  };
  link_.Submit(std::move(pending));
  return reactor;
}

namespace {

// One VerifyStream: frames are read ahead (at most kFramesAhead unanswered), each goes to the
// engine as one call, and the answers are written one frame at a time, in the order of the
// frames. A frame beyond the admission bound is answered with the error in every response, and
// the stream goes on; a frame the engine refuses whole (oversized, the caller) ends the stream
// with that status after the frames before it. The stream ends only when every frame sent to
// the engine has come back.
class StreamReactor final
    : public grpc::ServerBidiReactor<VerifyBatchRequest, VerifyBatchResponse> {
 public:
  StreamReactor(VerifyService& service, grpc::CallbackServerContext* ctx)
      : service_(service), ctx_(ctx), caller_(service.callers().Of(*ctx)) {
    StartRead(&request_);
  }

  // A stream that ends before any frame came still gets the engine's verdict on its caller (a call of no verifications), as the daemon's own server would give it. Called
  // with the lock held.
  void Probe(std::unique_lock<std::mutex>& lock) {
    probed_ = true;
    ++outstanding_;
    auto probe = service_.Start(ctx_, *caller_, kVerifyStream, 0);
    probe->done = [this](const grpc::Status* refused, LinkAnswer* answer) {
      std::unique_lock<std::mutex> lock(mu_);
      --outstanding_;
      if (refused != nullptr || answer->has_error()) {
        error_ = refused != nullptr ? *refused : ToGrpc(answer->error());
        failed_ = true;
      }
      Pump(lock);
    };
    lock.unlock();
    service_.link().Submit(std::move(probe));
    lock.lock();
  }

  void OnReadDone(bool ok) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (!ok || failed_) {
      reading_ = false;
      if (!read_any_ && !failed_ && !probed_ && !caller_->verified.load()) Probe(lock);
      Pump(lock);
      return;
    }
    read_any_ = true;
    auto slot = std::make_shared<Slot>();
    slots_.push_back(slot);
    size_t items = static_cast<size_t>(request_.requests_size());
    grpc::Status busy;
    if (!service_.Admit(kVerifyStream, items, &busy)) {
      google::rpc::Status why = ToRpc(busy);
      for (const auto& request : request_.requests()) {
        auto* response = slot->frame.add_responses();
        response->set_request_id(request.request_id());
        *response->mutable_error() = why;
      }
      slot->ready = true;
    } else {
      ++outstanding_;
      auto pending = service_.Start(ctx_, *caller_, kVerifyStream, items);
      pending->call.mutable_requests()->Swap(request_.mutable_requests());
      pending->done = [this, slot, items](const grpc::Status* refused, LinkAnswer* answer) {
        service_.Leave(items, true);
        std::unique_lock<std::mutex> lock(mu_);
        --outstanding_;
        if (refused != nullptr || answer->has_error()) {
          slot->error = refused != nullptr ? *refused : ToGrpc(answer->error());
          slot->failed = true;
        } else if (static_cast<size_t>(answer->responses_size()) != items) {
          slot->error = Mismatch();
          slot->failed = true;
        } else {
          slot->frame.mutable_responses()->Swap(answer->mutable_responses());
          caller_->verified.store(true);
        }
        slot->ready = true;
        Pump(lock);
      };
      lock.unlock();
      service_.link().Submit(std::move(pending));
      lock.lock();
    }
    request_.Clear();
    if (slots_.size() < kFramesAhead) {
      lock.unlock();
      StartRead(&request_);
      return;
    }
    paused_ = true;
    Pump(lock);
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> lock(mu_);
    writing_ = false;
    if (!slots_.empty()) slots_.pop_front();
    if (!ok && !failed_) {
      failed_ = true;
      error_ = grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
    }
    if (paused_ && !failed_ && slots_.size() < kFramesAhead) {
      paused_ = false;
      lock.unlock();
      StartRead(&request_);
      lock.lock();
    }
    Pump(lock);
  }

  void OnCancel() override {}  // the link drops what it has not sent; the rest comes back
  void OnDone() override { delete this; }

 private:
  struct Slot {
    bool ready = false;
    bool failed = false;
    grpc::Status error;
    VerifyBatchResponse frame;
  };

  // Writes the next answered frame, or finishes the stream when nothing is left to do. Called
  // with the lock held; may release it.
  void Pump(std::unique_lock<std::mutex>& lock) {
    if (finished_ || writing_) return;
    if (!failed_ && !slots_.empty() && slots_.front()->ready && slots_.front()->failed) {
      failed_ = true;  // a frame refused whole ends the stream after the frames before it
      error_ = slots_.front()->error;
    }
    if (failed_) {
      slots_.clear();
      if (outstanding_ > 0) return;  // what the engine holds comes back first
      Done(lock, error_);
      return;
    }
    if (!slots_.empty() && slots_.front()->ready) {
      writing_ = true;
      const VerifyBatchResponse* frame = &slots_.front()->frame;
      lock.unlock();
      StartWrite(frame);
      return;
    }
    if (!reading_ && slots_.empty() && outstanding_ == 0) Done(lock, grpc::Status::OK);
  }

  void Done(std::unique_lock<std::mutex>& lock, grpc::Status status) {
    finished_ = true;
    lock.unlock();
    Finish(std::move(status));
  }

  VerifyService& service_;
  grpc::CallbackServerContext* ctx_;
  std::shared_ptr<const Caller> caller_;
  VerifyBatchRequest request_;
  std::mutex mu_;
  std::deque<std::shared_ptr<Slot>> slots_;
  size_t outstanding_ = 0;
  bool reading_ = true;
  bool writing_ = false;
  bool paused_ = false;
  bool failed_ = false;
  bool finished_ = false;
  bool read_any_ = false;  // a frame came (the engine or admission answered it)
  bool probed_ = false;
  grpc::Status error_;
};

}  // namespace

grpc::ServerBidiReactor<VerifyBatchRequest, VerifyBatchResponse>* VerifyService::VerifyStream(
    grpc::CallbackServerContext* ctx) {
  return new StreamReactor(*this, ctx);
}

}  // namespace authd_front
