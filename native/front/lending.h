// Readers' cards lent to the front end by the daemon, each for one caller (call_link.proto,
// CardLease; docs/smartcard.md, "The card lent to authd-front"). The daemon let go of a card
// with the answer that lent it; the front end connects to it exclusively through pcsc-lite and
// sends that caller's next unary Transmits on that reader to pcscd itself, answering them
// without the round trip through the daemon. Each reader has its own lease (several readers
// lent at once, each to its own caller, each on a PC/SC context of its own: pcsc-lite holds a
// context's lock for a whole SCardTransmit). Every other call goes the daemon's way with the
// daemon's answers: another reader's, or a request the daemon refuses before it reaches a
// card (no APDUs, one too short or too long), with the card kept; another caller's on the
// lent reader, one of several APDUs, one with an APDU that leaves a security state (VERIFY,
// authentication: the daemon drops that state after the call), or one that met any PC/SC
// error, with that reader's card given back first (disconnected, SCARD_LEAVE_CARD, and a
// LEASE_RETURN sent before the call). A card is given back when the daemon asks for it (a
// recall), and after the lease's idle time with a card reset (the lease ends for good: no
// state stays for the next application). The calls served are told to the daemon in batches
// (LEASE_USED), with their durations as counts per bucket of the daemon's call-latency
// histogram (the lease's bounds); the daemon counts, times and logs them as its own.
//
// A lease may lend that caller's TransmitStream messages on that reader too (stream_method;
// docs/smartcard.md, "The card lent to a TransmitStream"), with a unary call's answer or a
// stream message's: each message is served as a unary call is (one APDU, the same refusals,
// the card given back first on the same ones), one at a time on the thread that read it, and
// told in parts of its own (the stream method's) once it was answered. An APDU the card carried
// out is always answered here: one whose card was given back before it was answered is told
// with that lease's return.
#pragma once

#include <PCSC/winscard.h>

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

namespace authd_front {

class CardLender : Lender, public StreamLender {  // its thread gives idle cards back
 public:
  // Sends a lease's part (LEASE_USED, LEASE_RETURN) to the daemon (on the call link, in order
  // with the calls).
  using Send = std::function<void(authd::v1::LinkedCall part)>;
  explicit CardLender(Send send);
  ~CardLender();
  // The answer to a call of `method` lent its reader's card: connects to it (given back at
  // once when that fails).
  void Take(const authd::v1::CardLease& lease, const std::string& method);
  // The daemon asks for the card of lease `id` back (answered also when it is over).
  void Recall(uint64_t id);
  // StreamLender: a unary Transmit on a lent card (`response`: the TransmitResponse's bytes),
  // and a stream of the lease's stream_method, whether it starts while the card is lent or was
  // lent the card by one of its answers (`opened`), one message at a time.
  using StreamLender::Serve;
  bool Serve(const authd::v1::LinkedCall& call, std::string* response,
             Unanswered* served) override;
  bool LendsStream(const std::string& method, bool opened) override;
  bool Answered(const Unanswered& served) override;
  size_t Concurrent() const override { return 0; }
  // The link went away: the cards are reset and let go (the daemon forgot its leases).
  void Drop();
  // Whether a card is lent now (the daemon may ask for it back at any moment).
  bool lent() const { return lent_count_.load(std::memory_order_relaxed) > 0; }

 private:
  using Served = LentCalls;  // the durations of a lease's calls not told yet
  // One reader's card: lent now, or the context kept for its next lease.
  struct Reader {
    std::mutex mu;
    bool lent = false;  // card is connected for lease
    authd::v1::CardLease lease;
    std::string method;
    SCARDCONTEXT context = 0;
    bool has_context = false;
    SCARDHANDLE card = 0;
    SCARD_IO_REQUEST pci{};
    Served unreported;
    Served streamed;  // the lease's stream messages answered, not told yet
    // The durations of the lease's stream messages the card answered and the stream has not
    // answered yet (Answered; told with the return if it comes first).
    std::vector<double> answering;
    std::chrono::steady_clock::time_point last_used;
  };

  void Run();
  // The reader `name`'s card, nullptr if none was ever lent. Called with mu_ held.
  Reader* Find(const std::string& name);
  // Disconnects `reader` (its lock held) and adds its lease's return to `parts` (after its
  // stream messages not told, if any), to be sent once no lock is held.
  void GiveBack(Reader& reader, bool reset, std::vector<authd::v1::LinkedCall>* parts);
  static bool Connect(Reader& reader, const std::string& name);
  void SendAll(std::vector<authd::v1::LinkedCall>& parts);

  const Send send_;
  // The readers, each once (never removed: a pointer stays good). Called with mu_ held.
  std::vector<Reader*> All();

  // Lender's mu_ guards readers_ (the map; each Reader has its own lock, taken after this
  // one, and never waited for while this one is held but by Take, for a reader no call holds
  // yet), leases_, recalled_, method_, stream_method_, changes_ and stopping_.
  std::map<std::string, std::unique_ptr<Reader>> readers_;  // kept once made
  // The reader each lease was lent on (one entry a reader: its newest lease's), so that a
  // recall goes to that reader alone, without waiting for an APDU on another.
  std::map<uint64_t, Reader*> leases_;
  uint64_t changes_ = 0;  // leases begun (the idle check looks again)
  std::atomic<int> lent_count_{0};  // readers lent now
  std::string method_;             // the newest lease's method
  std::string stream_method_;      // and its stream method
};

}  // namespace authd_front
