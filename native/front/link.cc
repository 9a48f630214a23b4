#include "link.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>

#include "framing.h"
#include "status.h"

namespace authd_front {
namespace {

constexpr uint32_t kMaxAnswer = 64u << 20;

}  // namespace

Link::Link(LinkOptions options) : options_(std::move(options)) {
  thread_ = std::thread([this] { Run(); });
}

Link::~Link() { Stop(); }

void Link::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Link::WaitConnected(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return wake_.wait_for(lock, timeout, [this] { return connected_ || stopping_; }) &&
         connected_;
}

void Link::Shed(const std::string& method, const char* code) {
  std::lock_guard<std::mutex> lock(mu_);
  ++shed_[{method, code}];
}

void Link::ReportQueued(uint64_t* gauge) {
  std::lock_guard<std::mutex> lock(mu_);
  queued_gauge_ = gauge;
  Queued();
}

void Link::Queued() {
  if (queued_gauge_ != nullptr) {
    __atomic_store_n(queued_gauge_, static_cast<uint64_t>(queued_items_), __ATOMIC_RELEASE);
  }
}

void Link::Submit(std::unique_ptr<Pending> pending) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!connected_ || stopping_) {
    lock.unlock();
    grpc::Status down = EngineDown();
    pending->done(&down, nullptr);
    return;
  }
  if (options_.queue_max && queued_items_ + pending->items > options_.queue_max &&
      queued_items_ > 0) {
    int64_t queued = static_cast<int64_t>(queued_items_);
    lock.unlock();
    double retry = std::clamp(static_cast<double>(queued) * Pace(), 0.01, 5.0);
    grpc::Status busy = QueueFull(queued, retry);
    Shed(pending->call.method(), "RESOURCE_EXHAUSTED");
    pending->done(&busy, nullptr);
    return;
  }
  queued_items_ += pending->items;
  Queued();
  pending->queued = std::chrono::steady_clock::now();
  pending->id = ++next_id_;
  pending->call.set_id(pending->id);
  queue_.push_back(std::move(pending));
  lock.unlock();
  wake_.notify_one();
}

std::vector<std::unique_ptr<Pending>> Link::TakeFrame(std::unique_lock<std::mutex>& lock,
                                                      size_t* items) {
  std::vector<std::unique_ptr<Pending>> frame;
  std::vector<std::pair<std::unique_ptr<Pending>, bool>> dropped;  // (call, deadline passed)
  auto now = std::chrono::system_clock::now();
  *items = 0;
  while (!queue_.empty() && (*items < options_.batch_max || frame.empty())) {
    std::unique_ptr<Pending> next = std::move(queue_.front());
    queue_.pop_front();
    queued_items_ -= next->items;
    Queued();
    if (next->ctx != nullptr && next->ctx->IsCancelled()) {
      dropped.emplace_back(std::move(next), false);
    } else if (next->ctx != nullptr && next->ctx->deadline() < now) {
      dropped.emplace_back(std::move(next), true);
    } else {
      *items += next->items;
      frame.push_back(std::move(next));
    }
  }
  if (!dropped.empty()) {
    lock.unlock();
    for (auto& [call, late] : dropped) {
      grpc::Status why = late ? DeadlinePassed() : GaveUp();
      Shed(call->call.method(), late ? "DEADLINE_EXCEEDED" : "CANCELLED");
      call->done(&why, nullptr);
    }
    lock.lock();
  }
  return frame;
}

bool Link::Connect() {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, options_.path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    connected_ = true;
    broken_ = false;
  }
  wake_.notify_all();
  Serve(fd);
  ::close(fd);
  return true;
}

void Link::Run() {
  auto delay = std::chrono::milliseconds(20);
  bool was_connected = false;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stopping_) break;
    }
    if (Connect()) {
      was_connected = true;
      delay = std::chrono::milliseconds(20);
      std::cerr << "authd-front: the verification engine link closed\n";
    } else if (was_connected) {
      delay = std::min(delay * 2, std::chrono::milliseconds(1000));
    }
    std::unique_lock<std::mutex> lock(mu_);
    wake_.wait_for(lock, delay, [this] { return stopping_; });
  }
  FailAll(EngineLost(), EngineDown());
}

