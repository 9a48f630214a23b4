// A PKCS#11 module loaded by the front end for the token logins the daemon lends it
// (token_lending.h): dlopen, C_GetFunctionList, C_Initialize for threads (CKF_OS_LOCKING_OK:
// calls on different sessions run in parallel), the slot of a token by its serial number. The
// module's login belongs to this process (PKCS#11 logs in per application), apart from the
// daemon's.
#pragma once

#include <p11-kit/pkcs11.h>

#include <memory>
#include <string>

namespace authd_front {

class Pkcs11Module {
 public:
  // The module at `path`, initialized; nullptr when it cannot be loaded or initialized.
  // `copy`: an instance of its own, loaded from a private copy of the file (dlopen gives one
  // instance per file; the copy is removed once loaded): its own state, locks and login.
  static std::unique_ptr<Pkcs11Module> Load(const std::string& path, bool copy);
  ~Pkcs11Module();
  Pkcs11Module(const Pkcs11Module&) = delete;
  Pkcs11Module& operator=(const Pkcs11Module&) = delete;

  CK_FUNCTION_LIST* f() const { return f_; }
  // The slot of the token with serial number `serial` (as the token reports it, without its
  // padding); false when no slot holds it.
  bool FindSlot(const std::string& serial, CK_SLOT_ID* slot) const;
  // C_Finalize and C_Initialize again (a module such as SoftHSM2 scans its tokens only then);
  // every session of this process on it ends.
  bool Reinitialize();

 private:
  explicit Pkcs11Module(void* library, CK_FUNCTION_LIST* f) : library_(library), f_(f) {}
  bool Initialize();

  void* const library_;
  CK_FUNCTION_LIST* const f_;
  bool initialized_ = false;
};

}  // namespace authd_front
