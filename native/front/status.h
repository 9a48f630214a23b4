// Statuses the front end gives itself, in the daemon's form (google.rpc.Status with an
// ErrorInfo of domain "authd", and a RetryInfo when a limit says when to come back), and the
// conversions between that form and grpc::Status.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <string>

#include "google/rpc/status.pb.h"

namespace authd_front {

grpc::Status ToGrpc(const google::rpc::Status& status);
google::rpc::Status ToRpc(const grpc::Status& status);

// RESOURCE_EXHAUSTED, reason BUSY: the process holds as many verifications as it admits.
grpc::Status Busy(int64_t held, int64_t limit, double retry_after);
// RESOURCE_EXHAUSTED, reason BUSY: the engine's queue is full.
grpc::Status QueueFull(int64_t queued, double retry_after);
// UNAVAILABLE: no engine connected; nothing was sent.
grpc::Status EngineDown();
// UNAVAILABLE: the engine went away after the verifications were sent to it.
grpc::Status EngineLost();
// DEADLINE_EXCEEDED: the deadline passed before the verification was sent to the engine.
grpc::Status DeadlinePassed();
// CANCELLED: the caller went away before the verification was sent (nobody reads this).
grpc::Status GaveUp();
// INTERNAL: the engine's answer does not fit the call (a bug).
grpc::Status Mismatch();

}  // namespace authd_front
