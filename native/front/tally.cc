#include "tally.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace authd_front {
namespace {

constexpr char kMagic[8] = {'A', 'F', 'T', 'A', 'L', 'L', 'Y', '2'};
constexpr size_t kHeader = 32;
constexpr size_t kGauges = 16;  // the gauges' offset in the header
constexpr size_t kEntry = 192;
constexpr size_t kMethod = 128;
constexpr size_t kReason = 48;
constexpr uint32_t kReady = 2;
constexpr auto kLate = std::chrono::seconds(1);
constexpr const char* kOther = "(other)";  // the last entry, once every other one is taken

// The reason of an error status the front end or the daemon gave (its ErrorInfo), or "".
std::string ReasonOf(const grpc::Status& status) {
  if (status.ok() || status.error_details().empty()) return "";
  google::rpc::Status details;
  if (!details.ParseFromString(status.error_details())) return "";
  for (const auto& any : details.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info)) return info.reason();
  }
  return "";
}

// Counts what the caller was answered: the status sent, or, when the call ended before it
// reached the caller (its deadline passed, it went away), DEADLINE_EXCEEDED or CANCELLED as
// the caller saw it (reason ""). A status sent while the call is live and within its deadline
// is counted as it is sent, before the caller can have it: a call served on a completion queue
// ends (POST_RECV_CLOSE) only when its queue's thread takes its end's tag, which may be after
// the caller read the count.
class TallyInterceptor : public grpc::experimental::Interceptor {
 public:
  TallyInterceptor(Tally& tally, grpc::experimental::ServerRpcInfo* info)
      : tally_(tally), info_(info), method_(info->method() != nullptr ? info->method() : "") {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status status = methods->GetSendStatus();
      code_ = status.error_code();
      reason_ = ReasonOf(status);
      sent_ = true;
      grpc::ServerContextBase* ctx = info_->server_context();
      if (ctx != nullptr && !ctx->IsCancelled() &&
          ctx->deadline() > std::chrono::system_clock::now() && !counted_.exchange(true)) {
        tally_.Count(method_.c_str(), code_, reason_);
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_CLOSE) &&
        !counted_.exchange(true)) {
      grpc::ServerContextBase* ctx = info_->server_context();
      if (ctx != nullptr && ctx->IsCancelled()) {
        // The caller's clock passes its deadline a moment before this one does (the time the
        // request took to come): a call cancelled within kLate of it timed out.
        bool late = ctx->deadline() <= std::chrono::system_clock::now() + kLate;
        tally_.Count(method_.c_str(), late ? grpc::StatusCode::DEADLINE_EXCEEDED
                                           : grpc::StatusCode::CANCELLED, "");
      } else if (sent_) {
        tally_.Count(method_.c_str(), code_, reason_);
      }
    }
    methods->Proceed();
  }

 private:
  Tally& tally_;
  grpc::experimental::ServerRpcInfo* info_;
  std::string method_;
  int code_ = 0;
  std::string reason_;
  bool sent_ = false;
  std::atomic<bool> counted_{false};  // PRE_SEND_STATUS and POST_RECV_CLOSE may race
};

}  // namespace

bool Tally::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  if (fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) < kHeader + kEntry) {
    ::close(fd);
    return false;
  }
  void* map = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ | PROT_WRITE,
                   MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return false;
  auto* base = static_cast<unsigned char*>(map);
  if (std::memcmp(base, kMagic, sizeof kMagic) != 0) return false;
  uint32_t capacity = 0;
  std::memcpy(&capacity, base + 8, sizeof capacity);
  if (kHeader + capacity * kEntry > static_cast<size_t>(st.st_size)) return false;
  std::unique_lock<std::shared_mutex> lock(mu_);
  base_ = base;
  capacity_ = capacity;
  // A restarted front end goes on counting in the entries there are: the first ones, and
  // the last (every other call) once the table was full.
  next_ = 0;
  while (next_ + 1 < capacity_ && Adopt(next_)) ++next_;
  Adopt(capacity_ - 1);
  return true;
}

bool Tally::Adopt(uint32_t index) {
  unsigned char* entry = base_ + kHeader + index * kEntry;
  if (__atomic_load_n(reinterpret_cast<uint32_t*>(entry), __ATOMIC_ACQUIRE) != kReady) {
    return false;
  }
  uint32_t code = 0;
  std::memcpy(&code, entry + 4, sizeof code);
  auto* text = reinterpret_cast<char*>(entry + 16);
  std::string method(text, strnlen(text, kMethod));
  std::string reason(text + kMethod, strnlen(text + kMethod, kReason));
  slots_[{method, std::to_string(static_cast<int>(code)) + "/" + reason}] =
      reinterpret_cast<uint64_t*>(entry + 8);
  return true;
}

uint64_t* Tally::Slot(const std::string& method, int code, const std::string& reason) {
  std::string name = method.size() < kMethod ? method : method.substr(0, kMethod - 1);
  std::string why = reason.size() < kReason ? reason : reason.substr(0, kReason - 1);
  auto key = std::make_pair(name, std::to_string(code) + "/" + why);
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    if (base_ == nullptr) return nullptr;
    auto found = slots_.find(key);
    if (found != slots_.end()) return found->second;
  }
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto found = slots_.find(key);
  if (found != slots_.end()) return found->second;
  uint32_t used = next_;
  if (used + 1 >= capacity_) {  // full: the last entry takes every other call
    name = kOther;
    code = -1;
    why.clear();
    key = std::make_pair(name, std::to_string(code) + "/" + why);
    found = slots_.find(key);
    if (found != slots_.end()) return found->second;
    used = capacity_ - 1;
  }
  unsigned char* entry = base_ + kHeader + used * kEntry;
  uint32_t ucode = static_cast<uint32_t>(code);
  std::memcpy(entry + 4, &ucode, sizeof ucode);
  std::memset(entry + 8, 0, 8 + kMethod + kReason);
  std::memcpy(entry + 16, name.data(), name.size());
  std::memcpy(entry + 16 + kMethod, why.data(), why.size());
  __atomic_store_n(reinterpret_cast<uint32_t*>(entry), kReady, __ATOMIC_RELEASE);
  auto* count = reinterpret_cast<uint64_t*>(entry + 8);
  slots_[key] = count;
  if (used == next_) ++next_;
  return count;
}

uint64_t* Tally::Queued(Queue link) {
  std::shared_lock<std::shared_mutex> lock(mu_);
  if (base_ == nullptr) return nullptr;
  return reinterpret_cast<uint64_t*>(base_ + kGauges) + static_cast<int>(link);
}

uint32_t* Tally::LentStreamSigning() {
  std::shared_lock<std::shared_mutex> lock(mu_);
  if (base_ == nullptr) return nullptr;
  return reinterpret_cast<uint32_t*>(base_ + 12);
}

void Tally::Count(const char* method, int code, const std::string& reason) {
  uint64_t* count = Slot(method, code, reason);
  if (count != nullptr) __atomic_fetch_add(count, 1, __ATOMIC_RELAXED);
}

grpc::experimental::Interceptor* TallyInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new TallyInterceptor(tally_, info);
}

}  // namespace authd_front
