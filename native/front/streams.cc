#include "streams.h"

#include <grpcpp/impl/rpc_service_method.h>

#include <algorithm>
#include <deque>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "calls.h"
#include "status.h"

namespace authd_front {
namespace {

// Requests of one stream read from the client ahead of their answers (as the daemon's own
// SignStream reads ahead).
constexpr int kStreamWindow = 64;
constexpr int kAhead = 4;  // calls requested ahead, per method and queue

}  // namespace

// One streaming call, taken from its queue: opened on the link at once; each request read is
// sent as the stream's next part (up to kStreamWindow ahead of the answers), each response
// the daemon answers is written in order, and the stream's end (the daemon's, or the front
// end's own when the link went away) finishes it once its responses are written. It ends
// only once the link answered its end: a cancelled stream is told to the daemon, which
// answers it.
//
// A stream of a method a lease lends (StreamLender, lent_calls.h: SignStream while a token
// login is lent, TransmitStream while a card is) starts here instead: each request is served
// here (the lender's Serve, as its unary call is: a token's on the link's signer threads, up
// to the lender's Concurrent of the stream's requests read and not yet answered; a card's
// one at a time on the thread that read it) and answered in order, until the first request
// that is not served here (another handle, reader or caller, the lease recalled, an unknown
// key, a bad request, several APDUs, a security-state APDU, a PKCS#11 or PC/SC error). Then
// nothing more is read or served; once the requests being served before it have finished,
// those before it that were served are answered, and the stream is opened on the link with
// the earliest request not answered: it and every later one (a signature made here after it
// is dropped, neither answered nor counted) are the daemon's, which answers them in order
// and ends the stream (its first error). The daemon thus never sees a stream whose requests
// were all served here; one it sees starts at the request where the front end stopped, so
// no answer overtakes another and every error is the daemon's own. A request is counted as
// served (the lender's Answered) only as it is answered; a signature not at all once its
// lease ended (then it and the rest go to the daemon too), while an APDU the card carried
// out is answered here in any case (told with its lease's return).
//
// A stream open on the link may be lent a card too (by one of its own answers, or by a
// unary call's meanwhile): a request read once every request before it was answered, while
// the lender lends the stream's method (LendsStream, `opened`), starts a run served here as
// above; where the run ends, the requests are handed to the stream on the link (not opened
// again), and its half-close too (the daemon ends the stream).
//
// Reads are started from the queue's thread or where a lent run goes on (a signer thread),
// writes from the link's thread (or wherever a lent request was answered), one read and one
// write at a time; the finish once nothing of the stream runs any more (FinishNow), and the
// object is deleted on its queue's thread once the finish's, the end's and every read's and
// write's tag came back (Leave).
class LinkedStream final {
 public:
  LinkedStream(LinkedStreamService& service, int index, grpc::ServerCompletionQueue* cq)
      : service_(service), index_(index), cq_(cq), link_(*service.link_), stream_(&ctx_) {
    ctx_.AsyncNotifyWhenDone(&ended_tag_);
    service_.Request(index_, &ctx_, &stream_, cq_, &taken_);
  }

 private:
  using Step = QueueStep<LinkedStream>;

  const std::string& method() const { return service_.names_[index_]; }

  void Taken(bool ok) {
    if (!ok) {  // the server shuts down: this call never started (nor will its end come)
      delete this;
      return;
    }
    new LinkedStream(service_, index_, cq_);
    if (StreamLender* lender = link_.LendsStream(method(), false)) {
      LinkedPending described;
      Describe(link_.callers(), &ctx_, method(), &described);
      lent_call_ = std::move(described.call);
      {
        std::lock_guard<std::mutex> lock(mu_);
        Lend(lender);
        reading_ = true;
      }
      StartRead();
      return;
    }
    Open();
    bool read;
    {
      std::lock_guard<std::mutex> lock(mu_);
      read = !ended_;
      reading_ = read;
    }
    if (read) StartRead();
  }

