// Every method the front end does not serve itself goes to the daemon's own gRPC server on a
// private Unix socket, as raw bytes in a generic bidi stream (which carries unary and
// streaming calls alike): the client's metadata, deadline and cancellation go up, the answers,
// trailing metadata and status (with its details) come back. The caller travels as
// x-authd-*-bin metadata with the front end's token; a caller's own x-authd-* metadata is
// never passed on. The methods the front end serves itself (the call link's unary and
// streaming ones: unary.h, streams.h; the engine's: verify.h) are registered services and never
// come here.
#pragma once

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "caller.h"

namespace authd_front {

class Forwarder final : public grpc::CallbackGenericService {
 public:
  Forwarder(std::shared_ptr<grpc::Channel> daemon, Callers& callers, std::string token);
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override;

  grpc::GenericStub& stub() { return stub_; }
  Callers& callers() { return callers_; }
  const std::string& token() const { return token_; }

 private:
  grpc::GenericStub stub_;
  Callers& callers_;
  const std::string token_;
};

}  // namespace authd_front
