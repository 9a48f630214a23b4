#include "verify_stream.h"

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <mutex>
#include <utility>

#include "status.h"
#include "verify.h"

namespace authd_front {
namespace {

constexpr const char* kVerifyStream = "/authd.v1.OtpService/VerifyStream";
constexpr size_t kFramesAhead = 64;  // frames read before the oldest is answered
constexpr int kAhead = 4;  // streams requested ahead, per queue

using authd::v1::LinkAnswer;
using authd::v1::VerifyBatchRequest;
using authd::v1::VerifyBatchResponse;
using Serialization = grpc::SerializationTraits<grpc::protobuf::MessageLite>;

class StreamCall final {
 public:
  StreamCall(VerifyService& service, grpc::ServerCompletionQueue* cq)
      : service_(service), cq_(cq), stream_(&ctx_) {
    ctx_.AsyncNotifyWhenDone(&ended_);
    service_.RequestVerifyStream(&ctx_, &stream_, cq_, cq_, &taken_);
  }

 private:
  using Step = QueueStep<StreamCall>;
  using Lock = std::unique_lock<std::mutex>;

  struct Slot {
    bool ready = false;
    bool failed = false;
    grpc::Status error;
    VerifyBatchResponse frame;
  };

  void Taken(bool ok) {
    if (!ok) {  // the server shuts down: this stream never started (nor will its end come)
      delete this;
      return;
    }
    new StreamCall(service_, cq_);
    caller_ = service_.callers().Of(ctx_);
    Lock lock(mu_);
    tags_ = 1;  // the end's
    Read();
  }

  // On the queue's thread, the lock held.
  void Read() {
    ++tags_;
    reading_ = true;
    stream_.Read(&in_, &read_);
  }

  void ReadDone(bool ok) {
    Lock lock(mu_);
    --tags_;
    reading_ = false;
    VerifyBatchRequest request;
    if (ok && !failed_ && !Serialization::Deserialize(&in_, &request).ok()) ok = false;
    if (!ok || failed_ || finished_) {
      reads_over_ = true;
      if (!read_any_ && !failed_ && !finished_ && !probed_ && !caller_->verified.load()) {
        Probe(lock);
      }
      Pump();
      Leave(lock);
      return;
    }
    read_any_ = true;
    auto slot = std::make_shared<Slot>();
    slots_.push_back(slot);
    size_t items = static_cast<size_t>(request.requests_size());
    grpc::Status busy;
    if (!service_.Admit(kVerifyStream, items, &busy)) {
      google::rpc::Status why = ToRpc(busy);
      for (const auto& one : request.requests()) {
        auto* response = slot->frame.add_responses();
        response->set_request_id(one.request_id());
        *response->mutable_error() = why;
      }
      slot->ready = true;
    } else {
      ++outstanding_;
      auto pending = service_.Prepare(&ctx_, *caller_, kVerifyStream, items);
      pending->call.mutable_requests()->Swap(request.mutable_requests());
      pending->done = [this, slot, items](const grpc::Status* refused, LinkAnswer* answer) {
        service_.Leave(items, true);
        Answered(slot, items, refused, answer);
      };
      Submit(lock, std::move(pending));
    }
    if (slots_.size() < kFramesAhead && !failed_) {
      Read();
    } else {
      paused_ = !failed_;
    }
    Pump();
    Leave(lock);
  }

  // On the link's thread (or the queue's, for what the link answers at once).
  void Answered(const std::shared_ptr<Slot>& slot, size_t items, const grpc::Status* refused,
                LinkAnswer* answer) {
    Lock lock(mu_);
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
    Pump();
  }  // the last use of this call on this thread: a tag of it is out if it is not over

  // A stream that ends before any frame came still gets the engine's verdict on its caller (a
  // call of no verifications), as the daemon's own server would give it.
  void Probe(Lock& lock) {
    probed_ = true;
    ++outstanding_;
    auto probe = service_.Prepare(&ctx_, *caller_, kVerifyStream, 0);
    probe->done = [this](const grpc::Status* refused, LinkAnswer* answer) {
      Lock lock(mu_);
      --outstanding_;
      if (refused != nullptr || answer->has_error()) {
        error_ = refused != nullptr ? *refused : ToGrpc(answer->error());
        failed_ = true;
      }
      Pump();
    };
    Submit(lock, std::move(probe));
  }