void Link::Serve(int fd) {
  std::thread receiver([this, fd] { Receive(fd); });
  std::string bytes;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    wake_.wait(lock, [this] {
      return stopping_ || broken_ || (!queue_.empty() && in_flight_.size() < options_.window);
    });
    if (broken_) break;
    if (stopping_) {  // the server has shut down: let the frames in flight come back
      wake_.wait(lock, [this] { return broken_ || in_flight_.empty(); });
      break;
    }
    size_t items = 0;
    std::vector<std::unique_ptr<Pending>> calls = TakeFrame(lock, &items);
    if (calls.empty()) continue;
    authd::v1::LinkFrame frame;
    auto now = std::chrono::steady_clock::now();
    auto oldest = now;
    for (auto& call : calls) {
      oldest = std::min(oldest, call->queued);
      frame.add_calls()->Swap(&call->call);
    }
    frame.set_queued_us(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(now - oldest).count()));
    for (auto& [key, count] : shed_) {
      auto* shed = frame.add_shed();
      shed->set_method(key.first);
      shed->set_code(key.second);
      shed->set_count(count);
    }
    shed_.clear();
    // Its answers may come back before send() returns: it is in flight first.
    Frame& sent = in_flight_.emplace_back();
    sent.calls = std::move(calls);
    sent.items = items;
    sent.sent = now;
    lock.unlock();
    frame.set_sent_ns(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::steady_clock::now().time_since_epoch())
            .count()));
    bytes.clear();
    AppendFrame(frame, &bytes);
    bool ok = WriteAll(fd, bytes.data(), bytes.size());
    lock.lock();
    if (!ok) {
      broken_ = true;
      break;
    }
  }
  broken_ = true;
  connected_ = false;
  lock.unlock();
  ::shutdown(fd, SHUT_RDWR);
  receiver.join();
  FailAll(EngineLost(), EngineDown());
}

void Link::Receive(int fd) {
  FrameReader frames(fd, kMaxAnswer);
  std::string bytes;
  while (true) {
    if (!frames.Next(&bytes)) break;
    authd::v1::LinkAnswers answers;
    if (!answers.ParseFromString(bytes)) break;
    Frame frame;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (in_flight_.empty()) break;  // an answer nobody asked for: a broken link
      frame = std::move(in_flight_.front());
      in_flight_.pop_front();
    }
    wake_.notify_all();
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - frame.sent)
                      .count();
    if (frame.items > 0) {
      double pace = took / static_cast<double>(frame.items);
      pace_.store(0.8 * Pace() + 0.2 * pace, std::memory_order_relaxed);
    }
    int next = 0;
    for (auto& call : frame.calls) {
      authd::v1::LinkAnswer* found = nullptr;
      if (next < answers.calls_size() && answers.calls(next).id() == call->id) {
        found = answers.mutable_calls(next++);
      }
      if (found == nullptr) {
        grpc::Status lost = Mismatch();
        call->done(&lost, nullptr);
      } else {
        call->done(nullptr, found);
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    broken_ = true;
  }
  wake_.notify_all();
}

void Link::FailAll(const grpc::Status& in_flight, const grpc::Status& queued) {
  std::deque<Frame> frames;
  std::deque<std::unique_ptr<Pending>> waiting;
  {
    std::lock_guard<std::mutex> lock(mu_);
    frames.swap(in_flight_);
    if (stopping_ || !connected_) {
      waiting.swap(queue_);
      queued_items_ = 0;
      Queued();
    }
  }
  for (auto& frame : frames) {
    for (auto& call : frame.calls) call->done(&in_flight, nullptr);
  }
  for (auto& call : waiting) call->done(&queued, nullptr);
}

}  // namespace authd_front
