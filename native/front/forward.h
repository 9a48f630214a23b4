// Every method the front end does not serve itself goes to the daemon's own gRPC server on a
// private Unix socket, as raw bytes in a generic bidi stream (which carries unary and
// streaming calls alike): the client's metadata, deadline and cancellation go up, the answers,
// initial and trailing metadata and status (with its details) come back. The caller travels
// as x-authd-*-bin metadata with the front end's token; a caller's own x-authd-* metadata is
// never passed on. The methods the front end serves itself (the call link's unary and
// streaming ones: unary.h, streams.h; the engine's: verify.h) are registered services and never
// come here.
//
// Served as gRPC's async generic service on the server's completion queues (queues.h), not
// through its callback API: each call is one object whose steps are tags of the queue it came
// on, and the call toward the daemon is a generic stub call started on that same queue, so a
// forwarded call runs on one queue thread from end to end, with no client callback machinery
// or completion queue of its own (docs/smartcard.md, "With no callback service at all").
#pragma once

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "caller.h"
#include "queues.h"

namespace authd_front {

class Forwarder final {
 public:
  Forwarder(std::shared_ptr<grpc::Channel> daemon, Callers& callers, std::string token);
  // To register with the server builder (its one generic service).
  grpc::AsyncGenericService* service() { return &service_; }
  // Once the server started, before the queues' threads: the first calls requested on each.
  void Start(const ServerQueues& queues);
  // Once the server shut down, before the queues do: until every call (requested or taken)
  // is gone. The server's end comes once its connections closed, which may be before each
  // call's last steps (the daemon's call, cancelled by then, coming back), and a step may
  // not start an operation on a queue that shut down.
  void Drain();

  grpc::GenericStub& stub() { return stub_; }
  Callers& callers() { return callers_; }
  const std::string& token() const { return token_; }
  void Made();
  void Gone();

 private:
  grpc::AsyncGenericService service_;
  grpc::GenericStub stub_;
  Callers& callers_;
  const std::string token_;
  std::mutex mu_;
  std::condition_variable none_;
  int calls_ = 0;  // ForwardedCall objects
};

}  // namespace authd_front
