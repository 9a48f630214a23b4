// The calls a front end served on something the daemon lent it (a reader's card: lending.h; a
// token login: token_lending.h), not told to the daemon yet: their count, and their durations
// as the calls and the sum of their seconds per bucket of the daemon's call-latency histogram
// (the lease's bounds), which the daemon counts, times and logs as its own.
#pragma once

#include <google/protobuf/repeated_field.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "authd/v1/call_link.pb.h"

namespace authd_front {

struct LentCalls {
  uint32_t calls = 0;
  std::vector<uint32_t> bucket_calls;
  std::vector<double> bucket_seconds;
  void Add(const google::protobuf::RepeatedField<double>& bounds, double seconds);
  // Moves them into `part` (served, bucket_calls, bucket_seconds).
  void TellIn(authd::v1::LinkedCall* part);
};

// A lease's part for the daemon (LEASE_USED, LEASE_RETURN) with no calls told in it yet.
authd::v1::LinkedCall LeasePart(authd::v1::LinkedCall::Part kind, uint64_t id,
                                const std::string& method);

// Whether `call` comes from the caller the lease (a CardLease, a TokenLease) was lent to.
template <typename Lease>
bool SameCaller(const authd::v1::LinkedCall& call, const Lease& lease) {
  return call.institution() == lease.institution() && call.role() == lease.role() &&
         call.subject() == lease.subject() && call.has_operator() == lease.has_operator() &&
         call.operator_metadata() == lease.operator_metadata();
}

// A lender whose leases lend a streaming method's requests too (TokenLease and CardLease
// stream_method: a token's SignStream, a card's TransmitStream), as the link's stream reactor
// sees it (streams.cc, LinkedStream): whether a stream may be served here now, each of its
// requests served (or not) one by one, and each served one counted once it is answered.
class StreamLender {
 public:
  // A stream's request served here and not answered yet: told to the daemon once it is
  // answered (Answered), never if it is dropped (the stream handed over before it).
  struct Unanswered {
    std::shared_ptr<void> lease;  // what served it (the lender's own)
    uint64_t id = 0;              // its lease's
    double seconds = 0;           // how long it took
  };
  // A lease lends the requests of streams of `method`: such a stream's requests are given to
  // Serve until one is not served here. `opened`: the stream is open on the link already
  // (the daemon answered every request before the next one).
  virtual bool LendsStream(const std::string& method, bool opened) = 0;
  // A unary call or one request of a stream (`call`: described, with that request set): true
  // when it was served here (`response`: its answer's bytes; `served`, a stream's: to count
  // once answered; nullptr for a unary call, counted at once); false: it goes the daemon's
  // way (a lease it had to give back first has been).
  virtual bool Serve(const authd::v1::LinkedCall& call, std::string* response,
                     Unanswered* served) = 0;
  bool Serve(const authd::v1::LinkedCall& call, std::string* response) {
    return Serve(call, response, nullptr);
  }
  // A request Serve served is about to be answered: counted and told as served, unless
  // its lease has ended since and it may be answered by the daemon instead (false).
  virtual bool Answered(const Unanswered& served) = 0;
  // How many of one stream's requests may be served at once, on the link's signer threads; 0:
  // one at a time, on the thread that read it (a card takes one APDU at a time).
  virtual size_t Concurrent() const = 0;

 protected:
  ~StreamLender() = default;
};

// What both lenders (a card's: lending.h, a token login's: token_lending.h) keep the same:
// the lock of their state, the condition their thread waits on, its stop, the leases recalled
// before their answers came, and the thread (started by Start; Stop, which each lender's
// destructor calls before it ends its leases, sets stopping_, wakes and joins it).
class Lender {
 protected:
  Lender() = default;
  ~Lender() = default;
  Lender(const Lender&) = delete;
  Lender& operator=(const Lender&) = delete;
  void Start(std::function<void()> run);
  void Stop();
  // Keeps `id` among the newest recalled leases (the answer of such a lease, when it comes, is
  // answered already). Called with mu_ held.
  void Recalled(uint64_t id);

  std::mutex mu_;  // the lender's state (each lender names what it guards), and stopping_
  std::condition_variable wake_;
  std::set<uint64_t> recalled_;  // leases asked back before they came (the newest few)
  bool stopping_ = false;

 private:
  std::thread thread_;
};

}  // namespace authd_front
