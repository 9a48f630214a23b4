#include "forward.h"

#include <utility>

namespace authd_front {
namespace {

constexpr int kAhead = 16;  // calls requested ahead, per queue

// The client's metadata goes on to the daemon except the transport's own and what names the
// caller: the caller is this front end's to say (below), never the client's. The teller a branch
// node names (x-authd-operator-bin) and an idempotency key (x-authd-idempotency-key) go on.
bool Passed(const std::string& key) {
  static const char* const kCaller[] = {"x-authd-institution", "x-authd-role",
                                        "x-authd-subject", "x-authd-front-token"};
  for (const char* prefix : kCaller) {
    if (key.rfind(prefix, 0) == 0) return false;
  }
  return key.rfind("grpc-", 0) != 0 && key != "user-agent" && key != "te" &&
         key != "content-type";
}

// The daemon's metadata comes back but the transport's own.
bool PassedBack(const std::string& key) {
  return key.rfind("grpc-", 0) != 0 && key != "content-type";
}

}  // namespace

// One forwarded call: requested on a queue, then, once a client's call is taken, the call
// toward the daemon started on the same queue and the messages pumped both ways, one read and
// one write outstanding in each direction (client -> daemon: the client's read, then its write
// up; daemon -> client: the daemon's read, then its write down). The client's end of its
// messages is the daemon's half-close; the daemon's end is its status (with its initial and
// trailing metadata) sent to the client. The client's cancellation (or its deadline) cancels
// the daemon's call, and a client that can no longer be written to does too.
//
// Every step runs on the queue's one thread, so the call needs no lock; it counts the tags it
// has outstanding and is deleted once the last came back (the end's, AsyncNotifyWhenDone, is
// outstanding until the client's call is over, and the daemon's direction has one
// outstanding until the client's Finish came back). Once the daemon's call finished nothing
// more is started on it, and once the client's Finish was started nothing more on that.
class ForwardedCall final {
 public:
  ForwardedCall(Forwarder& forwarder, grpc::ServerCompletionQueue* cq)
      : forwarder_(forwarder), cq_(cq), stream_(&ctx_) {
    ctx_.AsyncNotifyWhenDone(&ended_);
    forwarder_.service()->RequestCall(&ctx_, &stream_, cq_, cq_, &taken_);
  }

 private:
  using Step = QueueStep<ForwardedCall>;

  void Taken(bool ok) {
    if (!ok) {  // the server shuts down: this call never started (nor will its end come)
      delete this;
      return;
    }
    new ForwardedCall(forwarder_, cq_);
    ++pending_;  // the end's tag
    auto caller = forwarder_.callers().Of(ctx_);
    for (const auto& [key, value] : ctx_.client_metadata()) {
      std::string k(key.data(), key.size());
      if (Passed(k)) up_ctx_.AddMetadata(k, std::string(value.data(), value.size()));
    }
    up_ctx_.AddMetadata("x-authd-institution-bin", caller->names.institution);
    up_ctx_.AddMetadata("x-authd-role-bin", caller->names.role);
    up_ctx_.AddMetadata("x-authd-subject-bin", caller->names.subject);
    up_ctx_.AddMetadata("x-authd-front-token", forwarder_.token());
    up_ctx_.set_deadline(ctx_.deadline());
    up_ = forwarder_.stub().PrepareCall(&up_ctx_, ctx_.method(), cq_);
    up_->StartCall(Tag(up_started_));
    up_->Read(&from_daemon_, Tag(up_read_));
    stream_.Read(&from_client_, Tag(down_read_));
  }

  // client -> daemon. The first message may come before the daemon's call started (its
  // initial metadata sent): it waits for it, as a write may not start before.
  void UpStarted(bool ok) {
    up_started_now_ = true;
    if (!ok) up_open_ = false;
    if (holding_) {
      holding_ = false;
      Up(held_ok_);
    }
  }
  void DownRead(bool ok) {
    if (!up_started_now_) {
      holding_ = true;
      held_ok_ = ok;
      return;
    }
    Up(ok);
  }
  void Up(bool read) {
    if (!up_open_) return;
    if (read) {
      up_->Write(from_client_, Tag(up_written_));
      return;
    }
    up_open_ = false;  // the client's messages ended (or its call did): the daemon's too
    up_->WritesDone(Tag(up_writes_done_));
  }
  void UpWritten(bool ok) {
    if (ok && up_open_) {
      stream_.Read(&from_client_, Tag(down_read_));
      return;
    }
    up_open_ = false;  // the daemon's call is over
  }
  void UpWritesDone(bool) {}

