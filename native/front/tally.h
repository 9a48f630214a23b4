// Every call the front end answers, counted by method, status code and reason, in a file the
// daemon maps into its metrics endpoint (authd/front_tally.py): calls the front end answers
// itself (admission, requests that do not parse, deadlines, the daemon unreachable) never
// reach the daemon's own counters. The file is a table of fixed-size entries; a count is an
// atomic add on the mapped page, so the daemon reads it exact at any moment, and a front end
// restarted by the daemon goes on counting in the same entries.
//
// The header also carries two gauges the front end sets as they change: what waits in its
// links, not yet sent to the daemon (verifications in the engine's link, calls and stream
// parts in the call link); the daemon serves them as authd_front_queued{link}. And the most
// requests of one lent SignStream that were signing at once (calls.cc), a high-water mark
// served as authd_front_lent_stream_signing_max.
//
//   header (32 bytes): "AFTALLY2" u32 capacity u32 most lent stream requests signing at once |
//                      u64 engine queued | u64 calls queued
//   entry (192 bytes): u32 state (2: ready) | u32 code | u64 count | char method[128] |
//                      char reason[48]   (texts NUL-padded; the last entry, method "(other)"
//                      and code -1, takes every call once the others are all taken)
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

namespace authd_front {

class Tally {
 public:
  // Maps `path` (created by the daemon); false when it cannot.
  bool Open(const std::string& path);
  void Count(const char* method, int code, const std::string& reason);
  enum class Queue { kEngine = 0, kCalls = 1 };
  // Where the gauge of what waits in that link is kept (nullptr when no tally is open).
  uint64_t* Queued(Queue link);
  // Where the most lent stream requests signing at once is kept (nullptr: no tally open).
  uint32_t* LentStreamSigning();

 private:
  uint64_t* Slot(const std::string& method, int code, const std::string& reason);
  bool Adopt(uint32_t index);  // an entry a previous front end made, if there is one

  std::shared_mutex mu_;
  unsigned char* base_ = nullptr;
  uint32_t capacity_ = 0;
  uint32_t next_ = 0;  // the first free entry
  std::map<std::pair<std::string, std::string>, uint64_t*> slots_;  // (method, code/reason)
};

class TallyInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit TallyInterceptorFactory(Tally& tally) : tally_(tally) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  Tally& tally_;
};

}  // namespace authd_front
