// A bench tool: one empty unary method (/bench.Empty/Call) served by one of gRPC's server APIs,
// to weigh what each costs a call (docs/smartcard.md, "gRPC's server APIs weighed").
//   callback  CallbackGenericService, a generic reactor as authd-front serves its calls
//   generic   AsyncGenericService on completion queues (request, read, write-and-finish)
//   raw       a raw async unary method (grpc::Service, MarkMethodRaw, RequestAsyncUnary),
//             beside a callback generic service (as authd-front has it; raw-alone: without)
// The completion-queue modes run --cqs=N queues, each drained by one thread that answers
// inline (--threads=T threads a queue). `python -m bench grpc_apis` builds and drives it.
#include <absl/synchronization/mutex.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/rpc_service_method.h>
#include <grpcpp/support/async_unary_call.h>
#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr const char* kMethod = "/bench.Empty/Call";

grpc::ByteBuffer Nothing() {
  grpc::Slice nothing("");
  return grpc::ByteBuffer(&nothing, 1);
}

class Empty final : public grpc::ServerGenericBidiReactor {
 public:
  Empty() : response_(Nothing()) { StartRead(&request_); }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request"));
      return;
    }
    StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
  }
  void OnDone() override { delete this; }
  bool InternalInlineable() override { return true; }

 private:
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
};

class CallbackEmpty final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    return new Empty();
  }
};

struct Tag {
  virtual ~Tag() = default;
  virtual void Proceed(bool ok) = 0;
};

// AsyncGenericService: three trips through the queue a call.
class GenericCall final : public Tag {
 public:
  GenericCall(grpc::AsyncGenericService* service, grpc::ServerCompletionQueue* cq)
      : service_(service), cq_(cq), stream_(&ctx_) {
    service_->RequestCall(&ctx_, &stream_, cq_, cq_, this);
  }
  void Proceed(bool ok) override {
    switch (state_) {
      case kRequested:
        if (!ok) {
          delete this;
          return;
        }
        new GenericCall(service_, cq_);
        state_ = kReading;
        stream_.Read(&request_, this);
        return;
      case kReading:
        state_ = kFinishing;
        if (!ok) {
          stream_.Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request"), this);
          return;
        }
        response_ = Nothing();
        stream_.WriteAndFinish(response_, grpc::WriteOptions(), grpc::Status::OK, this);
        return;
      case kFinishing:
        delete this;
        return;
    }
  }

 private:
  enum State { kRequested, kReading, kFinishing };
  grpc::AsyncGenericService* service_;
  grpc::ServerCompletionQueue* cq_;
  grpc::GenericServerContext ctx_;
  grpc::GenericServerAsyncReaderWriter stream_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  State state_ = kRequested;
};

// A raw async unary method: the request comes with the call, two trips a call.
class RawService final : public grpc::Service {
 public:
  RawService() {
    AddMethod(new grpc::internal::RpcServiceMethod(kMethod, grpc::internal::RpcMethod::NORMAL_RPC,
                                                   nullptr));
    MarkMethodRaw(0);
  }
  void Request(grpc::ServerContext* ctx, grpc::ByteBuffer* request,
               grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>* responder,
               grpc::ServerCompletionQueue* cq, void* tag) {
    RequestAsyncUnary(0, ctx, request, responder, cq, cq, tag);
  }
};

class RawCall final : public Tag {
 public:
  RawCall(RawService* service, grpc::ServerCompletionQueue* cq)
      : service_(service), cq_(cq), responder_(&ctx_) {
    service_->Request(&ctx_, &request_, &responder_, cq_, this);
  }
  void Proceed(bool ok) override {
    if (!requested_ || !ok) {
      delete this;
      return;
    }
    requested_ = false;
    new RawCall(service_, cq_);
    response_ = Nothing();
    responder_.Finish(response_, grpc::Status::OK, this);
  }

 private:
  RawService* service_;
  grpc::ServerCompletionQueue* cq_;
  grpc::ServerContext ctx_;
  grpc::ServerAsyncResponseWriter<grpc::ByteBuffer> responder_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  bool requested_ = true;
};

void Drain(grpc::ServerCompletionQueue* cq) {
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) static_cast<Tag*>(tag)->Proceed(ok);
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::string mode = "callback";
  int port = 0;
  int cqs = 1;
  int per_queue = 1;  // threads draining each queue
  int requested = 4;  // calls requested ahead on each queue
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--mode=", 0) == 0) mode = arg.substr(7);
    else if (arg.rfind("--port=", 0) == 0) port = std::atoi(arg.c_str() + 7);
    else if (arg.rfind("--cqs=", 0) == 0) cqs = std::atoi(arg.c_str() + 6);
    else if (arg.rfind("--threads=", 0) == 0) per_queue = std::atoi(arg.c_str() + 10);
    else if (arg.rfind("--ahead=", 0) == 0) requested = std::atoi(arg.c_str() + 8);
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port),
                           grpc::InsecureServerCredentials(), &port);
  CallbackEmpty callback;
  grpc::AsyncGenericService generic;
  RawService raw;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues;
  if (mode == "callback") {
    builder.RegisterCallbackGenericService(&callback);
  } else if (mode == "generic" || mode == "raw" || mode == "raw-alone") {
    // gRPC 1.51 takes one generic service a server: AsyncGenericService leaves no room for
    // authd-front's callback generic service (the second is dropped with an error).
    if (mode == "generic") builder.RegisterAsyncGenericService(&generic);
    else builder.RegisterService(&raw);
    // A raw method beside the callback generic service, as authd-front would have it.
    if (mode == "raw") builder.RegisterCallbackGenericService(&callback);
    for (int i = 0; i < cqs; ++i) queues.push_back(builder.AddCompletionQueue());
  } else {
    std::cerr << "--mode=callback|generic|raw|raw-alone\n";
    return 2;
  }
  auto server = builder.BuildAndStart();
  if (!server) return 1;
  std::vector<std::thread> threads;
  for (auto& cq : queues) {
    for (int i = 0; i < requested; ++i) {
      if (mode == "generic") new GenericCall(&generic, cq.get());
      else new RawCall(&raw, cq.get());
    }
    for (int i = 0; i < per_queue; ++i) threads.emplace_back(Drain, cq.get());
  }
  std::cout << "listening on port " << port << std::endl;
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  server->Shutdown(std::chrono::system_clock::now());
  for (auto& cq : queues) cq->Shutdown();
  for (auto& t : threads) t.join();
  return 0;
}
