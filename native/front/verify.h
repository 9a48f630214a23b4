// OtpService's verification methods, served here: Verify, VerifyBatch and VerifyStream, as raw
// methods on the server's completion queues (queues.h; the calls in verify_unary.h and
// verify_stream.h). The front end admits at most max_in_flight verifications at once
// (RESOURCE_EXHAUSTED, reason BUSY, with a retry time beyond that), hands each call's
// verifications to the engine over the link, and answers each call only with the engine's
// answer, which comes after its commit. Every other method of OtpService is left to the
// generic forwarder.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "authd/v1/otp.grpc.pb.h"
#include "caller.h"
#include "link.h"
#include "queues.h"
#include "verify_unary.h"

namespace authd_front {

class Admission {
 public:
  explicit Admission(int64_t limit) : limit_(limit) {}
  // Holds `count` more, or false when that would go beyond the limit (0: no limit).
  bool Enter(int64_t count);
  void Leave(int64_t count) { held_.fetch_sub(count, std::memory_order_relaxed); }
  int64_t held() const { return held_.load(std::memory_order_relaxed); }
  int64_t limit() const { return limit_; }

 private:
  const int64_t limit_;
  std::atomic<int64_t> held_{0};
};

using VerifyBase = authd::v1::OtpService::WithRawMethod_Verify<
    authd::v1::OtpService::WithRawMethod_VerifyBatch<
        authd::v1::OtpService::WithRawMethod_VerifyStream<authd::v1::OtpService::Service>>>;

class VerifyService final : public VerifyBase {
 public:
  VerifyService(Callers& callers, Link& link, int64_t max_in_flight, size_t batch_request_max);
  // Once the server started, before the queues' threads: the first calls requested on each.
  void Start(const ServerQueues& queues);

  // Builds the call's Pending (caller, method) for `items` verifications.
  std::unique_ptr<Pending> Prepare(grpc::ServerContextBase* ctx, const Caller& caller,
                                   const char* method, size_t items);
  // Admits `items` verifications (oversized calls go to the engine, which refuses them), or
  // fills `busy` and returns false.
  bool Admit(const char* method, size_t items, grpc::Status* busy);
  void Leave(size_t items, bool admitted);

  Callers& callers() { return callers_; }
  Link& link() { return link_; }

 private:
  Callers& callers_;
  Link& link_;
  Admission admission_;
  const size_t batch_request_max_;
  VerifyMethod verify_;
  VerifyMethod batch_;
};

}  // namespace authd_front
