#include "lent_calls.h"

#include <algorithm>

namespace authd_front {

void LentCalls::Add(const google::protobuf::RepeatedField<double>& bounds, double seconds) {
  if (bucket_calls.empty()) {
    bucket_calls.assign(bounds.size() + 1, 0);
    bucket_seconds.assign(bounds.size() + 1, 0.0);
  }
  // The first bucket whose bound is not below it (Prometheus: a value <= its bucket's bound).
  size_t bucket = std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin();
  ++bucket_calls[bucket];
  bucket_seconds[bucket] += seconds;
  ++calls;
}

void LentCalls::TellIn(authd::v1::LinkedCall* part) {
  part->set_served(calls);
  if (calls > 0) {
    part->mutable_bucket_calls()->Add(bucket_calls.begin(), bucket_calls.end());
    part->mutable_bucket_seconds()->Add(bucket_seconds.begin(), bucket_seconds.end());
  }
  *this = LentCalls();
}

authd::v1::LinkedCall LeasePart(authd::v1::LinkedCall::Part kind, uint64_t id,
                                const std::string& method) {
  authd::v1::LinkedCall part;
  part.set_part(kind);
  part.set_id(id);
  part.set_method(method);
  return part;
}

namespace {
constexpr size_t kRecalledKept = 64;
}  // namespace

void Lender::Start(std::function<void()> run) { thread_ = std::thread(std::move(run)); }

void Lender::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Lender::Recalled(uint64_t id) {
  recalled_.insert(id);
  if (recalled_.size() > kRecalledKept) recalled_.erase(recalled_.begin());
}

}  // namespace authd_front
