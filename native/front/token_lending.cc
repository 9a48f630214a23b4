#include "token_lending.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "authd/v1/token.pb.h"

namespace authd_front {
namespace {

using Part = authd::v1::LinkedCall;

// Calls served on a lent login told to the daemon in one LEASE_USED part at most.
constexpr uint32_t kReportEvery = 64;
// Instances of a lease's module, each logged in (at most this many Signs of one lease run at
// once, as many as unary.h's queue threads).
constexpr size_t kInstances = 4;
constexpr size_t kMaxKeyId = 64;  // devices/token MAX_KEY_ID
constexpr size_t kSha256 = 32;
constexpr size_t kSignatureMax = 1024;  // an RSA-8192 signature
// A Sign on a session copy of a key reads the key's token object first when this long has
// passed since it was last seen (Lease::checked): a removed token or a key deleted behind the
// daemon's back stops the lease's signing within it, at ~30 µs per check (docs/token.md).
constexpr auto kCheckEvery = std::chrono::milliseconds(10);
// TokenSignAlgorithm (token.proto)
constexpr int kDefault = 0;
constexpr int kEcdsa = 1;
constexpr int kRsaPkcs1 = 2;
constexpr int kRsaPss = 3;
// DigestInfo { sha256, OCTET STRING(32) } before the hash (RFC 8017 9.2, note 1).
constexpr unsigned char kSha256DigestInfo[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                               0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                               0x01, 0x05, 0x00, 0x04, 0x20};

void AppendLength(size_t n, std::string* out) {
  if (n >= 0x80) out->push_back(static_cast<char>(0x81));  // < 256: one length byte
  out->push_back(static_cast<char>(n));
}

// One unsigned big-endian integer as a DER INTEGER (its shortest form, positive).
std::string DerInteger(const unsigned char* data, size_t size) {
  while (size > 1 && data[0] == 0) {
    ++data;
    --size;
  }
  std::string out(1, '\x02');
  bool pad = (data[0] & 0x80) != 0;
  AppendLength(size + (pad ? 1 : 0), &out);
  if (pad) out.push_back('\0');
  out.append(reinterpret_cast<const char*>(data), size);
  return out;
}

// PKCS#11's r||s as a DER Ecdsa-Sig-Value (as devices/token encode_ecdsa); false: malformed.
bool EncodeEcdsa(const unsigned char* raw, size_t size, std::string* out) {
  if (size == 0 || size % 2 != 0 || size > 2 * 66) return false;
  std::string body = DerInteger(raw, size / 2) + DerInteger(raw + size / 2, size / 2);
  out->assign(1, '\x30');
  AppendLength(body.size(), out);
  out->append(body);
  return true;
}

// Whether `module` is SoftHSM2 (as drivers/pkcs11 signs_with_copies): it checks a token
// object's files at every use of it, a session object's not.
bool SignsWithCopies(Pkcs11Module& module) {
  CK_INFO info{};
  if (module.f()->C_GetInfo(&info) != CKR_OK) return false;
  std::string maker(reinterpret_cast<const char*>(info.manufacturerID),
                    sizeof(info.manufacturerID));
  std::transform(maker.begin(), maker.end(), maker.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return maker.find("softhsm") != std::string::npos;
}

}  // namespace

TokenLender::TokenLender(Send send) : send_(std::move(send)) {
  Start([this] { Run(); });
}

TokenLender::~TokenLender() {
  Stop();
  Drop();
}

void TokenLender::Take(authd::v1::TokenLease* lease, const std::string& method) {
  const auto taken = Clock::now();  // the lease's limits count from here, before its logins
  auto wipe = [lease] {
    std::string* pin = lease->mutable_pin();
    if (!pin->empty()) OPENSSL_cleanse(&(*pin)[0], pin->size());
    lease->clear_pin();
  };
  bool held;  // the handle is lent already (not from this daemon's leases): declined
  {
    std::lock_guard<std::mutex> lock(mu_);
    method_ = method;
    // Asked back before its answer came (the recall overtook it): answered already.
    if (recalled_.erase(lease->id()) > 0) {
      wipe();
      return;
    }
    held = by_handle_.count(lease->handle()) > 0;
  }
  std::vector<Instance> instances;
  if (!held) {
    std::lock_guard<std::mutex> loading(modules_mu_);
    auto& loaded = modules_[lease->module()];
    bool used = false;  // another lease uses the module's instances: never re-initialized
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [handle, other] : by_handle_) {
        used = used || other->info.module() == lease->module();
      }
    }
    for (size_t i = 0; i < kInstances; ++i) {
      if (loaded.size() <= i) {
        auto module = Pkcs11Module::Load(lease->module(), i > 0);
        if (!module) break;
        loaded.push_back(std::move(module));
      }
      Instance instance;
      instance.module = loaded[i].get();
      instance.copies = SignsWithCopies(*instance.module);
      // A token this instance has not seen (SoftHSM2 scans its tokens only when it is
      // initialized): initialized again, unless another lease uses the module.
      if (!instance.module->FindSlot(lease->serial(), &instance.slot) &&
          (used || !instance.module->Reinitialize() ||
           !instance.module->FindSlot(lease->serial(), &instance.slot))) {
        break;
      }
      auto* f = instance.module->f();
      CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
      if (f->C_OpenSession(instance.slot, CKF_SERIAL_SESSION, nullptr, nullptr, &session) !=
          CKR_OK) {
        break;
      }
      std::string* pin = lease->mutable_pin();
      CK_RV rv = f->C_Login(session, CKU_USER, reinterpret_cast<unsigned char*>(&(*pin)[0]),
                            pin->size());
      if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        f->C_CloseSession(session);
        break;
      }
      instance.sessions.push_back(session);
      instances.push_back(std::move(instance));
    }
  }
  wipe();
  if (instances.empty()) {  // declined: the daemon keeps signing
    send_(LeasePart(Part::LEASE_RETURN, lease->id(), method));
    return;
  }
  auto made = std::make_shared<Lease>();
  made->info = *lease;
  made->method = method;
  made->instances = std::move(instances);
  made->last_used = taken - std::chrono::milliseconds(lease->idle_ms()) +
                    std::chrono::milliseconds(lease->idle_left_ms());
  made->ends = taken + std::chrono::milliseconds(lease->max_left_ms());
  made->checked = taken;
  {
    std::lock_guard<std::mutex> lock(mu_);
    by_handle_[lease->handle()] = std::move(made);
    ++lent_count_;
  }
}

