// Token logins lent to the front end by the daemon, each for one caller (call_link.proto,
// TokenLease; docs/token.md, "The login lent to authd-front"). With the answer to a linked
// unary Sign the daemon may lend that Sign's login: the front end loads the token's PKCS#11
// module itself (pkcs11.h), finds the token by its serial number, logs its own instances in
// with the PIN that came with the lease (wiped at once: kInstances of them, each from a
// private copy of the module, since one SoftHSM2 instance signs on one token object at a time
// however many sessions sign) and signs that caller's next unary
// Signs on that handle itself (on SoftHSM2 with a session copy of the key, made per instance
// when the key is first found and destroyed with the lease; its token object read again at
// most every 10 ms, so that a removed token or a deleted key stops the signing as a Sign on
// the token object would) when they are the common case: SHA-256 of the data (or a
// 32-byte digest) signed with CKM_ECDSA (the r||s answer DER-encoded), CKM_RSA_PKCS over the
// DigestInfo or CKM_RSA_PKCS_PSS (SHA-256, MGF1-SHA-256, a 32-byte salt), as the daemon signs
// them (devices/token/signing.py). Every other call goes the daemon's way with the daemon's
// answers: another handle or caller, the token hashing, data over the daemon's limit, an
// unknown key; a call that met any PKCS#11 error (the token removed, its login gone) ends the
// lease first (its LEASE_RETURN goes on the link before the call). The calls served are told
// to the daemon in batches (LEASE_USED, as a card lease's: at most kReportEvery calls, or the
// lease's report_ms after the first untold one); the daemon ends a lease with a recall, which
// is answered once the lease's Signs in flight are answered: logged out, its sessions closed.
// A lease may lend its caller's SignStream requests on its handle too (stream_method): a
// stream's requests are signed here as unary Signs are, until the first that is not, which
// and whose followers the daemon answers (calls.cc); they are told in parts of their own.
#pragma once

#include <p11-kit/pkcs11.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "authd/v1/call_link.pb.h"
#include "lent_calls.h"
#include "pkcs11.h"

namespace authd_front {

class TokenLender : Lender, public StreamLender {  // its thread tells the calls of quiet leases
 public:
  // Sends a lease's part (LEASE_USED, LEASE_RETURN) to the daemon.
  using Send = std::function<void(authd::v1::LinkedCall part)>;
  explicit TokenLender(Send send);
  ~TokenLender();
  // The answer to a call of `method` lent its login: the module logged in (declined with a
  // LEASE_RETURN when it cannot be). The lease's PIN is wiped.
  void Take(authd::v1::TokenLease* lease, const std::string& method);
  // The daemon ends lease `id` (answered also when it is over).
  void Recall(uint64_t id);
  // StreamLender: a unary Sign signed here (`response`: the TokenSignResponse's bytes); and a
  // lease lends its caller's SignStream requests on its handle (a stream that
  // starts while it is lent: one open on the link already stays the daemon's), signed as a
  // unary Sign is, up to four of a stream's at once; a signature is not answered once its
  // lease ended (the daemon signs that request again).
  using StreamLender::Serve;
  bool Serve(const authd::v1::LinkedCall& call, std::string* response,
             Unanswered* unanswered) override;
  bool LendsStream(const std::string& method, bool opened) override;
  bool Answered(const Unanswered& signature) override;
  size_t Concurrent() const override { return 4; }
  // The link went away: every lease ends (the daemon forgot them).
  void Drop();
  // A lease is held: the daemon's recalls are to be read even with no call in flight.
  bool lent() const { return lent_count_.load(std::memory_order_relaxed) > 0; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Lease;
  struct Key {
    CK_OBJECT_HANDLE handle;  // the token object
    CK_KEY_TYPE type;
    // Its session copy signed with instead (C_CopyObject, CKA_TOKEN false), or
    // CK_INVALID_HANDLE: the token object is signed with. Destroyed when the lease ends.
    CK_OBJECT_HANDLE copy;
  };
  // One instance of the lease's module, logged in: its own sessions and key handles.
  struct Instance {
    Pkcs11Module* module = nullptr;
    CK_SLOT_ID slot = 0;
    // Signs on session copies of its keys: SoftHSM2, which checks a token object's files at
    // each use of it (C_SignInit) and not a session object's.
    bool copies = false;
    std::vector<CK_SESSION_HANDLE> sessions;  // open and not in use
    int busy = 0;                              // Signs on it now
    std::map<std::string, Key> keys;           // by CKA_ID
  };
  struct Lease {
    authd::v1::TokenLease info;  // without its PIN
    std::string method;
    std::mutex mu;  // guards what follows
    std::condition_variable idle;
    std::vector<Instance> instances;
    int busy = 0;  // Signs in flight
    bool over = false;
    LentCalls unreported;
    LentCalls streamed;  // stream requests signed, not told (parts of info.stream_method)
    Clock::time_point first_untold;  // of either
    Clock::time_point last_used;  // the start of its last Sign (or as the daemon lent it)
    Clock::time_point ends;       // its login's maximum lifetime
    // When a token object was last seen there (found, or read before a Sign on a copy): a
    // copy goes on signing after its token is removed or its key deleted, so a Sign on a copy
    // reads its token object first once kCheckEvery has passed since.
    Clock::time_point checked;
  };
  // Whether `lease`'s login has passed its idle time or its maximum lifetime at `now` (the
  // daemon's limits, told in the lease): nothing more is signed on it. Called with lease.mu held.
  static bool Expired(const Lease& lease, Clock::time_point now);

  enum class Signed { kYes, kNotHere, kFailed };
  // One signature on one of the lease's sessions: kNotHere when the daemon is to answer it
  // (no such private key, an algorithm that does not fit the key), kFailed on a PKCS#11
  // error. `chosen`: the algorithm signed with (TokenSignAlgorithm).
  static Signed Sign(Lease& lease, Instance& instance, CK_SESSION_HANDLE session,
                     const std::string& key_id, int algorithm, const unsigned char* hash,
                     std::string* signature, int* chosen);
  // Ends `lease` (taken out of by_handle_ already): waits for its Signs in flight, logs out,
  // closes its sessions; its LEASE_RETURN (with the calls not told), unless the link is gone.
  void End(const std::shared_ptr<Lease>& lease, bool tell);
  // Counts one call served on `lease` (lease.mu held) in `told` (of `method`): `part` set
  // when a batch is due (then `tell`), `first` when it is the first untold call.
  static void Count(Lease& lease, LentCalls& told, const std::string& method, double seconds,
                    authd::v1::LinkedCall* part, bool* tell, bool* first);
  // Sends the batch Count made due, or wakes Run for the first untold call.
  void Report(bool tell, bool first, authd::v1::LinkedCall part);
  // Takes the lease of `id` out of by_handle_ (nullptr: none).
  std::shared_ptr<Lease> Remove(uint64_t id);
  void Run();

  const Send send_;
  // Lender's mu_ guards by_handle_, recalled_, method_, stopping_.
  std::map<std::string, std::shared_ptr<Lease>> by_handle_;
  std::atomic<int> lent_count_{0};
  std::string method_;  // the newest lease's method
  std::mutex modules_mu_;  // guards modules_ (loaded once per path and instance, kept)
  std::map<std::string, std::vector<std::unique_ptr<Pkcs11Module>>> modules_;
};

}  // namespace authd_front
