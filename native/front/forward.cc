#include "forward.h"

#include <atomic>
#include <mutex>

namespace authd_front {
namespace {

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

class Call;

struct Down final : grpc::ServerGenericBidiReactor {
  Call* call;
  explicit Down(Call* c) : call(c) {}
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;
};

struct Up final : grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
  Call* call;
  explicit Up(Call* c) : call(c) {}
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;
};

// One forwarded call: `down` faces the client, `up` the daemon. Each direction carries one
// message at a time. `up` is held (AddHold) while this side may still start operations on it:
// the write hold until the client's messages end (or the daemon stops taking them, or it has
// finished), the read hold until the daemon's messages end (or the client stops taking them).
// Once released, no operation is started on `up` again (its call may be gone).
class Call {
 public:
  Call(Forwarder& forwarder, grpc::GenericCallbackServerContext* ctx)
      : forwarder_(forwarder), ctx_(ctx), down_(this), up_(this) {}

  grpc::ServerGenericBidiReactor* Start() {
    auto caller = forwarder_.callers().Of(*ctx_);
    for (const auto& [key, value] : ctx_->client_metadata()) {
      std::string k(key.data(), key.size());
      if (Passed(k)) up_ctx_.AddMetadata(k, std::string(value.data(), value.size()));
    }
    up_ctx_.AddMetadata("x-authd-institution-bin", caller->names.institution);
    up_ctx_.AddMetadata("x-authd-role-bin", caller->names.role);
    up_ctx_.AddMetadata("x-authd-subject-bin", caller->names.subject);
    up_ctx_.AddMetadata("x-authd-front-token", forwarder_.token());
    up_ctx_.set_deadline(ctx_->deadline());
    forwarder_.stub().PrepareBidiStreamingCall(&up_ctx_, ctx_->method(), {}, &up_);
    up_.AddMultipleHolds(2);  // write side, read side
    up_.StartRead(&from_daemon_);
    up_.StartCall();
    down_.StartRead(&from_client_);
    return &down_;
  }

  // client -> daemon
  void DownRead(bool ok) {
    std::unique_lock<std::mutex> lock(mu_);
    if (write_hold_ && ok) {
      up_.StartWrite(&from_client_);
      return;
    }
    if (write_hold_) {
      up_.StartWritesDone();
      ReleaseWrite(lock);
    }
  }
  void UpWritten(bool ok) {
    std::unique_lock<std::mutex> lock(mu_);
    if (ok && !finished_) {
      lock.unlock();
      down_.StartRead(&from_client_);
      return;
    }
    ReleaseWrite(lock);
  }
  // daemon -> client
  void UpRead(bool ok) {
    std::unique_lock<std::mutex> lock(mu_);
    if (ok && !finished_) {
      down_writing_ = true;
      lock.unlock();
      down_.StartWrite(&from_daemon_);
      return;
    }
    ReleaseWrite(lock);  // the daemon has finished: nothing more goes up
    ReleaseRead(lock);
  }
  void DownWritten(bool ok) {
    std::unique_lock<std::mutex> lock(mu_);
    down_writing_ = false;
    if (ok && read_hold_) {
      up_.StartRead(&from_daemon_);
      return;
    }
    if (!ok) up_ctx_.TryCancel();
    ReleaseRead(lock);
    MaybeFinish(lock);
  }
  void UpDone(const grpc::Status& status) {
    std::unique_lock<std::mutex> lock(mu_);
    up_done_ = true;
    status_ = status;
    MaybeFinish(lock);
    lock.unlock();
    Unref();
  }
  void Cancelled() { up_ctx_.TryCancel(); }
  void Unref() {
    if (refs_.fetch_sub(1) == 1) delete this;
  }

 private:
  void ReleaseWrite(std::unique_lock<std::mutex>&) {
    if (write_hold_) {
      write_hold_ = false;
      up_.RemoveHold();
    }
  }
  void ReleaseRead(std::unique_lock<std::mutex>&) {
    if (read_hold_) {
      read_hold_ = false;
      up_.RemoveHold();
    }
  }
  void MaybeFinish(std::unique_lock<std::mutex>& lock) {
    if (!up_done_ || down_writing_ || finished_) return;
    finished_ = true;
    for (const auto& [key, value] : up_ctx_.GetServerTrailingMetadata()) {
      std::string k(key.data(), key.size());
      if (k.rfind("grpc-", 0) != 0) {
        ctx_->AddTrailingMetadata(k, std::string(value.data(), value.size()));
      }
    }
    grpc::Status status(status_.error_code(), status_.error_message(), status_.error_details());
    lock.unlock();
    down_.Finish(status);
    lock.lock();
  }

  Forwarder& forwarder_;
  grpc::GenericCallbackServerContext* ctx_;
  Down down_;
  Up up_;
  grpc::ClientContext up_ctx_;
  grpc::ByteBuffer from_client_;
  grpc::ByteBuffer from_daemon_;
  std::mutex mu_;
  bool write_hold_ = true;
  bool read_hold_ = true;
  bool down_writing_ = false;
  bool up_done_ = false;
  bool finished_ = false;
  grpc::Status status_;
  std::atomic<int> refs_{2};  // Down::OnDone and Up::OnDone
};

void Down::OnReadDone(bool ok) { call->DownRead(ok); }
void Down::OnWriteDone(bool ok) { call->DownWritten(ok); }
void Down::OnCancel() { call->Cancelled(); }
void Down::OnDone() { call->Unref(); }
void Up::OnReadDone(bool ok) { call->UpRead(ok); }
void Up::OnWriteDone(bool ok) { call->UpWritten(ok); }
void Up::OnDone(const grpc::Status& status) { call->UpDone(status); }

}  // namespace

Forwarder::Forwarder(std::shared_ptr<grpc::Channel> daemon, Callers& callers, std::string token)
    : stub_(std::move(daemon)), callers_(callers), token_(std::move(token)) {}

grpc::ServerGenericBidiReactor* Forwarder::CreateReactor(
    grpc::GenericCallbackServerContext* ctx) {
  return (new Call(*this, ctx))->Start();
}

}  // namespace authd_front