std::shared_ptr<TokenLender::Lease> TokenLender::Remove(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = by_handle_.begin(); it != by_handle_.end(); ++it) {
    if (it->second->info.id() == id) {
      auto lease = std::move(it->second);
      by_handle_.erase(it);
      --lent_count_;
      return lease;
    }
  }
  return nullptr;
}

void TokenLender::End(const std::shared_ptr<Lease>& lease, bool tell) {
  Part part;
  Part streamed;  // the stream requests not told, ahead of the return
  {
    std::unique_lock<std::mutex> lock(lease->mu);
    lease->over = true;
    lease->idle.wait(lock, [&] { return lease->busy == 0; });  // its answers first
    for (Instance& instance : lease->instances) {
      auto* f = instance.module->f();
      if (!instance.sessions.empty()) {
        // Its copies of keys (a logout and the sessions' close end them too, as PKCS#11 has
        // it; destroyed here in any case, before the login that made them ends).
        for (auto& [id, key] : instance.keys) {
          if (key.copy != CK_INVALID_HANDLE) {
            f->C_DestroyObject(instance.sessions.front(), key.copy);
          }
        }
        f->C_Logout(instance.sessions.front());
      }
      for (CK_SESSION_HANDLE session : instance.sessions) f->C_CloseSession(session);
    }
    lease->instances.clear();
    part = LeasePart(Part::LEASE_RETURN, lease->info.id(), lease->method);
    lease->unreported.TellIn(&part);
    streamed = LeasePart(Part::LEASE_USED, lease->info.id(), lease->info.stream_method());
    lease->streamed.TellIn(&streamed);
  }
  if (tell && streamed.served() > 0) send_(std::move(streamed));
  if (tell) send_(std::move(part));
}

bool TokenLender::Expired(const Lease& lease, Clock::time_point now) {
  return now >= lease.ends ||
         now - lease.last_used >= std::chrono::milliseconds(lease.info.idle_ms());
}

