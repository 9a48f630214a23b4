// The server's completion queues (--queues, [server] front_queues, 2 by default), each drained
// by one thread of its own that runs every tag it takes (QueueTag::Proceed). Every service
// requests its calls on every queue (unary.h, verify.h, streams.h, forward.h); gRPC hands a
// connection's calls to its own queue first, so with several queues a thread busy with one call
// (waiting on the link for its answer, on a lent card, on a token's signature) does not hold the
// calls of every connection. Each queue more costs wake-ups: with epoll1 one thread polls for
// all of them and hands a call's events to the thread of its queue, so one queue is cheapest for
// a call alone in flight and two served four token signers best (docs/smartcard.md, "How many
// completion queues"). One thread a queue: a second thread on a queue costs a hand-over of its
// poll a call, about as much as gRPC's callback API ("gRPC's server APIs weighed").
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <thread>
#include <vector>

namespace authd_front {

// What a queue's thread runs when it takes a tag: `ok` as the queue gave it.
struct QueueTag {
  virtual ~QueueTag() = default;
  virtual void Proceed(bool ok) = 0;
};

// A QueueTag that calls a member function of its object.
template <typename T>
struct QueueStep final : QueueTag {
  T* self;
  void (T::*step)(bool ok);
  QueueStep(T* s, void (T::*f)(bool)) : self(s), step(f) {}
  void Proceed(bool ok) override { (self->*step)(ok); }
};

class ServerQueues {
 public:
  explicit ServerQueues(int count) : count_(count) {}
  // Before the server is built.
  void AddTo(grpc::ServerBuilder& builder);
  const std::vector<grpc::ServerCompletionQueue*>& all() const { return raw_; }
  // Once the server started and every service requested its first calls: the threads.
  void Start();
  // Once the server shut down (every call answered): the queues drained and their threads
  // joined.
  void Stop();

 private:
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  std::vector<grpc::ServerCompletionQueue*> raw_;
  std::vector<std::thread> threads_;
  const int count_;
};

}  // namespace authd_front
