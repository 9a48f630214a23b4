// The linked streaming methods (calls.h, --linked-streams: TokenService SignStream,
// SmartcardService TransmitStream) served on gRPC's completion queues rather than through its
// callback API: each as a raw bidi method (its messages as bytes) of this service, registered
// beside the others, so that these streams never reach the generic service (forward.h). A
// stream is one call object (streams.cc, LinkedStream) whose reads, writes, end and finish
// come back as tags on its queue's one thread (queues.h); it is deleted once every tag it
// gave gRPC came back.
//
// The stream keeps what the callback reactor did: the caller from the connection, the
// operator, requests read up to kStreamWindow ahead of their answers and sent as parts of the
// stream on the call link, its half-close, its cancellation told to the daemon, the
// responses and the end written in order (one write at a time, started from the link's
// thread), UNAVAILABLE when the link goes away, the lent paths (a login's SignStream signed on
// the link's signer threads, a card's TransmitStream served on the thread that read it), the
// server's message limits and the tally interceptor's count.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/service_type.h>
#include <grpcpp/support/async_stream.h>

#include <string>
#include <vector>

#include "queues.h"

namespace authd_front {

class CallLink;

class LinkedStreamService final : public grpc::Service {
 public:
  // `link`: may be null (no linked streams).
  explicit LinkedStreamService(CallLink* link);
  // Nothing to serve: not to be registered.
  bool idle() const { return names_.empty(); }
  // Once the server started, before the queues' threads: the first calls requested on each.
  void Start(const ServerQueues& queues);

 private:
  friend class LinkedStream;
  void Request(int index, grpc::ServerContext* ctx,
               grpc::ServerAsyncReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>* stream,
               grpc::ServerCompletionQueue* cq, void* tag) {
    RequestAsyncBidiStreaming(index, ctx, stream, cq, cq, tag);
  }

  CallLink* const link_;
  std::vector<std::string> names_;  // by method index
};

}  // namespace authd_front
