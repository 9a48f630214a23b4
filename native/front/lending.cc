#include "lending.h"

#include <PCSC/pcsclite.h>

#include <algorithm>
#include <limits>

#include "authd/v1/smartcard.pb.h"

namespace authd_front {
namespace {

using Clock = std::chrono::steady_clock;
using Part = authd::v1::LinkedCall;

// Calls served on a lent card told to the daemon in one LEASE_USED part.
constexpr uint32_t kReportEvery = 64;
constexpr size_t kResponseMax = 65536 + 2;  // an extended-length answer and its status word

}  // namespace

CardLender::CardLender(Send send) : send_(std::move(send)) {
  Start([this] { Run(); });
}

CardLender::~CardLender() {
  Stop();
  Drop();
  for (auto& [name, reader] : readers_) {
    if (reader->has_context) SCardReleaseContext(reader->context);
  }
}

std::vector<CardLender::Reader*> CardLender::All() {
  std::vector<Reader*> all;
  all.reserve(readers_.size());
  for (auto& [name, reader] : readers_) all.push_back(reader.get());
  return all;
}

CardLender::Reader* CardLender::Find(const std::string& name) {
  auto it = readers_.find(name);
  return it == readers_.end() ? nullptr : it->second.get();
}

bool CardLender::Connect(Reader& reader, const std::string& name) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!reader.has_context) {
      if (SCardEstablishContext(SCARD_SCOPE_USER, nullptr, nullptr, &reader.context) !=
          SCARD_S_SUCCESS) {
        return false;
      }
      reader.has_context = true;
    }
    DWORD protocol = 0;
    LONG rv = SCardConnect(reader.context, name.c_str(), SCARD_SHARE_EXCLUSIVE,
                           SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &reader.card, &protocol);
    if (rv == SCARD_S_SUCCESS) {
      reader.pci = protocol == SCARD_PROTOCOL_T0 ? *SCARD_PCI_T0 : *SCARD_PCI_T1;
      return true;
    }
    if (rv != SCARD_E_NO_SERVICE && rv != SCARD_E_INVALID_HANDLE) return false;
    SCardReleaseContext(reader.context);  // pcscd restarted: a new context, once
    reader.has_context = false;
  }
  return false;
}

void CardLender::Take(const authd::v1::CardLease& lease, const std::string& answered) {
  // The unary method the lease serves, as the daemon names it (a stream's answer lends it too).
  const std::string& method = lease.method().empty() ? answered : lease.method();
  std::unique_lock<std::mutex> lock(mu_);
  method_ = method;
  stream_method_ = lease.stream_method();
  // Asked back before its answer came (the daemon's recall overtook it): given back already.
  if (recalled_.erase(lease.id()) > 0) return;
  auto& made = readers_[lease.reader()];
  if (!made) made = std::make_unique<Reader>();
  Reader& reader = *made;
  for (auto it = leases_.begin(); it != leases_.end();) {  // the reader's earlier lease is over
    it = it->second == &reader ? leases_.erase(it) : std::next(it);
  }
  leases_[lease.id()] = &reader;
  // Taken before mu_ is let go: a recall of this lease (which finds the reader under mu_,
  // then takes this) waits until the lease has begun.
  std::unique_lock<std::mutex> card(reader.mu);
  lock.unlock();
  std::vector<Part> parts;
  if (reader.lent) GiveBack(reader, false, &parts);  // one lease a reader
  if (Connect(reader, lease.reader())) {
    reader.lease = lease;
    reader.method = method;
    reader.lent = true;
    ++lent_count_;
    reader.unreported = Served();
    reader.streamed = Served();
    reader.answering.clear();
    reader.last_used = Clock::now();
  } else {
    parts.push_back(LeasePart(Part::LEASE_RETURN, lease.id(), method));
  }
  card.unlock();
  SendAll(parts);
  {
    std::lock_guard<std::mutex> relock(mu_);
    ++changes_;
  }
  wake_.notify_all();
}

