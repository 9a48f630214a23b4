#include "lending.h"

#include <PCSC/pcsclite.h>

#include <algorithm>
#include <vector>

#include "authd/v1/smartcard.pb.h"

namespace authd_front {
namespace {

// Calls served on a lent card told to the daemon in one LEASE_USED part.
constexpr uint32_t kReportEvery = 64;
constexpr size_t kResponseMax = 65536 + 2;  // an extended-length answer and its status word

bool SameCaller(const authd::v1::LinkedCall& call, const authd::v1::CardLease& lease) {
  return call.institution() == lease.institution() && call.role() == lease.role() &&
         call.subject() == lease.subject() && call.has_operator() == lease.has_operator() &&
         call.operator_metadata() == lease.operator_metadata();
}

}  // namespace

CardLender::CardLender(Send send) : send_(std::move(send)) {
  thread_ = std::thread([this] { Run(); });
}

CardLender::~CardLender() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  Drop();
  if (has_context_) SCardReleaseContext(context_);
}

bool CardLender::Connect(const std::string& reader) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!has_context_) {
      if (SCardEstablishContext(SCARD_SCOPE_USER, nullptr, nullptr, &context_) !=
          SCARD_S_SUCCESS) {
        return false;
      }
      has_context_ = true;
    }
    DWORD protocol = 0;
    LONG rv = SCardConnect(context_, reader.c_str(), SCARD_SHARE_EXCLUSIVE,
                           SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &card_, &protocol);
    if (rv == SCARD_S_SUCCESS) {
      pci_ = protocol == SCARD_PROTOCOL_T0 ? *SCARD_PCI_T0 : *SCARD_PCI_T1;
      return true;
    }
    if (rv != SCARD_E_NO_SERVICE && rv != SCARD_E_INVALID_HANDLE) return false;
    SCardReleaseContext(context_);  // pcscd restarted: a new context, once
    has_context_ = false;
  }
  return false;
}

void CardLender::Take(const authd::v1::CardLease& lease, const std::string& method) {
  std::unique_lock<std::mutex> lock(mu_);
  method_ = method;
  taken_ = std::max(taken_, lease.id());
  // Asked back before its answer came (the daemon's recall overtook it): given back already.
  if (lease.id() <= recalled_ahead_) return;
  if (lent_) GiveBack(lock, false), lock.lock();  // one lease at a time
  if (!Connect(lease.reader())) {
    lock.unlock();
    send_(authd::v1::LinkedCall::LEASE_RETURN, lease.id(), method, 0, false);
    return;
  }
  lease_ = lease;
  lent_ = true;
  unreported_ = 0;
  last_used_ = std::chrono::steady_clock::now();
  lock.unlock();
  wake_.notify_all();
}

void CardLender::Recall(uint64_t id) {
  std::unique_lock<std::mutex> lock(mu_);
  if (lent_ && lease_.id() == id) {
    GiveBack(lock, false);  // the daemon connects next and keeps the card's state
    return;
  }
  if (id > taken_) recalled_ahead_ = std::max(recalled_ahead_, id);  // its answer to come
  std::string method = method_;
  lock.unlock();
  send_(authd::v1::LinkedCall::LEASE_RETURN, id, method, 0, false);  // over or not begun
}

void CardLender::GiveBack(std::unique_lock<std::mutex>& lock, bool reset) {
  SCardDisconnect(card_, reset ? SCARD_RESET_CARD : SCARD_LEAVE_CARD);
  lent_ = false;
  uint64_t id = lease_.id();
  uint32_t served = unreported_;
  unreported_ = 0;
  std::string method = method_;
  lock.unlock();
  send_(authd::v1::LinkedCall::LEASE_RETURN, id, method, served, reset);
}

void CardLender::Drop() {
  std::lock_guard<std::mutex> lock(mu_);
  taken_ = recalled_ahead_ = 0;  // a daemon connecting next numbers its leases anew
  if (!lent_) return;
  SCardDisconnect(card_, SCARD_RESET_CARD);
  lent_ = false;
}

bool CardLender::Serve(const authd::v1::LinkedCall& call, std::string* response) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!lent_ || call.method() != method_) return false;
  authd::v1::TransmitRequest request;
  if (call.request().size() > lease_.max_request_bytes() ||
      !request.ParseFromString(call.request()) || request.reader() != lease_.reader()) {
    return false;  // the daemon answers it (another reader: no need of this card)
  }
  if (!SameCaller(call, lease_)) {
    GiveBack(lock, false);  // another caller's: the daemon's
    return false;
  }
  int count = request.apdus_size();
  if (count == 0 || static_cast<uint32_t>(count) > lease_.max_batch()) return false;
  if (count > 1) {
    // Several APDUs go the daemon's way, the card given back first: a PC/SC error part-way
    // would otherwise send the daemon the APDUs the card had executed already.
    GiveBack(lock, false);
    return false;
  }
  const std::string& security = lease_.security_ins();
  for (const auto& apdu : request.apdus()) {
    if (apdu.size() < 4 || apdu.size() > lease_.max_apdu_bytes()) return false;  // refused
    if (security.find(apdu[1]) != std::string::npos) {
      GiveBack(lock, false);  // the daemon drops the state it leaves after the call
      return false;
    }
  }
  static thread_local std::vector<BYTE> buffer(kResponseMax);
  authd::v1::TransmitResponse answer;
  for (const auto& apdu : request.apdus()) {
    DWORD size = static_cast<DWORD>(buffer.size());
    LONG rv = SCardTransmit(card_, &pci_, reinterpret_cast<const BYTE*>(apdu.data()),
                            static_cast<DWORD>(apdu.size()), nullptr, buffer.data(), &size);
    if (rv != SCARD_S_SUCCESS || size < 2) {
      GiveBack(lock, false);  // removed, reset, pcscd gone: the daemon's way says which
      return false;
    }
    auto* out = answer.add_responses();
    out->set_data(reinterpret_cast<const char*>(buffer.data()), size - 2);
    out->set_sw((static_cast<uint32_t>(buffer[size - 2]) << 8) | buffer[size - 1]);
  }
  last_used_ = std::chrono::steady_clock::now();
  uint32_t report = 0;
  if (++unreported_ >= kReportEvery) std::swap(report, unreported_);
  uint64_t id = lease_.id();
  std::string method = method_;
  lock.unlock();
  answer.SerializeToString(response);
  if (report > 0) send_(authd::v1::LinkedCall::LEASE_USED, id, method, report, false);
  return true;
}

void CardLender::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (!lent_) {
      wake_.wait(lock);
      continue;
    }
    auto until = last_used_ + std::chrono::milliseconds(lease_.idle_ms());
    if (std::chrono::steady_clock::now() < until) {
      wake_.wait_until(lock, until);
      continue;
    }
    GiveBack(lock, true);  // idle: the lease ends, with a card reset
    lock.lock();
  }
}

}  // namespace authd_front
