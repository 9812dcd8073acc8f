#pragma once

// Load-time checks of the PEM files a `tls` block names, so `bulwark check` and a reload report
// a missing file, a certificate that does not parse or a key that does not match its
// certificate with the field's file:line:col, before any socket is bound. Thread: any.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <openssl/x509.h>

namespace bulwark::config {

/** What the check of one certificate chain and its private key found. */
struct CertificateCheck {
  std::optional<std::string> error;  // set when the pair cannot be used
  int64_t days_until_expiry = 0;     // of the leaf certificate (negative: already expired)
};

/** The SANs of one type of a certificate (GEN_DNS, GEN_URI as written; GEN_IPADD as text). */
std::vector<std::string> subjectAltNames(X509* cert, int type);

/** Reads a PEM chain (leaf first) and a PEM private key and checks that the key matches. */
CertificateCheck checkCertificateAndKey(const std::string& chain_path, const std::string& key_path);

/** What /certs shows of one loaded certificate (the first of its file). Thread: value type. */
struct CertificateInfo {
  std::string file;
  std::string used_by;  // "listener public", "upstream payments (client)"
  std::string subject;
  std::vector<std::string> sans;  // "DNS:a.test", "URI:spiffe://...", "IP:127.0.0.1"
  std::string serial;             // hex
  int64_t not_after = 0;          // Unix seconds
};

/** Reads the first certificate of a PEM file; nullopt when it cannot. */
std::optional<CertificateInfo> describeCertificate(const std::string& path);

/** Reads a PEM bundle of CA certificates; an error when unreadable or holding none. */
std::optional<std::string> checkCaBundle(const std::string& path);

}  // namespace bulwark::config
