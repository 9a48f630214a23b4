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
// way writes, and calls that come meanwhile leave in its next frame. A thread of gRPC's
// (a completion queue's, which serves every call of its connections) never waits for a full
// socket (the daemon slow to read): the link's thread writes the rest, and the frames of
// what queued meanwhile. Called with the lock held; returns with it released.
void CallLink::Write(std::unique_lock<std::mutex>& lock, bool wait) {
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
    size_t sent = 0;
    bytes.clear();
    if (frame.calls_size() > 0) {
      AppendFrame(frame, &bytes);
      if (wait) {
        ok = WriteAll(fd, bytes.data(), bytes.size());
        sent = bytes.size();
      } else {
        ok = WriteNow(fd, bytes.data(), bytes.size(), &sent);
      }
    }
    lock.lock();
    if (!ok) broken_ = true;
    if (!broken_ && sent < bytes.size()) {  // the socket is full: the link's thread goes on
      backlog_.assign(bytes, sent, std::string::npos);
      handed_ = true;
      break;
    }
  }
  writing_ = handed_;
  bool broken = broken_;
  // Calls in flight and nobody reading: the receiver thread's turn (not when this thread
  // reads the answer itself, ReadHere).
  bool wake_reader = reader_ == Reader::kNone && (!in_flight_.empty() || AwaitsRecalls());
  bool handed = handed_;
  lock.unlock();
  if (wake_reader) turn_.notify_one();
  if (broken || handed) wake_.notify_all();
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
    Write(lock, true);
    lock.lock();
  }
  // The server shuts down: the calls in flight come back first. Meanwhile this thread
  // writes what another left to it (a full socket).
  while (true) {
    wake_.wait(lock, [this] { return handed_ || broken_ || (stopping_ && in_flight_.empty()); });
    if (!handed_) break;
    handed_ = false;
    std::string rest = std::move(backlog_);
    backlog_.clear();
    if (!broken_) {
      lock.unlock();
      const bool ok = WriteAll(fd, rest.data(), rest.size());
      lock.lock();
      if (!ok) broken_ = true;
    }
    Write(lock, true);  // the frames of what queued meanwhile (none if broken)
    lock.lock();
  }
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
