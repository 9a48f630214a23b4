// The calls a front end served on something the daemon lent it (a reader's card: lending.h; a
// token login: token_lending.h), not told to the daemon yet: their count, and their durations
// as the calls and the sum of their seconds per bucket of the daemon's call-latency histogram
// (the lease's bounds), which the daemon counts, times and logs as its own.
#pragma once

#include <google/protobuf/repeated_field.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
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
