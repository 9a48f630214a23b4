// A reader's card lent to the front end by the daemon for one caller (call_link.proto,
// CardLease; docs/smartcard.md, "The card lent to authd-front"). The daemon let go of the card
// with the answer that lent it; the front end connects to it exclusively through pcsc-lite and
// sends that caller's next unary Transmits on that reader to pcscd itself, answering them
// without the round trip through the daemon. Every other call goes the daemon's way with the
// daemon's answers: another reader's, or a request the daemon refuses before it reaches a
// card (no APDUs, too many, one too short or too long), with the card kept; another caller's,
// one with an APDU that leaves a security state (VERIFY, authentication: the daemon drops that
// state after the call), or one that met any PC/SC error, with the card given back first
// (disconnected, SCARD_LEAVE_CARD, and a LEASE_RETURN sent before the call). The card is given
// back when the daemon asks for it (a recall), and after the lease's idle time with a card
// reset (the lease ends for good: no state stays for the next application). The calls served
// are told to the daemon in batches (LEASE_USED), which counts and logs them as its own.
#pragma once

#include <PCSC/winscard.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "authd/v1/call_link.pb.h"

namespace authd_front {

class CardLender {
 public:
  // Sends a lease's part to the daemon (on the call link, in order with the calls).
  using Send = std::function<void(authd::v1::LinkedCall::Part part, uint64_t id,
                                  const std::string& method, uint32_t served, bool reset)>;
  explicit CardLender(Send send);
  ~CardLender();
  // The answer to a call of `method` lent its reader's card: connects to it (given back at
  // once when that fails).
  void Take(const authd::v1::CardLease& lease, const std::string& method);
  // The daemon asks for the card of lease `id` back (answered also when it is over).
  void Recall(uint64_t id);
  // A unary call (described, its request set): true when it was served on the lent card
  // (`response`: the TransmitResponse's bytes); false: it goes the daemon's way.
  bool Serve(const authd::v1::LinkedCall& call, std::string* response);
  // The link went away: the card is reset and let go (the daemon forgot its leases).
  void Drop();

 private:
  void Run();
  // Disconnects and sends the lease's return; returns with the lock released.
  void GiveBack(std::unique_lock<std::mutex>& lock, bool reset);
  bool Connect(const std::string& reader);

  const Send send_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool lent_ = false;  // card_ is connected for lease_
  authd::v1::CardLease lease_;
  std::string method_;
  SCARDCONTEXT context_ = 0;
  bool has_context_ = false;
  SCARDHANDLE card_ = 0;
  SCARD_IO_REQUEST pci_{};
  uint32_t unreported_ = 0;  // calls served and not told yet
  uint64_t taken_ = 0;           // the newest lease that came
  uint64_t recalled_ahead_ = 0;  // the newest lease asked back before it came
  std::chrono::steady_clock::time_point last_used_;
  bool stopping_ = false;
  std::thread thread_;  // gives an idle card back
};

}  // namespace authd_front