  // On the queue's thread: the link may answer at once, taking the lock.
  void Submit(Lock& lock, std::unique_ptr<Pending> pending) {
    lock.unlock();
    service_.link().Submit(std::move(pending));
    lock.lock();
  }

  void WriteDone(bool ok) {
    Lock lock(mu_);
    --tags_;
    writing_ = false;
    if (!slots_.empty()) slots_.pop_front();
    if (!ok) GoneAway();
    if (paused_ && !failed_ && slots_.size() < kFramesAhead) {
      paused_ = false;
      Read();
    }
    Pump();
    Leave(lock);
  }

  void Ended(bool) {
    Lock lock(mu_);
    --tags_;
    ended_back_ = true;
    if (!finished_ && ctx_.IsCancelled()) GoneAway();
    Pump();
    Leave(lock);
  }

  void FinishDone(bool) {
    Lock lock(mu_);
    --tags_;
    Leave(lock);
  }

  // The client went away (a write failed, or the stream ended cancelled): nothing more is read
  // or written; the stream is finished once what the engine holds came back (the link drops
  // what it has not sent) and its end was seen (the caller is counted as gone, not answered).
  void GoneAway() {
    gone_ = true;
    paused_ = false;
    if (!failed_) {
      failed_ = true;
      error_ = grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
    }
  }

  // Writes the next answered frame, or finishes the stream when nothing is left to do. The
  // lock held; on the queue's thread or the link's.
  void Pump() {
    if (finished_ || writing_) return;
    if (!failed_ && !slots_.empty() && slots_.front()->ready && slots_.front()->failed) {
      failed_ = true;  // a frame refused whole ends the stream after the frames before it
      error_ = slots_.front()->error;
    }
    if (failed_) {
      slots_.clear();
      paused_ = false;
      if (outstanding_ > 0) return;  // what the engine holds comes back first
      if (gone_ && !ended_back_) return;  // its end comes first
      Finish(error_);
      return;
    }
    if (!slots_.empty() && slots_.front()->ready) {
      writing_ = true;
      ++tags_;
      bool own = false;
      out_.Clear();  // the previous frame's
      grpc::Status made = Serialization::Serialize(slots_.front()->frame, &out_, &own);
      if (!made.ok()) {
        --tags_;
        writing_ = false;
        slots_.front()->failed = true;
        slots_.front()->error = made;
        Pump();
        return;
      }
      stream_.Write(out_, &written_);
      return;
    }
    if (reads_over_ && slots_.empty() && outstanding_ == 0) Finish(grpc::Status::OK);
  }

  void Finish(const grpc::Status& status) {
    finished_ = true;
    ++tags_;
    stream_.Finish(status, &finished_tag_);
  }

  // Deletes the call once it is finished and every tag of it came back. The lock held, on the
  // queue's thread (the only one that deletes).
  void Leave(Lock& lock) {
    if (!finished_ || tags_ > 0) return;
    lock.unlock();
    delete this;
  }

  VerifyService& service_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext ctx_;
  grpc::ServerAsyncReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer> stream_;
  std::shared_ptr<const Caller> caller_;
  grpc::ByteBuffer in_;
  grpc::ByteBuffer out_;
  Step taken_{this, &StreamCall::Taken};
  Step read_{this, &StreamCall::ReadDone};
  Step written_{this, &StreamCall::WriteDone};
  Step finished_tag_{this, &StreamCall::FinishDone};
  Step ended_{this, &StreamCall::Ended};
  std::mutex mu_;
  std::deque<std::shared_ptr<Slot>> slots_;
  size_t outstanding_ = 0;  // calls (frames, the probe) the link holds
  int tags_ = 0;  // tags given to gRPC, not yet back
  bool reading_ = false;
  bool reads_over_ = false;  // the client half-closed (or a frame did not parse)
  bool writing_ = false;
  bool paused_ = false;  // kFramesAhead frames unanswered: reads wait for a write
  bool failed_ = false;
  bool gone_ = false;  // the client went away
  bool ended_back_ = false;
  bool finished_ = false;
  bool read_any_ = false;  // a frame came (the engine or admission answered it)
  bool probed_ = false;
  grpc::Status error_;
};

}  // namespace

void ServeStream(VerifyService& service, const ServerQueues& queues) {
  for (grpc::ServerCompletionQueue* cq : queues.all()) {
    for (int i = 0; i < kAhead; ++i) new StreamCall(service, cq);
  }
}

}  // namespace authd_front
