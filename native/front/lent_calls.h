// The calls a front end served on something the daemon lent it (a reader's card: lending.h; a
// token login: token_lending.h), not told to the daemon yet: their count, and their durations
// as the calls and the sum of their seconds per bucket of the daemon's call-latency histogram
// (the lease's bounds), which the daemon counts, times and logs as its own.
#pragma once

#include <google/protobuf/repeated_field.h>

#include <cstdint>
#include <string>
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

}  // namespace authd_front
