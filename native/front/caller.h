// Who is calling: the client certificate's O, OU and CN (or, in the insecure development mode,
// the caller metadata), parsed once per certificate and cached. The front end does not judge
// the caller: the daemon checks every part as it checks any caller, and says why it refuses.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace authd_front {

struct Names {
  std::string institution;  // O
  std::string role;         // OU
  std::string subject;      // CN
};

struct Caller {
  Names names;
  // Set once the daemon accepted this caller for verifications (a stream asks it first).
  mutable std::atomic<bool> verified{false};
};

class Callers {
 public:
  explicit Callers(bool insecure) : insecure_(insecure) {}
  // The caller of a call; never null (parts the call does not carry are empty).
  std::shared_ptr<const Caller> Of(const grpc::ServerContextBase& ctx);

 private:
  std::shared_ptr<const Caller> Cached(const std::string& key,
                                       const std::function<Names()>& make);
  bool insecure_;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const Caller>> cache_;
};

}  // namespace authd_front