void CardLender::Recall(uint64_t id) {
  std::unique_lock<std::mutex> lock(mu_);
  auto found = leases_.find(id);
  Part part = LeasePart(Part::LEASE_RETURN, id, method_);
  if (found == leases_.end()) {  // its answer still to come (or long over)
    Recalled(id);
    lock.unlock();
    send_(std::move(part));
    return;
  }
  Reader& reader = *found->second;
  leases_.erase(found);
  lock.unlock();  // only that reader's lock is waited for: an APDU on it, not on another
  std::vector<Part> parts;
  std::unique_lock<std::mutex> card(reader.mu);
  if (reader.lent && reader.lease.id() == id) {
    GiveBack(reader, false, &parts);  // the daemon connects next, the card's state kept
  } else {  // over already (idle, or its card could not be reached): told as such
    parts.push_back(std::move(part));
  }
  card.unlock();
  SendAll(parts);
}

void CardLender::GiveBack(Reader& reader, bool reset, std::vector<Part>* parts) {
  SCardDisconnect(reader.card, reset ? SCARD_RESET_CARD : SCARD_LEAVE_CARD);
  reader.lent = false;
  --lent_count_;
  // Carried out by the card and about to be answered: told now, their lease's last word.
  for (double seconds : reader.answering) reader.streamed.Add(reader.lease.seconds_bounds(), seconds);
  reader.answering.clear();
  if (reader.streamed.calls > 0) {
    parts->push_back(
        LeasePart(Part::LEASE_USED, reader.lease.id(), reader.lease.stream_method()));
    reader.streamed.TellIn(&parts->back());
  }
  Part part = LeasePart(Part::LEASE_RETURN, reader.lease.id(), reader.method);
  part.set_reset(reset);
  reader.unreported.TellIn(&part);
  parts->push_back(std::move(part));
}

bool CardLender::LendsStream(const std::string& method, bool /*opened*/) {
  if (!lent()) return false;
  std::lock_guard<std::mutex> lock(mu_);
  return !method.empty() && method == stream_method_;
}

bool CardLender::Answered(const Unanswered& served) {
  Reader& reader = *static_cast<Reader*>(served.lease.get());
  Part part;
  {
    std::lock_guard<std::mutex> lock(reader.mu);
    auto it = std::find(reader.answering.begin(), reader.answering.end(), served.seconds);
    // Else its lease was given back since: told with the return (the card carried it out).
    if (!reader.lent || reader.lease.id() != served.id || it == reader.answering.end()) {
      return true;
    }
    reader.answering.erase(it);
    reader.streamed.Add(reader.lease.seconds_bounds(), served.seconds);
    if (reader.streamed.calls < kReportEvery) return true;
    part = LeasePart(Part::LEASE_USED, reader.lease.id(), reader.lease.stream_method());
    reader.streamed.TellIn(&part);
  }
  send_(std::move(part));
  return true;
}

void CardLender::SendAll(std::vector<Part>& parts) {
  for (auto& part : parts) send_(std::move(part));
  parts.clear();
}

void CardLender::Drop() {
  std::vector<Reader*> readers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    recalled_.clear();  // a daemon connecting next numbers its leases anew
    leases_.clear();
    readers = All();
  }
  for (Reader* reader : readers) {
    std::lock_guard<std::mutex> card(reader->mu);
    if (!reader->lent) continue;
    SCardDisconnect(reader->card, SCARD_RESET_CARD);
    reader->lent = false;
    --lent_count_;
  }
}

