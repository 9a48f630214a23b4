// Unary calls the front end serves itself by handing them to the daemon over a private link,
// without the daemon's gRPC server: TokenService Sign and SmartcardService Transmit (the
// methods the daemon names with --linked). A call's request bytes, its caller and operator go
// to the daemon in a LinkedCalls frame (call_link.proto); the daemon parses and checks them as its
// own server would, and answers each call once, in any order, with the response bytes or the
// status. The thread that finds no frame being written writes it itself (no hop to
// another thread); calls that come meanwhile queue and leave together in its next frame: at
// low load a call goes out at once, under load frames grow (no timer). Answers are read the
// same way: when no call is in flight, the thread that sends one also reads the link for its
// answer (for up to kReadHere) and answers the caller from there, so an idle call is read,
// sent and answered on the one thread that took it from gRPC (a completion queue's: unary.h);
// only calls that overlap others, or whose
// answer takes longer, are read by the link's receiver thread, which sleeps while none is
// in flight. A call whose caller went away or whose
// deadline passed while it queued is answered here and never sent; once sent it runs to its
// end (a signature or an APDU cannot be taken back), and its answer is dropped if nobody
// waits. If the daemon's end goes away, the calls it holds are answered UNAVAILABLE.
//
// Streaming methods (--linked-streams: TokenService SignStream, SmartcardService
// TransmitStream; served on completion queues: streams.h) go over the same link as parts of one id (call_link.proto): the stream's
// opening with its caller, each request as the client sends it (up to kStreamWindow ahead of
// its answers), its half-close or its cancellation. Parts of many streams and unary calls
// leave in the same frames, in the order they came; the daemon answers each stream's
// responses in order and then its end, and the front end writes them to the client in that
// order. A stream the client cancels is told to the daemon, which stops it and answers its
// end; no other stream is touched. If the link goes away, every open stream ends UNAVAILABLE.
//
// The daemon may lend a reader's card with a Transmit's answer (lending.h): that caller's
// next Transmits on that reader are then answered here, from pcscd, and never reach the link
// (only the lease's parts do: its calls told in batches, its return). It may lend a token
// login with a Sign's answer (token_lending.h) the same way; while one is lent the receiver
// thread reads the link even with no call in flight, so that the daemon's recall (a Logout,
// an expiry: calls that do not come this way) is heard at once. A SignStream begun while a
// login is lent is signed here (up to four of its requests at once, on the signer threads,
// answered in order) until the first request that is not signed here; the stream is opened
// on the link only then, and the daemon answers that request and the rest of the stream
// (streams.cc, LinkedStream). A TransmitStream is served on a lent card the same way,
// one message at a time on the thread that read it; it may also be lent the card by one of
// its own answers (a stream message's answer may carry a CardLease), and then its next
// messages, read once every one before them was answered, are served here while the stream
// stays open on the link, until one that is not.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>

#include "authd/v1/call_link.pb.h"
#include "caller.h"
#include "framing.h"
#include "lending.h"
#include "token_lending.h"
#include "workers.h"

