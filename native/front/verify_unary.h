// The unary calls that go to the verification engine over its link — OtpService Verify and
// VerifyBatch, and the benchmarks' empty linked call (empty_link.h) — served as raw methods on
// the server's completion queues (queues.h), as the linked unary calls are (unary.h). A
// queue's thread takes a call with its request, parses it (one that does not parse is
// answered UNIMPLEMENTED with no message, as gRPC's callback API answered it), admits it
// (BUSY with a retry time beyond the bound) and hands it to the link; the link's thread that
// reads the engine's answer writes it.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/async_unary_call.h>

#include <functional>
#include <string>

#include "queues.h"

namespace authd_front {

class VerifyService;

struct VerifyMethod {
  enum class Kind { kVerify, kVerifyBatch, kEmptyLinked };
  using Request = std::function<void(grpc::ServerContext*, grpc::ByteBuffer*,
                                     grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>*,
                                     grpc::ServerCompletionQueue*, void* tag)>;
  Kind kind;
  std::string name;  // the full method name
  VerifyService* service;
  Request request;  // requests one call of the method on a queue
};

// Once the server started, before the queues' threads: the first calls requested on each.
void ServeUnary(const VerifyMethod& method, const ServerQueues& queues);

}  // namespace authd_front
