#include "empty_link.h"

#include <grpcpp/impl/rpc_service_method.h>
#include <grpcpp/support/server_callback.h>

#include <memory>
#include <utility>

#include "status.h"

namespace authd_front {

EmptyLinkService::EmptyLinkService(VerifyService& verify, std::string method)
    : verify_(verify), method_(std::move(method)) {
  AddMethod(new grpc::internal::RpcServiceMethod(
      method_.c_str(), grpc::internal::RpcMethod::NORMAL_RPC, nullptr));
  MarkMethodRawCallback(
      0, new grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer, grpc::ByteBuffer>(
             [this](grpc::CallbackServerContext* ctx, const grpc::ByteBuffer*,
                    grpc::ByteBuffer* response) { return Call(ctx, response); }));
}

grpc::ServerUnaryReactor* EmptyLinkService::Call(grpc::CallbackServerContext* ctx,
                                                 grpc::ByteBuffer* response) {
  auto* reactor = ctx->DefaultReactor();
  grpc::Status busy;
  if (!verify_.Admit(method_.c_str(), 1, &busy)) {
    reactor->Finish(busy);
    return reactor;
  }
  auto caller = verify_.callers().Of(*ctx);
  // One item, as a unary Verify: the same frames (batch_max calls) and queue bound.
  auto pending = verify_.Start(ctx, *caller, method_.c_str(), 1);
  pending->done = [this, reactor, response](const grpc::Status* refused,
                                            authd::v1::LinkAnswer* answer) {
    verify_.Leave(1, true);
    if (refused != nullptr) {
      reactor->Finish(*refused);
    } else if (answer->has_error()) {
      reactor->Finish(ToGrpc(answer->error()));
    } else if (answer->responses_size() != 0) {
      reactor->Finish(Mismatch());
    } else {
      grpc::Slice empty("", 0);
      *response = grpc::ByteBuffer(&empty, 1);
      reactor->Finish(grpc::Status::OK);
    }
  };
  verify_.link().Submit(std::move(pending));
  return reactor;
}

}  // namespace authd_front
