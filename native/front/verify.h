// OtpService's verification methods, served here: Verify, VerifyBatch and VerifyStream. The
// front end admits at most max_in_flight verifications at once (RESOURCE_EXHAUSTED, reason
// BUSY, with a retry time beyond that), hands each call's verifications to the engine over the
// link, and answers each call only with the engine's answer, which comes after its commit.
// Every other method of OtpService is left to the generic forwarder.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "authd/v1/otp.grpc.pb.h"
#include "caller.h"
#include "link.h"

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

using VerifyBase = authd::v1::OtpService::WithCallbackMethod_Verify<
    authd::v1::OtpService::WithCallbackMethod_VerifyBatch<
        authd::v1::OtpService::WithCallbackMethod_VerifyStream<
            authd::v1::OtpService::Service>>>;

class VerifyService final : public VerifyBase {
 public:
  VerifyService(Callers& callers, Link& link, int64_t max_in_flight, size_t batch_request_max);

  grpc::ServerUnaryReactor* Verify(grpc::CallbackServerContext* ctx,
                                   const authd::v1::VerifyRequest* request,
                                   authd::v1::VerifyResponse* response) override;
  grpc::ServerUnaryReactor* VerifyBatch(grpc::CallbackServerContext* ctx,
                                        const authd::v1::VerifyBatchRequest* request,
                                        authd::v1::VerifyBatchResponse* response) override;
  grpc::ServerBidiReactor<authd::v1::VerifyBatchRequest, authd::v1::VerifyBatchResponse>*
  VerifyStream(grpc::CallbackServerContext* ctx) override;

  // Builds the call's Pending (caller, method) for `items` verifications.
  std::unique_ptr<Pending> Start(grpc::CallbackServerContext* ctx, const Caller& caller,
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
};

}  // namespace authd_front