bool TokenLender::LendsStream(const std::string& method, bool opened) {
  if (opened || !lent()) return false;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [handle, lease] : by_handle_) {
    if (lease->info.stream_method() == method) return true;
  }
  return false;
}

void TokenLender::Recall(uint64_t id) {
  if (auto lease = Remove(id)) {
    End(lease, true);
    return;
  }
  Part part;
  {
    std::lock_guard<std::mutex> lock(mu_);  // over, or its answer still to come
    Recalled(id);
    part = LeasePart(Part::LEASE_RETURN, id, method_);
  }
  send_(std::move(part));
}

void TokenLender::Drop() {
  std::map<std::string, std::shared_ptr<Lease>> leases;
  {
    std::lock_guard<std::mutex> lock(mu_);
    leases.swap(by_handle_);
    lent_count_ = 0;
    recalled_.clear();  // a daemon connecting next numbers its leases anew
  }
  for (auto& [handle, lease] : leases) End(lease, false);
}

TokenLender::Signed TokenLender::Sign(Lease& lease, Instance& instance,
                                      CK_SESSION_HANDLE session, const std::string& key_id,
                                      int algorithm, const unsigned char* hash,
                                      std::string* signature, int* chosen) {
  auto* f = instance.module->f();
  Key key{};
  bool known;
  bool check = false;  // the token object read first (a Sign on a copy, kCheckEvery passed)
  {
    std::lock_guard<std::mutex> lock(lease.mu);
    auto it = instance.keys.find(key_id);
    known = it != instance.keys.end();
    if (known) {
      key = it->second;
      if (key.copy != CK_INVALID_HANDLE) {
        auto now = Clock::now();
        check = now - lease.checked >= kCheckEvery;
        if (check) lease.checked = now;
      }
    }
  }
  if (!known) {
    CK_OBJECT_CLASS klass = CKO_PRIVATE_KEY;
    CK_BBOOL on_token = CK_TRUE;  // never a session copy
    CK_ATTRIBUTE find[] = {
        {CKA_CLASS, &klass, sizeof(klass)},
        {CKA_ID, const_cast<char*>(key_id.data()), key_id.size()},
        {CKA_TOKEN, &on_token, sizeof(on_token)},
    };
    if (f->C_FindObjectsInit(session, find, 3) != CKR_OK) return Signed::kFailed;
    CK_ULONG found = 0;
    CK_RV rv = f->C_FindObjects(session, &key.handle, 1, &found);
    if (f->C_FindObjectsFinal(session) != CKR_OK || rv != CKR_OK) return Signed::kFailed;
    if (found == 0) return Signed::kNotHere;  // the daemon answers NOT_FOUND
    CK_ATTRIBUTE type = {CKA_KEY_TYPE, &key.type, sizeof(key.type)};
    if (f->C_GetAttributeValue(session, key.handle, &type, 1) != CKR_OK) return Signed::kFailed;
    key.copy = CK_INVALID_HANDLE;
    CK_BBOOL in_session = CK_FALSE;
    CK_ATTRIBUTE as_session[] = {{CKA_TOKEN, &in_session, sizeof(in_session)}};
    if (instance.copies &&
        f->C_CopyObject(session, key.handle, as_session, 1, &key.copy) != CKR_OK) {
      key.copy = CK_INVALID_HANDLE;  // a key that will not be copied: signed on the token
    }
    const CK_OBJECT_HANDLE made_copy = key.copy;
    bool first;
    {
      std::lock_guard<std::mutex> lock(lease.mu);
      auto [it, made] = instance.keys.emplace(key_id, key);
      first = made;
      if (!made) key = it->second;  // another Sign on this instance found it first: its copy
    }
    if (!first && made_copy != CK_INVALID_HANDLE) f->C_DestroyObject(session, made_copy);
  }
  if (check) {  // a removed token, a deleted key: the error a Sign on the token object meets
    CK_BBOOL can_sign = CK_FALSE;
    CK_ATTRIBUTE sign = {CKA_SIGN, &can_sign, sizeof(can_sign)};
    if (f->C_GetAttributeValue(session, key.handle, &sign, 1) != CKR_OK) return Signed::kFailed;
  }
  const CK_OBJECT_HANDLE signer = key.copy != CK_INVALID_HANDLE ? key.copy : key.handle;
  CK_RSA_PKCS_PSS_PARAMS pss{CKM_SHA256, CKG_MGF1_SHA256, kSha256};
  CK_MECHANISM mechanism{CKM_ECDSA, nullptr, 0};
  unsigned char payload[sizeof(kSha256DigestInfo) + kSha256];
  size_t payload_size = kSha256;
  std::memcpy(payload, hash, kSha256);
  if (key.type == CKK_EC) {
    if (algorithm != kDefault && algorithm != kEcdsa) return Signed::kNotHere;
    *chosen = kEcdsa;
  } else if (key.type == CKK_RSA) {
    if (algorithm == kEcdsa) return Signed::kNotHere;
    *chosen = algorithm == kRsaPss ? kRsaPss : kRsaPkcs1;
    if (*chosen == kRsaPss) {
      mechanism = {CKM_RSA_PKCS_PSS, &pss, sizeof(pss)};
    } else {
      mechanism = {CKM_RSA_PKCS, nullptr, 0};
      std::memcpy(payload, kSha256DigestInfo, sizeof(kSha256DigestInfo));
      std::memcpy(payload + sizeof(kSha256DigestInfo), hash, kSha256);
      payload_size = sizeof(payload);
    }
  } else {
    return Signed::kNotHere;  // the daemon refuses it
  }
  if (f->C_SignInit(session, &mechanism, signer) != CKR_OK) return Signed::kFailed;
  unsigned char raw[kSignatureMax];
  CK_ULONG size = sizeof(raw);
  if (f->C_Sign(session, payload, payload_size, raw, &size) != CKR_OK) return Signed::kFailed;
  if (key.type == CKK_EC) return EncodeEcdsa(raw, size, signature) ? Signed::kYes : Signed::kFailed;
  signature->assign(reinterpret_cast<const char*>(raw), size);
  return Signed::kYes;
}

