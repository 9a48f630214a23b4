#include "caller.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

namespace authd_front {
namespace {

constexpr size_t kMaxCached = 4096;
constexpr const char* kInstitution = "x-authd-institution";
constexpr const char* kRole = "x-authd-role";
constexpr const char* kSubject = "x-authd-subject";

std::string Attribute(X509_NAME* name, int nid) {
  int index = X509_NAME_get_index_by_NID(name, nid, -1);  // the first, as the daemon reads it
  if (index < 0) return "";
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  int length = ASN1_STRING_to_UTF8(&utf8, data);
  if (length < 0) return "";
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(length));
  OPENSSL_free(utf8);
  return out;
}

Names FromCertificate(const std::string& pem) {
  Names caller;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = bio ? PEM_read_bio_X509(bio, nullptr, nullptr, nullptr) : nullptr;
  if (cert != nullptr) {
    X509_NAME* name = X509_get_subject_name(cert);
    caller.institution = Attribute(name, NID_organizationName);
    caller.role = Attribute(name, NID_organizationalUnitName);
    caller.subject = Attribute(name, NID_commonName);
    X509_free(cert);
  }
  if (bio != nullptr) BIO_free(bio);
  return caller;
}

std::string Metadata(const grpc::ServerContextBase& ctx, const char* key,
                     const std::string& fallback) {
  const auto& md = ctx.client_metadata();
  auto it = md.find(key);
  return it == md.end() ? fallback : std::string(it->second.data(), it->second.size());
}

}  // namespace

std::shared_ptr<const Caller> Callers::Cached(const std::string& key,
                                              const std::function<Names()>& make) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
  }
  auto made = std::make_shared<Caller>();
  made->names = make();
  std::lock_guard<std::mutex> lock(mu_);
  if (cache_.size() >= kMaxCached) cache_.clear();
  return cache_.emplace(key, made).first->second;
}

std::shared_ptr<const Caller> Callers::Of(const grpc::ServerContextBase& ctx) {
  if (insecure_) {
    std::string institution = Metadata(ctx, kInstitution, "");
    std::string role = Metadata(ctx, kRole, "");
    std::string subject = Metadata(ctx, kSubject, "dev");
    std::string key = institution + '\0' + role + '\0' + subject;
    return Cached(key, [&] { return Names{institution, role, subject}; });
  }
  auto auth = ctx.auth_context();
  std::string pem;
  if (auth) {
    auto values = auth->FindPropertyValues("x509_pem_cert");
    if (!values.empty()) pem.assign(values[0].data(), values[0].size());
  }
  return Cached(pem, [&] { return FromCertificate(pem); });
}

}  // namespace authd_front
