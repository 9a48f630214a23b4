#include "calls.h"

#include <openssl/crypto.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <iostream>
#include <utility>
#include <vector>

#include "framing.h"
#include "google/rpc/code.pb.h"
#include "google/rpc/error_details.pb.h"
#include "status.h"

namespace authd_front {
namespace {

constexpr uint32_t kMaxAnswers = 64u << 20;
constexpr size_t kFrameMax = 256;  // calls in one frame
// How long the thread that sent an idle call waits on the link for its answer itself before
// it leaves the reading to the receiver thread (a signature on a software token or an APDU to
// a fast card comes back well within it; a slow one does not hold gRPC's thread longer).
constexpr auto kReadHere = std::chrono::microseconds(2000);
constexpr const char* kOperator = "x-authd-operator-bin";
// Requests of one stream read from the client ahead of their answers (as the daemon's own
// SignStream reads ahead).
constexpr int kStreamWindow = 64;
// The link's signer threads, which sign lent streams' requests (as many as the instances
// of a lent module; a lender says how many of one stream's at once: StreamLender::Concurrent).
constexpr size_t kLentSigners = 4;

grpc::Status Make(google::rpc::Code code, const std::string& message, const char* reason) {
  google::rpc::Status status;
  status.set_code(code);
  status.set_message(message);
  google::rpc::ErrorInfo info;
  info.set_reason(reason);
  info.set_domain("authd");
  status.add_details()->PackFrom(info);
  return ToGrpc(status);
}

grpc::Status DaemonDown() {
  return Make(google::rpc::UNAVAILABLE, "the daemon is restarting; nothing was done; try again",
              "UNREACHABLE");
}

grpc::Status DaemonLost() {
  return Make(google::rpc::UNAVAILABLE,
              "the daemon stopped before it answered; the call may have been carried out",
              "UNREACHABLE");
}

grpc::Status Late() {
  return Make(google::rpc::DEADLINE_EXCEEDED,
              "the deadline passed before the call reached the daemon; nothing was done",
              "TIMED_OUT");
}

grpc::Status Left() {
  return Make(google::rpc::CANCELLED,
              "the caller gave up before the call reached the daemon; nothing was done",
              "CANCELLED");
}

// One streaming call: opened on the link at once; each request read is sent as the stream's
// next part (up to kStreamWindow ahead of the answers), each response the daemon answers is
// written in order, and the stream's end (the daemon's, or the front end's own when the
// link went away) finishes it once its responses are written. It ends only once the link
// answered its end: a cancelled stream is told to the daemon, which answers it.
//
// A stream of a method a lease lends (StreamLender, lent_calls.h: SignStream while a token
// login is lent, TransmitStream while a card is) starts here instead: each request is served
// here (the lender's Serve, as its unary call is: a token's on the link's signer
// threads, up to two of the stream's requests read and not yet answered; a card's one at a
// time on the thread that read it) and answered in order, until the first request that is
// not served here (another handle, reader or caller, the lease recalled, an unknown key, a
// bad request, several APDUs, a security-state APDU, a PKCS#11 or PC/SC error). Then nothing
// more is read or served; once the requests being served before it have finished, those
// before it that were served are answered, and the stream is opened on the link with the
// earliest request not answered: it and every later one (a signature made here after it is
// dropped, neither answered nor counted) are the daemon's, which answers them in order and
// ends the stream (its first error). The daemon thus never sees a stream whose requests were
// all served here; one it sees starts at the request where the front end stopped, so no
// answer overtakes another and every error is the daemon's own. A request is counted as
// served (the lender's Answered) only as it is answered; a signature not at all once its
// lease ended (then it and the rest go to the daemon too), while an APDU the card carried out
// is answered here in any case (told with its lease's return).
//
// A stream open on the link may be lent a card too (by one of its own answers, or by a
// unary call's meanwhile): a request read once every request before it was answered, while
// the lender lends the stream's method (LendsStream, `opened`), starts a run served here as
// above; where the run ends, the requests are handed to the stream on the link (not opened
// again), and its half-close too (the daemon ends the stream).
class LinkedStreamReactor final : public grpc::ServerGenericBidiReactor {
 public:
  LinkedStreamReactor(CallLink& link, grpc::GenericCallbackServerContext* ctx)
      : link_(link), ctx_(ctx) {
    if (StreamLender* lender = link_.LendsStream(ctx_->method(), false)) {
      LinkedPending described;
      Describe(link_.callers(), ctx_, ctx_->method(), &described);
      lent_call_ = std::move(described.call);
      Lend(lender);
      reading_ = true;
      StartRead(&request_);
      return;
    }
    Open();
    bool read;
    {
      std::lock_guard<std::mutex> lock(mu_);
      read = !ended_;
      reading_ = read;
    }
    if (read) StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    std::string bytes;
    bool more = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (ended_ || !ok) {
        reading_ = false;
        // A client that went away did not half-close: OnCancel tells the daemon.
        if (ended_ || ctx_->IsCancelled()) return;
        half_closed_ = true;
      } else {
        bytes = Bytes(request_);
        request_.Clear();
      }
      // Every request before this one answered by the daemon, which lent a card meanwhile
      // (with one of those answers, or before): this one and the next are served here.
      if (ok && !lent_ && outstanding_ == 0 && id_ != 0) {
        if (StreamLender* lender = link_.LendsStream(ctx_->method(), true)) Lend(lender);
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
    if (more) StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
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

  void OnCancel() override {
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

  void OnDone() override { delete this; }

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
    Describe(link_.callers(), ctx_, ctx_->method(), pending.get());
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
    if (read) StartRead(&request_);
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
    if (read) StartRead(&request_);
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
    if (read) StartRead(&request_);
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

  CallLink& link_;
  grpc::GenericCallbackServerContext* ctx_;
  grpc::ByteBuffer request_;
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

}  // namespace

std::string Bytes(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  out.reserve(buffer.Length());
  for (const auto& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

void Describe(Callers& callers, grpc::ServerContextBase* ctx, const std::string& method,
              LinkedPending* pending) {
  pending->ctx = ctx;
  pending->method = method;
  auto& call = pending->call;
  auto caller = callers.Of(*ctx);
  call.set_method(method);
  call.set_institution(caller->names.institution);
  call.set_role(caller->names.role);
  call.set_subject(caller->names.subject);
  const auto& md = ctx->client_metadata();
  auto found = md.find(kOperator);
  if (found != md.end()) {
    call.set_has_operator(true);
    call.set_operator_metadata(std::string(found->second.data(), found->second.size()));
  }
}

CallLink::CallLink(std::string path, std::set<std::string> methods,
                   std::set<std::string> streams, Callers& callers)
    : path_(std::move(path)),
      methods_(std::move(methods)),
      streams_(std::move(streams)),
      callers_(callers),
      lender_([this](authd::v1::LinkedCall part) { SubmitLeasePart(std::move(part)); }),
      tokens_([this](authd::v1::LinkedCall part) { SubmitLeasePart(std::move(part)); }),
      signers_(kLentSigners) {
  thread_ = std::thread([this] { Run(); });
}

CallLink::~CallLink() { Stop(); }

grpc::ServerGenericBidiReactor* CallLink::Reactor(grpc::GenericCallbackServerContext* ctx) {
  if (streams_.count(ctx->method()) > 0) return new LinkedStreamReactor(*this, ctx);
  return nullptr;
}

void CallLink::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool CallLink::WaitConnected(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return wake_.wait_for(lock, timeout, [this] { return connected_ || stopping_; }) &&
         connected_;
}

void CallLink::ReportQueued(uint64_t* gauge) {
  std::lock_guard<std::mutex> lock(mu_);
  queued_gauge_ = gauge;
  Queued();
}

void CallLink::LentSigning(int now) {
  uint32_t* gauge = lent_signing_gauge_.load(std::memory_order_relaxed);
  if (gauge == nullptr) return;
  uint32_t most = __atomic_load_n(gauge, __ATOMIC_RELAXED);
  while (static_cast<uint32_t>(now) > most &&
         !__atomic_compare_exchange_n(gauge, &most, static_cast<uint32_t>(now), true,
                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
}

void CallLink::Queued() {
  if (queued_gauge_ != nullptr) {
    __atomic_store_n(queued_gauge_, static_cast<uint64_t>(queue_.size()), __ATOMIC_RELEASE);
  }
}

uint64_t CallLink::Submit(std::unique_ptr<LinkedPending> pending) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!connected_ || stopping_ || broken_) {
    lock.unlock();
    grpc::Status down = DaemonDown();
    pending->done(&down, nullptr);
    return 0;
  }
  uint64_t id = ++next_id_;
  pending->call.set_id(id);
  // A stream's opening has no answer to wait for here.
  bool unary = !pending->item;
  queue_.push_back(std::move(pending));
  Queued();
  if (writing_) return id;  // the thread writing takes it along in its next frame
  // Idle: nothing in flight, nobody reading. This thread writes and reads the answer itself.
  bool read_here =
      unary && reader_ == Reader::kNone && in_flight_.empty() && queue_.size() == 1;
  if (read_here) reader_ = Reader::kCaller;
  Write(lock);
  if (read_here) ReadHere(id);
  return id;
}

void CallLink::SubmitPart(uint64_t id, authd::v1::LinkedCall::Part part, std::string request) {
  auto pending = std::make_unique<LinkedPending>();
  pending->part = true;
  pending->call.set_id(id);
  pending->call.set_part(part);
  pending->call.set_request(std::move(request));
  std::unique_lock<std::mutex> lock(mu_);
  if (!connected_ || stopping_ || broken_) return;
  queue_.push_back(std::move(pending));
  Queued();
  if (writing_) return;
  Write(lock);
}

void CallLink::SubmitLeasePart(authd::v1::LinkedCall part) {
  auto pending = std::make_unique<LinkedPending>();
  pending->part = true;
  pending->call = std::move(part);
  std::unique_lock<std::mutex> lock(mu_);
  if (!connected_ || stopping_ || broken_) return;  // the daemon forgets the link's leases
  queue_.push_back(std::move(pending));
  Queued();
  if (writing_) return;
  Write(lock);
}

// Reads answers on this thread until the one to `mine` came or kReadHere passed, then leaves
// the reading to the receiver thread if calls are still in flight; answers `mine` last, here.
void CallLink::ReadHere(uint64_t mine) {
  FrameReader* frames;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // nullptr: not sent (late, cancelled, broken)
    frames = in_flight_.count(mine) > 0 ? frames_ : nullptr;
  }
  std::unique_ptr<LinkedPending> own;
  authd::v1::LinkedAnswer own_answer;
  bool ok = true;
  auto until = std::chrono::steady_clock::now() + kReadHere;
  std::string bytes;
  while (frames != nullptr && ok && !own) {
    if (frames->Ready()) {  // read along with an earlier frame
      ok = frames->Next(&bytes) && Dispatch(bytes, *frames, mine, &own, &own_answer);
      continue;
    }
    auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    timespec wait{static_cast<time_t>(left.count() / 1000000000),
                  static_cast<long>(left.count() % 1000000000)};
    pollfd ready{frames->fd(), POLLIN, 0};
    int n = ::ppoll(&ready, 1, &wait, nullptr);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) break;  // not yet: the receiver thread takes over
    ok = n > 0 && frames->Next(&bytes) && Dispatch(bytes, *frames, mine, &own, &own_answer);
  }
  bool others, ending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    reader_ = Reader::kNone;
    if (!ok) broken_ = true;
    others = !in_flight_.empty() || AwaitsRecalls();
    ending = broken_ || stopping_;
  }
  if (others || ending) turn_.notify_one();  // the receiver thread reads the others' answers
  if (ending) wake_.notify_all();  // a stopping or broken link waits for this thread
  if (own) own->done(nullptr, &own_answer);
}

bool CallLink::Dispatch(std::string& bytes, FrameReader& frames, uint64_t mine,
                        std::unique_ptr<LinkedPending>* own,
                        authd::v1::LinkedAnswer* own_answer) {
  authd::v1::LinkedAnswers answers;
  if (!answers.ParseFromString(bytes)) return false;
  bool secret = false;  // a token lease's PIN came in this frame
  for (auto& answer : *answers.mutable_answers()) {
    if (answer.id() == 0) {  // not an answer: the daemon asks for a lent card or login back
      if (answer.recall() != 0) lender_.Recall(answer.recall());
      if (answer.token_recall() != 0) tokens_.Recall(answer.token_recall());
      continue;
    }
    std::unique_ptr<LinkedPending> call;
    LinkedPending* stream = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = in_flight_.find(answer.id());
      if (it != in_flight_.end()) {
        if (answer.item() && it->second->item) {
          // Stays in flight: only the thread reading the link (this one) or FailAll, once
          // no thread reads, takes it out.
          stream = it->second.get();
        } else {
          call = std::move(it->second);
          in_flight_.erase(it);
        }
      }
    }
    if (stream != nullptr) {
      // A stream's answer lent its card: connected before the caller hears it, so that its
      // next message finds the card (the stream's method: the lease names its unary one).
      if (answer.has_lease()) lender_.Take(answer.lease(), stream->method);
      stream->item(&answer);
      continue;
    }
    if (!call) continue;
    // Connected before the caller hears its answer, so that its next call finds the card.
    if (answer.has_lease()) lender_.Take(answer.lease(), call->method);
    if (answer.has_token_lease()) {
      secret = true;
      tokens_.Take(answer.mutable_token_lease(), call->method);  // wipes its PIN
    }
    if (own != nullptr && answer.id() == mine) {
      *own = std::move(call);
      own_answer->Swap(&answer);
    } else {
      call->done(nullptr, &answer);
    }
  }
  if (secret) {
    if (!bytes.empty()) OPENSSL_cleanse(&bytes[0], bytes.size());
    frames.Forget();
  }
  return true;
}

// Writes frames of what is queued until the queue is empty; whoever finds no write under
// way writes, and calls that come meanwhile leave in its next frame. Called with the lock
// held; returns with it released.
void CallLink::Write(std::unique_lock<std::mutex>& lock) {
  writing_ = true;
  std::string bytes;
  while (!queue_.empty() && !broken_) {
    authd::v1::LinkedCalls frame;
    std::vector<std::pair<std::unique_ptr<LinkedPending>, bool>> dropped;  // (call, late)
    auto now = std::chrono::system_clock::now();
    while (!queue_.empty() && static_cast<size_t>(frame.calls_size()) < kFrameMax) {
      std::unique_ptr<LinkedPending> next = std::move(queue_.front());
      queue_.pop_front();
      Queued();
      if (next->part) {  // a stream's later part: nothing to answer
        frame.add_calls()->Swap(&next->call);
      } else if (next->ctx->IsCancelled()) {
        dropped.emplace_back(std::move(next), false);
      } else if (next->ctx->deadline() < now) {
        dropped.emplace_back(std::move(next), true);
      } else {
        // The call's bytes move into the frame; its answer may come before send() returns.
        frame.add_calls()->Swap(&next->call);
        uint64_t id = frame.calls(frame.calls_size() - 1).id();
        in_flight_.emplace(id, std::move(next));
      }
    }
    int fd = fd_;
    lock.unlock();
    for (auto& [call, late] : dropped) {
      grpc::Status why = late ? Late() : Left();
      call->done(&why, nullptr);
    }
    bool ok = true;
    if (frame.calls_size() > 0) {
      bytes.clear();
      AppendFrame(frame, &bytes);
      ok = WriteAll(fd, bytes.data(), bytes.size());
    }
    lock.lock();
    if (!ok) broken_ = true;
  }
  writing_ = false;
  bool broken = broken_;
  // Calls in flight and nobody reading: the receiver thread's turn (not when this thread
  // reads the answer itself, ReadHere).
  bool wake_reader = reader_ == Reader::kNone && (!in_flight_.empty() || AwaitsRecalls());
  lock.unlock();
  if (wake_reader) turn_.notify_one();
  if (broken) wake_.notify_all();
}

void CallLink::Run() {
  auto delay = std::chrono::milliseconds(20);
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;
    }
    int fd = ConnectUnix(path_);
    if (fd >= 0) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        connected_ = true;
        broken_ = false;
      }
      wake_.notify_all();
      Serve(fd);
      ::close(fd);
      std::cerr << "authd-front: the daemon's call link closed\n";
      delay = std::chrono::milliseconds(20);
    } else {
      delay = std::min(delay * 2, std::chrono::milliseconds(1000));
    }
    std::unique_lock<std::mutex> lock(mu_);
    wake_.wait_for(lock, delay, [this] { return stopping_; });
  }
  FailAll(true);
}