bool CardLender::Serve(const authd::v1::LinkedCall& call, std::string* response,
                       Unanswered* unanswered) {
  if (lent_count_.load(std::memory_order_relaxed) == 0) return false;
  const auto started = Clock::now();
  authd::v1::TransmitRequest request;
  Reader* found = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (call.method() != (unanswered != nullptr ? stream_method_ : method_)) return false;
  }
  if (!request.ParseFromString(call.request())) return false;  // the daemon refuses it
  {
    std::lock_guard<std::mutex> lock(mu_);
    found = Find(request.reader());
  }
  if (found == nullptr) return false;  // a reader never lent: the daemon's
  Reader& reader = *found;
  std::unique_lock<std::mutex> lock(reader.mu);
  const auto& lease = reader.lease;
  // A stream's message is served on a lease of its stream method, as a unary call is.
  const bool streamed = unanswered != nullptr;
  if (!reader.lent ||
      call.method() != (streamed ? lease.stream_method() : reader.method) ||
      call.method().empty() ||
      call.request().size() >
          (streamed ? lease.max_stream_request_bytes() : lease.max_request_bytes())) {
    return false;  // the daemon answers it (not lent now: no need of this card)
  }
  auto give_back = [&] {
    std::vector<Part> parts;
    GiveBack(reader, false, &parts);
    lock.unlock();
    SendAll(parts);
    return false;
  };
  if (!SameCaller(call, reader.lease)) return give_back();  // another caller's: the daemon's
  if (request.apdus_size() == 0) return false;  // refused by the daemon
  // Several APDUs go the daemon's way, the card given back first: a PC/SC error part-way
  // would otherwise send the daemon the APDUs the card had executed already.
  if (request.apdus_size() > 1) return give_back();
  const std::string& apdu = request.apdus(0);
  if (apdu.size() < 4 || apdu.size() > reader.lease.max_apdu_bytes()) return false;  // refused
  // The daemon drops the state it leaves after the call.
  if (reader.lease.security_ins().find(apdu[1]) != std::string::npos) return give_back();
  static thread_local std::vector<BYTE> buffer(kResponseMax);
  DWORD size = static_cast<DWORD>(buffer.size());
  LONG rv = SCardTransmit(reader.card, &reader.pci, reinterpret_cast<const BYTE*>(apdu.data()),
                          static_cast<DWORD>(apdu.size()), nullptr, buffer.data(), &size);
  if (rv != SCARD_S_SUCCESS || size < 2) return give_back();  // removed, reset, pcscd gone
  authd::v1::TransmitResponse answer;
  auto* out = answer.add_responses();
  out->set_data(reinterpret_cast<const char*>(buffer.data()), size - 2);
  out->set_sw((static_cast<uint32_t>(buffer[size - 2]) << 8) | buffer[size - 1]);
  answer.SerializeToString(response);
  reader.last_used = Clock::now();
  const double seconds = std::chrono::duration<double>(reader.last_used - started).count();
  if (streamed) {  // counted once answered (Answered)
    reader.answering.push_back(seconds);
    unanswered->lease = std::shared_ptr<void>(std::shared_ptr<void>(), &reader);  // kept
    unanswered->id = lease.id();
    unanswered->seconds = seconds;
    return true;
  }
  reader.unreported.Add(reader.lease.seconds_bounds(), seconds);
  if (reader.unreported.calls < kReportEvery) return true;
  Part part = LeasePart(Part::LEASE_USED, reader.lease.id(), reader.method);
  reader.unreported.TellIn(&part);
  lock.unlock();
  send_(std::move(part));
  return true;
}

void CardLender::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  std::vector<Part> parts;
  while (!stopping_) {
    uint64_t seen = changes_;
    std::vector<Reader*> readers = All();
    // Each reader's lock is waited for (an APDU in progress) without mu_: another reader's
    // calls and recalls go on meanwhile.
    lock.unlock();
    auto now = Clock::now();
    auto next = Clock::time_point::max();
    for (Reader* reader : readers) {
      std::lock_guard<std::mutex> card(reader->mu);
      if (!reader->lent) continue;
      auto until = reader->last_used + std::chrono::milliseconds(reader->lease.idle_ms());
      if (now >= until) {
        GiveBack(*reader, true, &parts);  // idle: the lease ends, with a card reset
      } else {
        next = std::min(next, until);
      }
    }
    bool sent = !parts.empty();
    SendAll(parts);
    lock.lock();
    if (sent || stopping_ || changes_ != seen) continue;  // a lease begun meanwhile: again
    if (next == Clock::time_point::max()) {
      wake_.wait(lock, [&] { return stopping_ || changes_ != seen; });
    } else {
      wake_.wait_until(lock, next, [&] { return stopping_ || changes_ != seen; });
    }
  }
}

}  // namespace authd_front
