// The linked unary methods (calls.h: TokenService Sign, SmartcardService Transmit) and the
// benchmarks' empty call, served on gRPC's completion queues rather than through its callback
// API: each as a raw method (its request and response as bytes) of this service, registered
// beside the callback generic service that serves every other method (forward.h). Each queue
// is drained by one thread of its own, which takes a call with its request, hands it to the
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
#include <thread>
#include <vector>

namespace authd_front {

class CallLink;

class UnaryService final : public grpc::Service {
 public:
  // `link`: may be null (no linked methods); `empty_method`: may be "" (none).
  UnaryService(CallLink* link, const std::string& empty_method);
  // Nothing to serve: not to be registered.
  bool idle() const { return names_.empty(); }
  // Before the server is built: its completion queues.
  void AddQueues(grpc::ServerBuilder& builder);
  // Once the server started: the calls requested and the queues' threads started.
  void Start();
  // Once the server shut down and the link stopped (every call answered): the queues drained.
  void Stop();

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
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  std::vector<std::thread> threads_;
};

}  // namespace authd_front