  // The tags: each runs on this call's queue's thread, one at a time, and may be the last
  // (Leave).
  void ReadDone(bool ok) {
    OnReadDone(ok);
    Leave();
  }
  void WriteDone(bool ok) {
    OnWriteDone(ok);
    Leave();
  }
  void Finished(bool) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      finish_back_ = true;
    }
    Leave();
  }
  // The call ended: answered (Finish), or cancelled by the client, its deadline or the
  // server's shutdown (only then is IsCancelled true; valid from this tag on).
  void Ended(bool) {
    if (ctx_.IsCancelled()) OnCancel();
    {
      std::lock_guard<std::mutex> lock(mu_);
      end_back_ = true;
    }
    Leave();
  }
  // Deleted once finished and every tag came back: nothing else touches it any more (the
  // link answered its end, no signer thread, no answering, no hand-over: FinishNow).
  void Leave() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!finish_back_ || !end_back_ || reading_ || writing_) return;
    }
    delete this;
  }

  void StartRead() { stream_.Read(&request_, &read_); }
  void StartWrite(grpc::ByteBuffer* buffer) { stream_.Write(*buffer, &written_); }
  void Finish(const grpc::Status& status) { stream_.Finish(status, &finished_tag_); }

  void OnReadDone(bool ok) {
    std::string bytes;
    bool more = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (ended_ || !ok) {
        reading_ = false;
        // A client that went away did not half-close: OnCancel tells the daemon.
        if (ended_ || ctx_.IsCancelled()) return;
        half_closed_ = true;
      } else {
        bytes = Bytes(request_);
        request_.Clear();
      }
      // Every request before this one answered by the daemon, which lent a card meanwhile
      // (with one of those answers, or before): this one and the next are served here.
      if (ok && !lent_ && outstanding_ == 0 && id_ != 0) {
        if (StreamLender* lender = link_.LendsStream(method(), true)) Lend(lender);
      }
      if (lent_) {  // served here, or waiting for the stream to be handed over
        reading_ = false;
        LentRequest* here = ok ? Take(std::move(bytes)) : nullptr;
        Settle(lock);
        if (here != nullptr) ServeHere(here);  // on this thread (a card's: one at a time)
        return;
      }
      if (ok) {
        ++outstanding_;
        more = outstanding_ < kStreamWindow;
        reading_ = more;
      }
    }
    if (!ok) {  // the client sent its last request (or went away: OnCancel says so)
      link_.SubmitPart(id_, authd::v1::LinkedCall::STREAM_HALF_CLOSE, std::string());
      return;
    }
    link_.SubmitPart(id_, authd::v1::LinkedCall::STREAM_ITEM, std::move(bytes));
    if (more) StartRead();
  }

  void OnWriteDone(bool ok) {
    std::unique_lock<std::mutex> lock(mu_);
    const bool next = !writes_.empty();
    if (next) {
      writing_buffer_ = std::move(writes_.front());
      writes_.pop_front();
    } else {
      writing_ = false;
    }
    if (lent_) {  // the next request may be read now (a reaction: this lives on meanwhile)
      if (next) {
        lock.unlock();
        StartWrite(&writing_buffer_);
        lock.lock();
      }
      Settle(lock);
      return;
    }
    const bool finish = !next && FinishNow();
    grpc::Status status = final_;
    lock.unlock();
    if (next) StartWrite(&writing_buffer_);
    if (finish) Finish(status);
  }

  void OnCancel() {
    bool here;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (ended_ || cancel_sent_) return;
      here = lent_ && !handing_ && id_ == 0;  // not open on the link
      if (!here && id_ == 0) {  // being opened on the link: Open sends it
        cancel_wanted_ = true;
        return;
      }
      cancel_sent_ = !here;
    }
    if (here) {  // nothing of it is on the link; its answers in flight are dropped
      End(grpc::Status::CANCELLED);
      return;
    }
    link_.SubmitPart(id_, authd::v1::LinkedCall::STREAM_CANCEL, std::string());
  }

 private:
  // A request of a lent stream read and not answered yet, in order.
  struct LentRequest {
    enum class State { kSigning, kSigned, kDaemons };
    State state = State::kSigning;
    std::string bytes;
    std::string response;  // kSigned: its answer (a TokenSignResponse, a TransmitResponse)
    StreamLender::Unanswered served;  // kSigned: counted once answered
  };

  // With mu_ held: the stream's requests are served by `lender` from the next one on (lent_).
  void Lend(StreamLender* lender) {
    lender_ = lender;
    lent_in_flight_ = std::max<size_t>(1, lender->Concurrent());
    lent_ = true;
    refused_ = false;
    signed_here_ = false;
  }

  // Opens the stream on the link: the daemon answers its requests from now on.
  void Open() {
    auto pending = std::make_unique<LinkedPending>();
    pending->call.set_part(authd::v1::LinkedCall::STREAM_OPEN);
    Describe(link_.callers(), &ctx_, method(), pending.get());
    pending->item = [this](authd::v1::LinkedAnswer* answer) { Item(answer); };
    pending->done = [this](const grpc::Status* refused, authd::v1::LinkedAnswer* answer) {
      End(refused != nullptr ? *refused
          : answer->has_error() ? ToGrpc(answer->error()) : grpc::Status::OK);
    };
    if (lent_call_.method().empty()) {  // the stream described, for a card lent to it later
      lent_call_ = pending->call;
      lent_call_.clear_part();
    }
    uint64_t id = link_.Submit(std::move(pending));
    bool cancel;
    {
      std::lock_guard<std::mutex> lock(mu_);
      id_ = id;
      cancel = cancel_wanted_ && id != 0 && !ended_ && !cancel_sent_;
      cancel_sent_ = cancel_sent_ || cancel;
    }
    if (cancel) link_.SubmitPart(id_, authd::v1::LinkedCall::STREAM_CANCEL, std::string());
  }

  // With mu_ held: a request read while lent_. Served on a signer thread (a lender that
  // serves several at once), or returned to be served on this thread once mu_ is let go,
  // unless a request before it was not served here (then it waits for the hand-over: the
  // daemon's).
  LentRequest* Take(std::string bytes) {
    lent_requests_.emplace_back();
    LentRequest* request = &lent_requests_.back();  // a deque's elements stay where they are
    request->bytes = std::move(bytes);
    if (refused_ || handing_) {
      request->state = LentRequest::State::kDaemons;
      return nullptr;
    }
    ++signing_;
    ++workers_in_;
    if (lender_->Concurrent() == 0) return request;
    link_.LentSigning(signing_);
    link_.signers().Run([this, request] { ServeHere(request); });
    return nullptr;
  }

  // On a signer thread, or the one that read it: serves `request` on the lease (its bytes
  // are not touched by others meanwhile).
  void ServeHere(LentRequest* request) {
    authd::v1::LinkedCall call = lent_call_;  // not changed once lent_ was set
    call.set_request(request->bytes);
    std::string response;
    StreamLender::Unanswered served;
    const bool here = lender_->Serve(call, &response, &served);
    std::unique_lock<std::mutex> lock(mu_);
    --signing_;
    if (here) {
      request->state = LentRequest::State::kSigned;
      request->response = std::move(response);
      request->served = std::move(served);
    } else {
      request->state = LentRequest::State::kDaemons;
      refused_ = true;  // nothing more is read or signed here
    }
    Settle(lock);
    lock.lock();
    --workers_in_;
    const bool finish = FinishNow();
    grpc::Status status = final_;
    lock.unlock();
    if (finish) Finish(status);
  }

  // With mu_ held (released on return): answers the signed requests at the front in order,
  // then reads the next request, hands the stream over, or ends it, as the lent requests now
  // stand. One thread at a time answers; another that comes meanwhile leaves it to that one,
  // which looks again before it stops.
  void Settle(std::unique_lock<std::mutex>& lock) {
    if (settling_) {
      lock.unlock();
      return;
    }
    settling_ = true;
    while (lent_ && !handing_ && !ended_ && !lent_requests_.empty() &&
           lent_requests_.front().state == LentRequest::State::kSigned) {
      LentRequest& front = lent_requests_.front();  // only the thread settling takes it
      lock.unlock();
      const bool answered = lender_->Answered(front.served);
      lock.lock();
      if (!answered) {  // its lease ended meanwhile: the daemon answers it and the rest
        front.state = LentRequest::State::kDaemons;
        refused_ = true;
        break;
      }
      signed_here_ = true;
      grpc::Slice slice(front.response);
      grpc::ByteBuffer buffer(&slice, 1);
      lent_requests_.pop_front();
      if (Queue(std::move(buffer))) {
        lock.unlock();
        StartWrite(&writing_buffer_);
        lock.lock();
      }
    }
    settling_ = false;
    bool read = false;
    bool hand_over = false;
    bool done = false;
    if (lent_ && !handing_ && !ended_) {
      if (refused_) {
        hand_over = signing_ == 0;  // once those signing before it are known
      } else if (half_closed_ && lent_requests_.empty()) {
        // Every request was answered here; none came: the daemon answers the empty stream
        // (it checks its caller); one open on the link is ended by the daemon.
        done = signed_here_ && id_ == 0;
        hand_over = !done;
      } else if (!reading_ && !half_closed_ && lent_requests_.size() < lent_in_flight_ &&
                 writes_.size() < static_cast<size_t>(kStreamWindow)) {
        reading_ = true;
        read = true;
      }
      handing_ = hand_over;
    }
    const bool finish = FinishNow();
    grpc::Status status = final_;
    lock.unlock();
    if (read) StartRead();
    if (hand_over) HandOver();
    if (done) End(grpc::Status::OK);
    if (finish) Finish(status);
  }

  // Opens the stream on the link and sends it the requests not answered here, in order
  // (one read meanwhile waits in lent_requests_ and goes after them); later ones go there as
  // they are read (lent_ false).
  void HandOver() {
    bool open;
    {
      std::lock_guard<std::mutex> lock(mu_);
      open = id_ == 0;  // else open already: the card was lent to it mid-stream
    }
    if (open) Open();
    std::unique_lock<std::mutex> lock(mu_);
    while (!ended_ && !lent_requests_.empty()) {
      std::vector<std::string> items;  // a signature made for one of these is dropped
      for (LentRequest& request : lent_requests_) items.push_back(std::move(request.bytes));
      lent_requests_.clear();
      outstanding_ += static_cast<int>(items.size());
      lock.unlock();
      for (std::string& item : items) {
        link_.SubmitPart(id_, authd::v1::LinkedCall::STREAM_ITEM, std::move(item));
      }
      lock.lock();
    }
    lent_ = false;
    handing_ = false;
    const bool half = half_closed_ && !ended_;
    const bool read = !ended_ && !reading_ && !half_closed_ && outstanding_ < kStreamWindow;
    reading_ = reading_ || read;
    const bool finish = FinishNow();
    grpc::Status status = final_;
    lock.unlock();
    if (half) link_.SubmitPart(id_, authd::v1::LinkedCall::STREAM_HALF_CLOSE, std::string());
    if (read) StartRead();
    if (finish) Finish(status);
  }

  // With mu_ held: `buffer` is the next to write; true when it is to be written now (moved
  // into writing_buffer_), false when it waits in writes_.
  bool Queue(grpc::ByteBuffer buffer) {
    if (writing_) {
      writes_.push_back(std::move(buffer));
      return false;
    }
    writing_ = true;
    writing_buffer_ = std::move(buffer);
    return true;
  }

  // With mu_ held: the stream ended and nothing of it runs any more (a write, a signer
  // thread, the answering or the hand-over): Finish is to be called now, once.
  bool FinishNow() {
    if (!ended_ || finished_ || writing_ || workers_in_ > 0 || settling_ || handing_) {
      return false;
    }
    finished_ = true;
    return true;
  }

  void Item(authd::v1::LinkedAnswer* answer) {
    grpc::Slice slice(answer->response());
    grpc::ByteBuffer buffer(&slice, 1);
    bool write = false;
    bool read = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (ended_) return;
      --outstanding_;
      write = Queue(std::move(buffer));
      if (!reading_ && !half_closed_ && outstanding_ < kStreamWindow) {
        reading_ = true;
        read = true;
      }
    }
    if (write) StartWrite(&writing_buffer_);
    if (read) StartRead();
  }

  void End(const grpc::Status& status) {
    bool finish = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (ended_) return;
      ended_ = true;
      final_ = status;
      finish = FinishNow();
    }
    if (finish) Finish(status);
  }

  LinkedStreamService& service_;
  const int index_;
  grpc::ServerCompletionQueue* const cq_;
  CallLink& link_;
  grpc::ServerContext ctx_;
  grpc::ServerAsyncReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer> stream_;
  grpc::ByteBuffer request_;
  Step taken_{this, &LinkedStream::Taken};
  Step read_{this, &LinkedStream::ReadDone};
  Step written_{this, &LinkedStream::WriteDone};
  Step finished_tag_{this, &LinkedStream::Finished};
  Step ended_tag_{this, &LinkedStream::Ended};
  bool finish_back_ = false;  // Finish's tag came back
  bool end_back_ = false;  // the end's (AsyncNotifyWhenDone)
  std::mutex mu_;
  uint64_t id_ = 0;
  bool lent_ = false;  // served here (lender_), not sent on the link (yet)
  StreamLender* lender_ = nullptr;  // while lent_: what serves its requests
  size_t lent_in_flight_ = 1;  // while lent_: of its requests, read and not answered at most
  authd::v1::LinkedCall lent_call_;  // the stream described (once lent_, or opened)
  std::deque<LentRequest> lent_requests_;  // while lent_: read, not answered, in order
  int signing_ = 0;  // of lent_requests_, being signed
  int workers_in_ = 0;  // signer threads that may still touch this
  bool refused_ = false;  // a lent request was not signed here: the rest is the daemon's
  bool settling_ = false;  // a thread answers the lent requests signed (Settle)
  bool handing_ = false;  // being opened on the link with the requests not answered here
  bool signed_here_ = false;  // a request was answered here (the lease's caller sent it)
  int outstanding_ = 0;  // requests sent whose responses have not come
  bool reading_ = false;  // a read is started
  bool half_closed_ = false;
  bool cancel_wanted_ = false;  // the client went away while the stream was being opened
  bool cancel_sent_ = false;
  bool ended_ = false;  // the link answered the stream's end (or it ended here)
  bool finished_ = false;
  bool writing_ = false;  // a write is started (writing_buffer_)
  grpc::ByteBuffer writing_buffer_;
  std::deque<grpc::ByteBuffer> writes_;  // responses waiting for the write before them
  grpc::Status final_;
};

LinkedStreamService::LinkedStreamService(CallLink* link) : link_(link) {
  if (link_ != nullptr) {
    for (const auto& name : link_->streams()) names_.push_back(name);
  }
  for (size_t i = 0; i < names_.size(); ++i) {
    AddMethod(new grpc::internal::RpcServiceMethod(
        names_[i].c_str(), grpc::internal::RpcMethod::BIDI_STREAMING, nullptr));
    MarkMethodRaw(static_cast<int>(i));
  }
}

void LinkedStreamService::Start(const ServerQueues& queues) {
  for (grpc::ServerCompletionQueue* cq : queues.all()) {
    for (size_t index = 0; index < names_.size(); ++index) {
      for (int i = 0; i < kAhead; ++i) new LinkedStream(*this, static_cast<int>(index), cq);
    }
  }
}

}  // namespace authd_front
