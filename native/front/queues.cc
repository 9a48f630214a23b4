#include "queues.h"

namespace authd_front {

void ServerQueues::AddTo(grpc::ServerBuilder& builder) {
  for (int i = 0; i < count_; ++i) {
    queues_.push_back(builder.AddCompletionQueue());
    raw_.push_back(queues_.back().get());
  }
}

void ServerQueues::Start() {
  for (grpc::ServerCompletionQueue* cq : raw_) {
    threads_.emplace_back([cq] {
      void* tag = nullptr;
      bool ok = false;
      while (cq->Next(&tag, &ok)) static_cast<QueueTag*>(tag)->Proceed(ok);
    });
  }
}

void ServerQueues::Stop() {
  for (grpc::ServerCompletionQueue* cq : raw_) cq->Shutdown();
  for (auto& thread : threads_) thread.join();
  threads_.clear();
}

}  // namespace authd_front
