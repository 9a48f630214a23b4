// The linked unary methods (calls.h: TokenService Sign, SmartcardService Transmit) and the
// benchmarks' empty call, served on gRPC's completion queues rather than through its callback
// API: each as a raw method (its request and response as bytes) of this service, registered
// beside the generic service that forwards every other method on the same queues (forward.h)
// (a registered method is matched first). A queue's
// thread (queues.h) takes a call with its request, hands it to the
// call link and, when the answer is at hand by the time Submit returns (a card lent to the
// front end, or an idle call whose answer the thread read itself), answers it there: a call
// alone in flight is taken, sent, read and answered on one thread, with none of the callback
// API's hand-overs between gRPC's threads (docs/smartcard.md, "gRPC's server APIs weighed").
// Answers read by the link's receiver thread are written from there.
//
// The call keeps what the callback reactor did: the caller from the connection, the operator,
// the deadline and cancellation checked before it is sent (calls.h), the server's message
// limits, its statuses, and the tally interceptor's count (it sees these calls as any other).
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/service_type.h>
#include <grpcpp/support/async_unary_call.h>

#include <memory>
#include <string>
#include <vector>

#include "queues.h"

namespace authd_front {

class CallLink;

class UnaryService final : public grpc::Service {
 public:
  // `link`: may be null (no linked methods); `empty_method`: may be "" (none).
  UnaryService(CallLink* link, const std::string& empty_method);
  // Nothing to serve: not to be registered.
  bool idle() const { return names_.empty(); }
  // Once the server started, before the queues' threads: the first calls requested on each.
  void Start(const ServerQueues& queues);

 private:
  friend class UnaryCall;
  void Request(int index, grpc::ServerContext* ctx, grpc::ByteBuffer* request,
               grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>* responder,
               grpc::ServerCompletionQueue* cq, void* tag) {
    RequestAsyncUnary(index, ctx, request, responder, cq, cq, tag);
  }

  CallLink* const link_;
  std::vector<std::string> names_;  // by method index
  int empty_ = -1;  // the empty method's index
};

}  // namespace authd_front
