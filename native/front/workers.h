// A few threads that run the jobs handed to them, in the order given (the requests of lent
// SignStreams signed while their streams read on: calls.cc, LinkedStreamReactor). The threads
// start with the first job, so a front end that signs no stream has none.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace authd_front {

class Workers {
 public:
  explicit Workers(size_t threads) : size_(threads) {}
  ~Workers();  // runs the jobs queued, then joins the threads
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;
  void Run(std::function<void()> job);

 private:
  void Loop();

  const size_t size_;
  std::mutex mu_;  // guards what follows
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

}  // namespace authd_front
