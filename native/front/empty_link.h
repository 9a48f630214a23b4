// The benchmarks' empty call sent over the engine link (`--empty-linked=METHOD`, which the
// daemon passes with [otp] link_empty_call): served as Verify is — a raw method on the
// server's completion queues (verify_unary.h), the caller of the connection, admission, a call
// queued on the link (link.h) and sent in the frames Verify's calls leave in, under the same
// window — and answered by the daemon's link reader at once with an empty answer
// (authd/otp/link.py), never by the engine or the store. Its rate beside the empty call
// authd-front answers alone (`--empty-method`, unary.h) is what the link costs; Verify's
// beside it is what the engine costs (docs/otp.md, "The empty linked call: the link's own
// floor").
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/service_type.h>

#include <string>

#include "queues.h"
#include "verify.h"

namespace authd_front {

class EmptyLinkService final : public grpc::Service {
 public:
  // `method`: the full method name served (e.g. /bench.EmptyLink/Call).
  EmptyLinkService(VerifyService& verify, std::string method);
  // Once the server started, before the queues' threads: the first calls requested on each.
  void Start(const ServerQueues& queues) { ServeUnary(method_, queues); }

 private:
  VerifyMethod method_;
};

}  // namespace authd_front