  // daemon -> client
  void UpRead(bool ok) {
    if (ok) {
      SendInitialMetadata();
      stream_.Write(from_daemon_, Tag(down_written_));
      return;
    }
    up_->Finish(&status_, Tag(up_finished_));
  }
  void DownWritten(bool ok) {
    if (ok) {
      up_->Read(&from_daemon_, Tag(up_read_));
      return;
    }
    up_ctx_.TryCancel();  // the client is gone: so is the daemon's call
    up_->Finish(&status_, Tag(up_finished_));
  }
  void UpFinished(bool) {
    up_open_ = false;
    SendInitialMetadata();
    for (const auto& [key, value] : up_ctx_.GetServerTrailingMetadata()) {
      std::string k(key.data(), key.size());
      if (PassedBack(k)) ctx_.AddTrailingMetadata(k, std::string(value.data(), value.size()));
    }
    stream_.Finish(
        grpc::Status(status_.error_code(), status_.error_message(), status_.error_details()),
        Tag(down_finished_));
  }
  void DownFinished(bool) {}

  // The client's call is over: answered, or cancelled (by the client, its deadline or the
  // server's shutdown), which cancels the daemon's.
  void Ended(bool) {
    if (ctx_.IsCancelled()) up_ctx_.TryCancel();
  }

  // Before the first message or the status goes to the client (the daemon's initial metadata
  // has come with its first message or its status by then).
  void SendInitialMetadata() {
    if (initial_sent_) return;
    initial_sent_ = true;
    for (const auto& [key, value] : up_ctx_.GetServerInitialMetadata()) {
      std::string k(key.data(), key.size());
      if (PassedBack(k)) ctx_.AddInitialMetadata(k, std::string(value.data(), value.size()));
    }
  }

  void* Tag(Step& step) {
    ++pending_;
    return &step;
  }
  template <void (ForwardedCall::*F)(bool)>
  void Counted(bool ok) {
    --pending_;
    (this->*F)(ok);
    if (pending_ == 0) delete this;
  }

  // Known to the forwarder from first to last (its Drain): made before, and gone after,
  // every other member.
  struct Live final {
    Forwarder& forwarder;
    explicit Live(Forwarder& f) : forwarder(f) { forwarder.Made(); }
    ~Live() { forwarder.Gone(); }
  };

  Forwarder& forwarder_;
  Live live_{forwarder_};
  grpc::ServerCompletionQueue* const cq_;
  grpc::GenericServerContext ctx_;
  grpc::GenericServerAsyncReaderWriter stream_;
  grpc::ClientContext up_ctx_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> up_;  // after up_ctx_: goes first
  grpc::ByteBuffer from_client_;
  grpc::ByteBuffer from_daemon_;
  grpc::Status status_;
  int pending_ = 0;  // tags outstanding
  bool up_started_now_ = false;
  bool up_open_ = true;  // writes may still go up
  bool holding_ = false;  // a client's read done before the daemon's call started
  bool held_ok_ = false;
  bool initial_sent_ = false;
  Step taken_{this, &ForwardedCall::Taken};
  Step ended_{this, &ForwardedCall::Counted<&ForwardedCall::Ended>};
  Step up_started_{this, &ForwardedCall::Counted<&ForwardedCall::UpStarted>};
  Step down_read_{this, &ForwardedCall::Counted<&ForwardedCall::DownRead>};
  Step up_written_{this, &ForwardedCall::Counted<&ForwardedCall::UpWritten>};
  Step up_writes_done_{this, &ForwardedCall::Counted<&ForwardedCall::UpWritesDone>};
  Step up_read_{this, &ForwardedCall::Counted<&ForwardedCall::UpRead>};
  Step down_written_{this, &ForwardedCall::Counted<&ForwardedCall::DownWritten>};
  Step up_finished_{this, &ForwardedCall::Counted<&ForwardedCall::UpFinished>};
  Step down_finished_{this, &ForwardedCall::Counted<&ForwardedCall::DownFinished>};
};

Forwarder::Forwarder(std::shared_ptr<grpc::Channel> daemon, Callers& callers, std::string token)
    : stub_(std::move(daemon)), callers_(callers), token_(std::move(token)) {}

void Forwarder::Made() {
  std::lock_guard<std::mutex> lock(mu_);
  ++calls_;
}

void Forwarder::Gone() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--calls_ == 0) none_.notify_all();
}

void Forwarder::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  none_.wait(lock, [this] { return calls_ == 0; });
}

void Forwarder::Start(const ServerQueues& queues) {
  for (grpc::ServerCompletionQueue* cq : queues.all()) {
    for (int i = 0; i < kAhead; ++i) new ForwardedCall(*this, cq);
  }
}

}  // namespace authd_front
