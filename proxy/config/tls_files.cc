#include "proxy/config/tls_files.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>

#include <fmt/format.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace bulwark::config {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;

std::optional<std::string> openPem(const std::string& path, BioPtr& out) {
  if (path.empty()) {
    return std::string("no file given");
  }
  out.reset(BIO_new_file(path.c_str(), "r"));
  if (!out) {
    ERR_clear_error();
    return fmt::format("cannot read \"{}\": {}", path, std::strerror(errno));
  }
  return std::nullopt;
}

std::string lastSslError() {
  unsigned long code = ERR_peek_last_error();
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  ERR_clear_error();
  return code == 0 ? std::string("no PEM data") : std::string(buf);
}

}  // namespace

std::vector<std::string> subjectAltNames(X509* cert, int type) {
  std::vector<std::string> out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) {
    return out;
  }
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != type) {
      continue;
    }
    if (type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = name->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = {};
      const int family = ip->length == 4 ? AF_INET : ip->length == 16 ? AF_INET6 : 0;
      if (family != 0 && inet_ntop(family, ip->data, text, sizeof(text)) != nullptr) {
        out.emplace_back(text);
      }
      continue;
    }
    if (type != GEN_DNS && type != GEN_URI) {
      continue;
    }
    const ASN1_IA5STRING* value =
        type == GEN_DNS ? name->d.dNSName : name->d.uniformResourceIdentifier;
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                     static_cast<size_t>(ASN1_STRING_length(value)));
  }
  GENERAL_NAMES_free(names);
  return out;
}

CertificateCheck checkCertificateAndKey(const std::string& chain_path,
                                        const std::string& key_path) {
  CertificateCheck result;
  BioPtr chain;
  if (auto error = openPem(chain_path, chain)) {
    result.error = *error;
    return result;
  }
  X509Ptr leaf(PEM_read_bio_X509(chain.get(), nullptr, nullptr, nullptr));
  if (!leaf) {
    result.error = fmt::format("\"{}\" holds no PEM certificate ({})", chain_path, lastSslError());
    return result;
  }
  BioPtr key_file;
  if (auto error = openPem(key_path, key_file)) {
    result.error = *error;
    return result;
  }
  KeyPtr key(PEM_read_bio_PrivateKey(key_file.get(), nullptr, nullptr, nullptr));
  if (!key) {
    result.error = fmt::format("\"{}\" holds no PEM private key ({})", key_path, lastSslError());
    return result;
  }
  if (X509_check_private_key(leaf.get(), key.get()) != 1) {
    ERR_clear_error();
    result.error = fmt::format(R"(the private key in "{}" does not match the certificate in "{}")",
                               key_path, chain_path);
    return result;
  }
  int days = 0;
  int seconds = 0;
  if (ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(leaf.get())) == 1) {
    result.days_until_expiry = days;
  }
  return result;
}

std::optional<CertificateInfo> describeCertificate(const std::string& path) {
  BioPtr file;
  if (openPem(path, file)) {
    return std::nullopt;
  }
  X509Ptr cert(PEM_read_bio_X509(file.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    ERR_clear_error();
    return std::nullopt;
  }
  CertificateInfo info;
  info.file = path;
  char subject[512];
  X509_NAME_oneline(X509_get_subject_name(cert.get()), subject, sizeof(subject));
  info.subject = subject;
  for (auto& dns : subjectAltNames(cert.get(), GEN_DNS)) {
    info.sans.push_back("DNS:" + dns);
  }
  for (auto& uri : subjectAltNames(cert.get(), GEN_URI)) {
    info.sans.push_back("URI:" + uri);
  }
  for (auto& ip : subjectAltNames(cert.get(), GEN_IPADD)) {
    info.sans.push_back("IP:" + ip);
  }
  if (BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.get()), nullptr)) {
    if (char* hex = BN_bn2hex(serial)) {
      info.serial = hex;
      OPENSSL_free(hex);
    }
    BN_free(serial);
  }
  int days = 0;
  int seconds = 0;
  if (ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(cert.get())) == 1) {
    info.not_after = static_cast<int64_t>(std::time(nullptr)) + int64_t{days} * 86400 + seconds;
  }
  return info;
}

std::optional<std::string> checkCaBundle(const std::string& path) {
  BioPtr bundle;
  if (auto error = openPem(path, bundle)) {
    return error;
  }
  X509Ptr first(PEM_read_bio_X509(bundle.get(), nullptr, nullptr, nullptr));
  if (!first) {
    return fmt::format("\"{}\" holds no PEM certificate ({})", path, lastSslError());
  }
  return std::nullopt;
}

}  // namespace bulwark::config