void TokenLender::Count(Lease& lease, LentCalls& told, const std::string& method,
                        double seconds, Part* part, bool* tell, bool* first) {
  told.Add(lease.info.seconds_bounds(), seconds);
  *first = lease.unreported.calls + lease.streamed.calls == 1;
  if (*first) lease.first_untold = Clock::now();
  if (told.calls >= kReportEvery) {
    *part = LeasePart(Part::LEASE_USED, lease.info.id(), method);
    told.TellIn(part);
    *tell = true;
  }
}

void TokenLender::Report(bool tell, bool first, Part part) {
  if (tell) {
    send_(std::move(part));
  } else if (first) {
    { std::lock_guard<std::mutex> lock(mu_); }  // Run is waiting, or sees this call
    wake_.notify_all();
  }
}

bool TokenLender::Answered(const Unanswered& signature) {
  Lease& lease = *static_cast<Lease*>(signature.lease.get());
  bool tell = false;
  bool first = false;
  Part part;
  {
    std::lock_guard<std::mutex> lock(lease.mu);
    if (lease.over) return false;  // its LEASE_RETURN is told, or being told, without it
    Count(lease, lease.streamed, lease.info.stream_method(), signature.seconds, &part, &tell,
          &first);
  }
  Report(tell, first, std::move(part));
  return true;
}

