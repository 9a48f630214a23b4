#include "pkcs11.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <vector>

namespace authd_front {

namespace {

// dlopen of a private copy of the file at `path`, removed at once (the mapping stays).
void* OpenCopy(const std::string& path) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : P_tmpdir) +
                        "/authd-front-p11-XXXXXX";
  std::vector<char> dir(pattern.begin(), pattern.end());
  dir.push_back('\0');
  if (::mkdtemp(dir.data()) == nullptr) return nullptr;
  std::string copy = std::string(dir.data()) + "/module.so";
  void* library = nullptr;
  {
    std::ifstream in(path, std::ios::binary);
    std::ofstream out(copy, std::ios::binary);
    out << in.rdbuf();
    out.close();
    if (in && out) library = ::dlopen(copy.c_str(), RTLD_NOW | RTLD_LOCAL);
  }
  ::unlink(copy.c_str());
  ::rmdir(dir.data());
  return library;
}

}  // namespace

std::unique_ptr<Pkcs11Module> Pkcs11Module::Load(const std::string& path, bool copy) {
  void* library = copy ? OpenCopy(path) : ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) return nullptr;
  auto get = reinterpret_cast<CK_C_GetFunctionList>(::dlsym(library, "C_GetFunctionList"));
  CK_FUNCTION_LIST* f = nullptr;
  if (get == nullptr || get(&f) != CKR_OK || f == nullptr) {
    ::dlclose(library);
    return nullptr;
  }
  std::unique_ptr<Pkcs11Module> module(new Pkcs11Module(library, f));
  if (!module->Initialize()) return nullptr;
  return module;
}

bool Pkcs11Module::Initialize() {
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  CK_RV rv = f_->C_Initialize(&args);
  initialized_ = rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED;
  return initialized_;
}

Pkcs11Module::~Pkcs11Module() {
  if (initialized_) f_->C_Finalize(nullptr);
  ::dlclose(library_);
}

bool Pkcs11Module::Reinitialize() {
  if (initialized_) f_->C_Finalize(nullptr);
  initialized_ = false;
  return Initialize();
}

bool Pkcs11Module::FindSlot(const std::string& serial, CK_SLOT_ID* slot) const {
  CK_ULONG count = 0;
  if (f_->C_GetSlotList(CK_TRUE, nullptr, &count) != CKR_OK) return false;
  std::vector<CK_SLOT_ID> slots(count);
  if (count == 0 || f_->C_GetSlotList(CK_TRUE, slots.data(), &count) != CKR_OK) return false;
  for (CK_ULONG i = 0; i < count; ++i) {
    CK_TOKEN_INFO info{};
    if (f_->C_GetTokenInfo(slots[i], &info) != CKR_OK) continue;
    std::string found(reinterpret_cast<const char*>(info.serialNumber),
                      sizeof(info.serialNumber));
    found.erase(found.find_last_not_of(' ') + 1);
    if (found == serial) {
      *slot = slots[i];
      return true;
    }
  }
  return false;
}

}  // namespace authd_front
