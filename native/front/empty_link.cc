#include "empty_link.h"

#include <grpcpp/impl/rpc_service_method.h>

#include <utility>

namespace authd_front {

EmptyLinkService::EmptyLinkService(VerifyService& verify, std::string method) {
  method_ = {VerifyMethod::Kind::kEmptyLinked, std::move(method), &verify,
             [this](grpc::ServerContext* ctx, grpc::ByteBuffer* request,
                    grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>* responder,
                    grpc::ServerCompletionQueue* cq, void* tag) {
               RequestAsyncUnary(0, ctx, request, responder, cq, cq, tag);
             }};
  AddMethod(new grpc::internal::RpcServiceMethod(
      method_.name.c_str(), grpc::internal::RpcMethod::NORMAL_RPC, nullptr));
  MarkMethodRaw(0);
}

}  // namespace authd_front