namespace authd_front {

struct LinkedPending {
  authd::v1::LinkedCall call;
  grpc::ServerContextBase* ctx = nullptr;  // valid until `done` was called
  std::string method;  // the call's (call.method until it is sent)
  // Called exactly once: with the front end's own status, or with the daemon's answer (a
  // stream's: its end).
  std::function<void(const grpc::Status* refused, authd::v1::LinkedAnswer* answer)> done;
  // A stream's: each of its responses, in order, on the thread reading the link.
  std::function<void(authd::v1::LinkedAnswer* answer)> item;
  bool part = false;  // a later part of a stream (call.id names it): sent, never answered
};

// The call's method and its caller, as the daemon checks them (pending->call), and its context.
void Describe(Callers& callers, grpc::ServerContextBase* ctx, const std::string& method,
              LinkedPending* pending);
// A message's bytes.
std::string Bytes(const grpc::ByteBuffer& buffer);

class CallLink {
 public:
  CallLink(std::string path, std::set<std::string> methods, std::set<std::string> streams,
           Callers& callers);
  ~CallLink();
  // The unary methods and the streaming ones this link carries (served on completion queues:
  // unary.h, streams.h).
  const std::set<std::string>& methods() const { return methods_; }
  const std::set<std::string>& streams() const { return streams_; }
  // Sends a unary call or a stream's opening (pending->item set); returns its id, or 0 when
  // it was answered at once (`done` called: the link is down).
  uint64_t Submit(std::unique_ptr<LinkedPending> pending);
  // Sends a later part of the stream `id` (dropped when the link is down: the stream is
  // answered UNAVAILABLE by then).
  void SubmitPart(uint64_t id, authd::v1::LinkedCall::Part part, std::string request);
  // A unary call served on a card or a token login the daemon lent (lending.h,
  // token_lending.h): true when it was (`response` set); false: it goes to the daemon (Submit).
  bool ServeLent(const authd::v1::LinkedCall& call, std::string* response) {
    return lender_.Serve(call, response) || tokens_.Serve(call, response);
  }
  // The lender whose lease serves the requests of a stream of `method` now (token_lending.h:
  // a SignStream that starts while a login is lent; lending.h: a TransmitStream while a card
  // is lent, also one open on the link already, `opened`), or nullptr: the daemon's.
  StreamLender* LendsStream(const std::string& method, bool opened) {
    if (lender_.LendsStream(method, opened)) return &lender_;
    if (tokens_.LendsStream(method, opened)) return &tokens_;
    return nullptr;
  }
  // The threads that sign lent streams' requests (several of one stream at once).
  Workers& signers() { return signers_; }
  // Where to keep the most requests of one lent stream signing at once (tally.h), and a
  // stream's count of them now (raises it).
  void ReportLentSigning(uint32_t* gauge) { lent_signing_gauge_.store(gauge); }
  void LentSigning(int now);
  bool WaitConnected(std::chrono::milliseconds timeout);
  void Stop();
  // Where to keep the count of calls and stream parts queued here, not yet sent (tally.h).
  void ReportQueued(uint64_t* gauge);
  Callers& callers() { return callers_; }

 private:
  void Run();
  void Serve(int fd);
  // `wait`: on the link's own thread, which waits for a full socket (any other leaves the
  // rest of a frame the socket did not take, and what queues meanwhile, to that thread).
  void Write(std::unique_lock<std::mutex>& lock, bool wait = false);
  void ReadHere(uint64_t mine);
  // Answers the calls of one frame of answers; the answer to `mine` (if any) is moved to
  // `own` instead of answered. False: the frame did not parse.
  // A frame that lent a token login is wiped (`bytes` and what `frames` holds of it: the PIN).
  bool Dispatch(std::string& bytes, FrameReader& frames, uint64_t mine,
                std::unique_ptr<LinkedPending>* own, authd::v1::LinkedAnswer* own_answer);
  // Answers are to be read with no call in flight: a card's or a login's recall may come
  // (a lent card's caller's calls are served here: none of them is in flight).
  bool AwaitsRecalls() const { return lender_.lent() || tokens_.lent(); }
  void Receive(FrameReader& frames);
  void FailAll(bool queued_too);
  // A lease's part (lending.h), sent in order with the calls.
  void SubmitLeasePart(authd::v1::LinkedCall part);
  void Queued();  // queue_ changed (mu_ held)

  const std::string path_;
  const std::set<std::string> methods_;
  const std::set<std::string> streams_;
  Callers& callers_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable turn_;  // the receiver thread's turn to read may have come
  std::deque<std::unique_ptr<LinkedPending>> queue_;
  uint64_t* queued_gauge_ = nullptr;
  std::atomic<uint32_t*> lent_signing_gauge_{nullptr};
  std::unordered_map<uint64_t, std::unique_ptr<LinkedPending>> in_flight_;
  int fd_ = -1;
  FrameReader* frames_ = nullptr;  // the answers' reader of the link connected now
  bool writing_ = false;  // a thread is writing frames (Write)
  // The socket was full: the rest of a frame (backlog_) for the link's thread to write, and
  // the frames after it (writing_ stays set meanwhile).
  bool handed_ = false;
  std::string backlog_;
  enum class Reader { kNone, kReceiver, kCaller };
  Reader reader_ = Reader::kNone;  // who reads answers from the link now
  bool connected_ = false;
  bool broken_ = false;
  bool stopping_ = false;
  uint64_t next_id_ = 0;
  CardLender lender_;
  TokenLender tokens_;
  std::thread thread_;
  Workers signers_;  // ends first: no job runs once the server stopped
};

}  // namespace authd_front