bool TokenLender::Serve(const Part& call, std::string* response, Unanswered* unanswered) {
  if (!lent()) return false;
  const auto started = Clock::now();
  authd::v1::TokenSignRequest request;
  if (!request.ParseFromString(call.request())) return false;  // the daemon refuses it
  std::shared_ptr<Lease> lease;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_handle_.find(request.session());
    if (it == by_handle_.end()) return false;
    lease = it->second;
  }
  const auto& info = lease->info;
  const bool streamed = !info.stream_method().empty() && call.method() == info.stream_method();
  // Another caller's, a larger request, the token hashing, a key id the daemon refuses:
  // the daemon's answers.
  if ((call.method() != lease->method && !streamed) || !SameCaller(call, info) ||
      call.request().size() >
          (streamed ? info.max_stream_request_bytes() : info.max_request_bytes()) ||
      request.token_hashes() ||
      request.algorithm() < kDefault || request.algorithm() > kRsaPss ||
      request.key_id().empty() || request.key_id().size() > kMaxKeyId) {
    return false;
  }
  unsigned char hash[kSha256];
  if (request.input_case() == authd::v1::TokenSignRequest::kData) {
    if (request.data().size() > info.max_sign_bytes()) return false;
    SHA256(reinterpret_cast<const unsigned char*>(request.data().data()), request.data().size(),
           hash);
  } else if (request.input_case() == authd::v1::TokenSignRequest::kDigest &&
             request.digest().size() == kSha256) {
    std::memcpy(hash, request.digest().data(), kSha256);
  } else {
    return false;
  }
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
  Instance* instance = nullptr;  // the least busy
  {
    std::unique_lock<std::mutex> lock(lease->mu);
    if (lease->over) return false;
    if (Expired(*lease, started)) {  // the login's limits passed: given back, the daemon
      lock.unlock();                 // answers (NOT_FOUND)
      if (auto ended = Remove(info.id())) End(ended, true);
      return false;
    }
    lease->last_used = std::max(lease->last_used, started);
    ++lease->busy;
    for (Instance& each : lease->instances) {
      if (instance == nullptr || each.busy < instance->busy) instance = &each;
    }
    ++instance->busy;
    if (!instance->sessions.empty()) {
      session = instance->sessions.back();
      instance->sessions.pop_back();
    }
  }
  auto* f = instance->module->f();
  Signed signed_ = Signed::kFailed;
  std::string signature;
  int chosen = kDefault;
  if (session != CK_INVALID_HANDLE ||
      f->C_OpenSession(instance->slot, CKF_SERIAL_SESSION, nullptr, nullptr, &session) ==
          CKR_OK) {
    signed_ = Sign(*lease, *instance, session, request.key_id(), request.algorithm(), hash,
                   &signature, &chosen);
  }
  if (signed_ == Signed::kYes) {
    authd::v1::TokenSignResponse answer;
    answer.set_signature(std::move(signature));
    answer.set_algorithm(static_cast<authd::v1::TokenSignAlgorithm>(chosen));
    answer.SerializeToString(response);
  }
  bool tell = false;
  bool first = false;
  Part part;
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  {
    std::lock_guard<std::mutex> lock(lease->mu);
    if (session != CK_INVALID_HANDLE) instance->sessions.push_back(session);
    --instance->busy;
    --lease->busy;
    if (signed_ == Signed::kYes && unanswered == nullptr) {
      Count(*lease, streamed ? lease->streamed : lease->unreported, call.method(), seconds,
            &part, &tell, &first);
    }
  }
  lease->idle.notify_all();
  if (signed_ == Signed::kFailed) {  // the token removed, its login gone: the lease ends
    if (auto ended = Remove(info.id())) End(ended, true);
    return false;
  }
  if (signed_ == Signed::kNotHere) return false;
  if (unanswered != nullptr) {  // counted once answered
    unanswered->id = info.id();
    unanswered->seconds = seconds;
    unanswered->lease = std::move(lease);
    return true;
  }
  Report(tell, first, std::move(part));
  return true;
}

void TokenLender::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  std::vector<Part> parts;
  while (!stopping_) {
    auto now = Clock::now();
    auto next = Clock::time_point::max();
    for (auto& [handle, lease] : by_handle_) {
      std::lock_guard<std::mutex> held(lease->mu);
      if (lease->unreported.calls + lease->streamed.calls == 0) continue;
      auto due = lease->first_untold +
                 std::chrono::milliseconds(std::max<uint32_t>(1, lease->info.report_ms()));
      if (now >= due) {
        if (lease->unreported.calls > 0) {
          parts.push_back(LeasePart(Part::LEASE_USED, lease->info.id(), lease->method));
          lease->unreported.TellIn(&parts.back());
        }
        if (lease->streamed.calls > 0) {
          parts.push_back(
              LeasePart(Part::LEASE_USED, lease->info.id(), lease->info.stream_method()));
          lease->streamed.TellIn(&parts.back());
        }
      } else {
        next = std::min(next, due);
      }
    }
    if (!parts.empty()) {
      lock.unlock();
      for (auto& part : parts) send_(std::move(part));
      parts.clear();
      lock.lock();
    } else if (next == Clock::time_point::max()) {
      wake_.wait(lock);
    } else {
      wake_.wait_until(lock, next);
    }
  }
}

}  // namespace authd_front