void CallLink::Serve(int fd) {
  // Shared by the receiver thread and a sending thread reading its own answer, one at a
  // time (reader_).
  FrameReader frames(fd, kMaxAnswers);
  std::thread receiver([this, &frames] { Receive(frames); });
  std::unique_lock<std::mutex> lock(mu_);
  fd_ = fd;
  frames_ = &frames;
  if (!queue_.empty() && !writing_) {
    Write(lock);
    lock.lock();
  }
  // The server shuts down: the calls in flight come back first.
  wake_.wait(lock, [this] { return broken_ || (stopping_ && in_flight_.empty()); });
  broken_ = true;
  connected_ = false;
  turn_.notify_all();
  // Nobody writes on fd any more, and no sending thread reads it (the receiver thread is
  // woken from its read by the shutdown below).
  wake_.wait(lock, [this] { return !writing_ && reader_ != Reader::kCaller; });
  fd_ = -1;
  frames_ = nullptr;
  lock.unlock();
  ::shutdown(fd, SHUT_RDWR);
  receiver.join();
  FailAll(false);
}

void CallLink::Receive(FrameReader& frames) {
  std::string bytes;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Only answers to calls in flight can come, and while a card or a login is lent the
      // daemon's recall of it; a sending thread may be reading them.
      turn_.wait(lock, [this] {
        return broken_ || (reader_ == Reader::kNone && (!in_flight_.empty() || AwaitsRecalls()));
      });
      if (broken_) break;
      reader_ = Reader::kReceiver;
    }
    bool ok = frames.Next(&bytes) && Dispatch(bytes, frames, 0, nullptr, nullptr);
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(mu_);
      reader_ = Reader::kNone;
      if (!ok) broken_ = true;
      stopping = stopping_;
    }
    if (!ok) break;
    if (stopping) wake_.notify_all();  // a stopping server waits for the calls in flight
  }
  wake_.notify_all();
}

void CallLink::FailAll(bool queued_too) {
  lender_.Drop();  // the daemon forgets the leases of a link that went away
  tokens_.Drop();
  std::unordered_map<uint64_t, std::unique_ptr<LinkedPending>> held;
  std::deque<std::unique_ptr<LinkedPending>> waiting;
  {
    std::lock_guard<std::mutex> lock(mu_);
    held.swap(in_flight_);
    if (queued_too || stopping_ || !connected_) waiting.swap(queue_);
    Queued();
  }
  grpc::Status lost = DaemonLost();
  grpc::Status down = DaemonDown();
  for (auto& [id, call] : held) call->done(&lost, nullptr);
  for (auto& call : waiting) {
    if (!call->part) call->done(&down, nullptr);
  }
}

}  // namespace authd_front
