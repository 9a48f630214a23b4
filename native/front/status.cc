#include "status.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "google/rpc/code.pb.h"
#include "google/rpc/error_details.pb.h"

namespace authd_front {
namespace {

constexpr const char* kDomain = "authd";

google::rpc::Status Make(google::rpc::Code code, const std::string& message,
                         const std::string& reason, const char* limit = nullptr,
                         double retry_after = -1) {
  google::rpc::Status status;
  status.set_code(code);
  status.set_message(message);
  google::rpc::ErrorInfo info;
  info.set_reason(reason);
  info.set_domain(kDomain);
  if (limit != nullptr) (*info.mutable_metadata())["limit"] = limit;
  status.add_details()->PackFrom(info);
  if (retry_after >= 0) {
    google::rpc::RetryInfo retry;
    int64_t nanos = static_cast<int64_t>(std::llround(retry_after * 1e9));
    retry.mutable_retry_delay()->set_seconds(nanos / 1000000000);
    retry.mutable_retry_delay()->set_nanos(static_cast<int32_t>(nanos % 1000000000));
    status.add_details()->PackFrom(retry);
  }
  return status;
}

std::string Seconds(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", value);
  return text;
}

}  // namespace

grpc::Status ToGrpc(const google::rpc::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), status.message(),
                      status.SerializeAsString());
}

google::rpc::Status ToRpc(const grpc::Status& status) {
  google::rpc::Status out;
  if (!status.error_details().empty() && out.ParseFromString(status.error_details())) {
    return out;
  }
  out.Clear();
  out.set_code(status.error_code());
  out.set_message(status.error_message());
  return out;
}

grpc::Status Busy(int64_t held, int64_t limit, double retry_after) {
  return ToGrpc(Make(google::rpc::RESOURCE_EXHAUSTED,
                     "the OTP center is busy: this server process holds " +
                         std::to_string(held) + " verifications, its limit is " +
                         std::to_string(limit) + "; nothing was counted; retry in " +
                         Seconds(retry_after) + " s",
                     "BUSY", "max_in_flight", retry_after));
}

grpc::Status QueueFull(int64_t queued, double retry_after) {
  return ToGrpc(Make(google::rpc::RESOURCE_EXHAUSTED,
                     "the OTP center is busy: " + std::to_string(queued) +
                         " verifications wait for this node's writer; nothing was counted; "
                         "retry in " + Seconds(retry_after) + " s",
                     "BUSY", "queue_max", retry_after));
}

grpc::Status EngineDown() {
  return ToGrpc(Make(google::rpc::UNAVAILABLE,
                     "the verification engine is restarting; nothing was counted; try again",
                     "UNREACHABLE"));
}

grpc::Status EngineLost() {
  return ToGrpc(Make(google::rpc::UNAVAILABLE,
                     "the verification engine stopped before it answered; the verification "
                     "may have been counted; ask again",
                     "UNREACHABLE"));
}

grpc::Status DeadlinePassed() {
  return ToGrpc(Make(google::rpc::DEADLINE_EXCEEDED,
                     "the deadline passed before the verification was evaluated; nothing was "
                     "counted",
                     "TIMED_OUT"));
}

grpc::Status GaveUp() {
  return ToGrpc(Make(google::rpc::CANCELLED,
                     "the caller gave up before the verification was evaluated; nothing was "
                     "counted",
                     "CANCELLED"));
}

grpc::Status Mismatch() {
  return ToGrpc(Make(google::rpc::INTERNAL,
                     "internal error: the verification engine's answer does not fit the call",
                     "INTERNAL"));
}

}  // namespace authd_front
