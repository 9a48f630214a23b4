// The link to the daemon's verification engine: a Unix stream socket carrying length-prefixed
// LinkFrames out and LinkAnswers back (authd/v1/engine_link.proto), one answer per frame, in
// order. Calls queue here while the engine is busy and leave in frames of up to batch_max
// verifications, at most `window` frames at a time: at low load a call goes out at once, under
// load the queue grows into larger frames (group commit, adaptive, no timer). A call whose
// caller went away or whose deadline passed while it queued is answered here and never sent.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "authd/v1/engine_link.pb.h"

namespace authd_front {

// One call's verifications on their way to the engine. `done` is called exactly once: with
// the front end's own status (`refused`), or with the engine's answer.
struct Pending {
  uint64_t id = 0;  // set by the link
  authd::v1::LinkCall call;
  size_t items = 0;
  std::chrono::steady_clock::time_point queued;  // set by the link
  grpc::ServerContextBase* ctx = nullptr;  // valid until `done` was called
  std::function<void(const grpc::Status* refused, authd::v1::LinkAnswer* answer)> done;
};

struct LinkOptions {
  std::string path;
  size_t batch_max = 256;
  size_t queue_max = 2048;  // 0: unbounded
  size_t window = 2;
};

class Link {
 public:
  explicit Link(LinkOptions options);
  ~Link();
  // Queues the call, or answers it at once (queue full, engine not connected).
  void Submit(std::unique_ptr<Pending> pending);
  // Seconds per verification of recent frames (for a retry_after).
  double Pace() const { return pace_.load(std::memory_order_relaxed); }
  // Counts a call the front end answered itself, reported to the engine with the next frame.
  void Shed(const std::string& method, const char* code);
  // Where to keep the count of verifications queued here, not yet sent (tally.h).
  void ReportQueued(uint64_t* gauge);
  // Waits until the engine is connected (false: not within `timeout`).
  bool WaitConnected(std::chrono::milliseconds timeout);
  void Stop();

 private:
  struct Frame {
    std::vector<std::unique_ptr<Pending>> calls;
    size_t items = 0;
    std::chrono::steady_clock::time_point sent;
  };
  void Run();
  bool Connect();
  void Serve(int fd);
  void Receive(int fd);
  void FailAll(const grpc::Status& in_flight, const grpc::Status& queued);
  std::vector<std::unique_ptr<Pending>> TakeFrame(std::unique_lock<std::mutex>& lock,
                                                  size_t* items);
  void Queued();  // queued_items_ changed (mu_ held)

  const LinkOptions options_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Pending>> queue_;
  size_t queued_items_ = 0;
  uint64_t* queued_gauge_ = nullptr;
  std::deque<Frame> in_flight_;
  std::map<std::pair<std::string, std::string>, uint64_t> shed_;
  bool connected_ = false;
  bool broken_ = false;
  bool stopping_ = false;
  uint64_t next_id_ = 0;
  std::atomic<double> pace_{0.0001};
  std::thread thread_;
};

}  // namespace authd_front
