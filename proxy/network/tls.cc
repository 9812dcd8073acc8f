#include "proxy/network/tls.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/ascii.h"
#include "proxy/config/tls_files.h"

namespace bulwark::network {
namespace {

std::string sslErrorText() {
  unsigned long code = ERR_get_error();
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  ERR_clear_error();
  return code == 0 ? std::string("unknown error") : std::string(buf);
}

bool isIpLiteral(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::vector<unsigned char> alpnWire(const std::vector<std::string>& protocols) {
  std::vector<unsigned char> wire;
  for (const auto& p : protocols) {
    wire.push_back(static_cast<unsigned char>(p.size()));
    wire.insert(wire.end(), p.begin(), p.end());
  }
  return wire;
}

Status configureCommon(SSL_CTX* ctx, const std::string& min_version) {
  if (SSL_CTX_set_min_proto_version(
          ctx, min_version == "TLSV1_3" ? TLS1_3_VERSION : TLS1_2_VERSION) != 1) {
    return Status::error("cannot set the minimum TLS version: " + sslErrorText());
  }
  // Partial writes let a record go out as soon as the socket takes it; released buffers keep an
  // idle TLS connection at a few hundred bytes instead of two 16 KiB record buffers.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Read ahead: one read(2) fetches whatever the socket holds, not a 5-byte header and then the
  // record (two syscalls per record without it).
  SSL_CTX_set_read_ahead(ctx, 1);
  return Status::ok();
}

}  // namespace

int tlsSocketIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

TlsContext::~TlsContext() {
  for (auto& [key, session] : sessions_) {
    SSL_SESSION_free(session);
  }
  for (SSL_CTX* ctx : contexts_) {
    SSL_CTX_free(ctx);
  }
}

Result<std::shared_ptr<TlsContext>> TlsContext::server(const config::ListenerTlsSpec& spec,
                                                       const std::vector<std::string>& alpn,
                                                       TlsHandshakeRecorder recorder) {
  std::shared_ptr<TlsContext> self(new TlsContext());
  self->server_ = true;
  self->recorder_ = std::move(recorder);
  self->handshake_timeout_ =
      std::chrono::duration_cast<std::chrono::milliseconds>(spec.handshake_timeout);
  self->alpn_wire_ = alpnWire(spec.alpn.empty() ? alpn : spec.alpn);
  self->subject_alt_names_ = spec.subject_alt_names;
  self->forward_client_cert_ = spec.forward_client_cert_details;
  for (const auto& cert : spec.certificates) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == nullptr) {
      return Status::error("SSL_CTX_new failed: " + sslErrorText());
    }
    self->contexts_.push_back(ctx);
    if (auto status = configureCommon(ctx, spec.min_protocol_version); !status.isOk()) {
      return Status::error(status.message());
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert.certificate_chain.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, cert.private_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
      return Status::error(fmt::format("cannot load {} / {}: {}", cert.certificate_chain,
                                       cert.private_key, sslErrorText()));
    }
    X509* leaf = SSL_CTX_get0_certificate(ctx);
    std::vector<std::string> names = config::subjectAltNames(leaf, GEN_DNS);
    self->names_.push_back(std::move(names));
    static constexpr unsigned char kSessionContext[] = "bulwark";
    SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1);
    SSL_CTX_set_alpn_select_cb(ctx, &TlsContext::onAlpnSelect, self.get());
    if (spec.mode != "SIMPLE") {
      if (SSL_CTX_load_verify_locations(ctx, spec.ca_certificates.c_str(), nullptr) != 1) {
        return Status::error(fmt::format("cannot load CA certificates {}: {}", spec.ca_certificates,
                                         sslErrorText()));
      }
      if (STACK_OF(X509_NAME)* cas = SSL_load_client_CA_file(spec.ca_certificates.c_str())) {
        SSL_CTX_set_client_CA_list(ctx, cas);
      }
      int mode = SSL_VERIFY_PEER;
      if (spec.mode == "MUTUAL") {
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
      }
      SSL_CTX_set_verify(ctx, mode, &TlsContext::onVerify);
    }
  }
  if (self->contexts_.empty()) {
    return Status::error("tls needs at least one certificate");
  }
  if (self->contexts_.size() > 1) {
    SSL_CTX_set_tlsext_servername_callback(self->contexts_[0], &TlsContext::onServerName);
    SSL_CTX_set_tlsext_servername_arg(self->contexts_[0], self.get());
  }
  return self;
}

Result<std::shared_ptr<TlsContext>> TlsContext::client(const config::UpstreamTlsSpec& spec,
                                                       bool http2, TlsHandshakeRecorder recorder) {
  std::shared_ptr<TlsContext> self(new TlsContext());
  self->recorder_ = std::move(recorder);
  self->subject_alt_names_ = spec.subject_alt_names;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    return Status::error("SSL_CTX_new failed: " + sslErrorText());
  }
  self->contexts_.push_back(ctx);
  if (auto status = configureCommon(ctx, "TLSV1_2"); !status.isOk()) {
    return Status::error(status.message());
  }
  self->alpn_wire_ = alpnWire({http2 ? "h2" : "http/1.1"});
  SSL_CTX_set_alpn_protos(ctx, self->alpn_wire_.data(),
                          static_cast<unsigned int>(self->alpn_wire_.size()));
  if (spec.insecure_skip_verify) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  } else {
    const bool loaded =
        spec.ca_certificates.empty()
            ? SSL_CTX_set_default_verify_paths(ctx) == 1
            : SSL_CTX_load_verify_locations(ctx, spec.ca_certificates.c_str(), nullptr) == 1;
    if (!loaded) {
      return Status::error(fmt::format(
          "cannot load CA certificates {}: {}",
          spec.ca_certificates.empty() ? "(system store)" : spec.ca_certificates, sslErrorText()));
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, &TlsContext::onVerify);
    // Without an explicit SAN list the server must hold a certificate for the name asked for.
    self->verify_hostname_from_sni_ = spec.subject_alt_names.empty();
  }
  if (spec.mode == "MUTUAL") {
    if (SSL_CTX_use_certificate_chain_file(ctx, spec.client_certificate.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, spec.private_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
      return Status::error(fmt::format("cannot load {} / {}: {}", spec.client_certificate,
                                       spec.private_key, sslErrorText()));
    }
  }
  // Sessions are kept per host by onNewSession (OpenSSL's internal cache is server-side only).
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, &TlsContext::onNewSession);
  return self;
}

SSL* TlsContext::newSsl(const std::string& sni, const std::string& session_key) const {
  SSL* ssl = SSL_new(contexts_[0]);
  if (ssl == nullptr) {
    ERR_clear_error();
    return nullptr;
  }
  if (server_) {
    SSL_set_accept_state(ssl);
    return ssl;
  }
  SSL_set_connect_state(ssl);
  {
    std::lock_guard<std::mutex> lock(sessions_mutex_);
    auto it = sessions_.find(session_key);
    if (it != sessions_.end()) {
      SSL_set_session(ssl, it->second);
    }
  }
  if (!sni.empty() && !isIpLiteral(sni)) {
    SSL_set_tlsext_host_name(ssl, sni.c_str());
    if (verify_hostname_from_sni_) {
      SSL_set1_host(ssl, sni.c_str());
    }
  }
  return ssl;
}

void TlsContext::record(std::string_view result, std::chrono::steady_clock::duration duration,
                        bool reused) const {
  if (recorder_) {
    recorder_(result, duration, reused);
  }
}

bool TlsContext::sanAllowed(X509* peer) const {
  std::vector<std::string> names = config::subjectAltNames(peer, GEN_URI);
  std::vector<std::string> dns = config::subjectAltNames(peer, GEN_DNS);
  names.insert(names.end(), dns.begin(), dns.end());
  for (const auto& allowed : subject_alt_names_) {
    const bool prefix = !allowed.empty() && allowed.back() == '*';
    const std::string_view want =
        prefix ? std::string_view(allowed).substr(0, allowed.size() - 1) : allowed;
    for (const auto& name : names) {
      if (prefix ? name.compare(0, want.size(), want) == 0 : name == want) {
        return true;
      }
    }
  }
  return false;
}

int TlsContext::onServerName(SSL* ssl, int* /*alert*/, void* arg) {
  const auto* self = static_cast<const TlsContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) {
    return SSL_TLSEXT_ERR_OK;  // no SNI: the default certificate
  }
  for (size_t i = 0; i < self->names_.size(); ++i) {
    for (const auto& pattern : self->names_[i]) {
      if (serverNameMatches(pattern, name)) {
        if (i > 0) {
          SSL_set_SSL_CTX(ssl, self->contexts_[i]);
        }
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  return SSL_TLSEXT_ERR_OK;  // unknown name: the default certificate, as Envoy and HAProxy do
}

int TlsContext::onAlpnSelect(SSL* /*ssl*/, const unsigned char** out, unsigned char* outlen,
                             const unsigned char* in, unsigned int inlen, void* arg) {
  const auto* self = static_cast<const TlsContext*>(arg);
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, self->alpn_wire_.data(),
                            static_cast<unsigned int>(self->alpn_wire_.size()), in,
                            inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // no common protocol: go on without ALPN (HTTP/1.1)
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

int TlsContext::onVerify(int preverify_ok, X509_STORE_CTX* store) {
  if (preverify_ok == 0) {
    return 0;
  }
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* socket = static_cast<TlsSocket*>(SSL_get_ex_data(ssl, tlsSocketIndex()));
  if (socket == nullptr || X509_STORE_CTX_get_error_depth(store) != 0 ||
      !socket->context().checksSans()) {
    return 1;
  }
  if (!socket->context().sanAllowed(X509_STORE_CTX_get_current_cert(store))) {
    socket->setSanMismatch();
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  return 1;
}

int TlsContext::onNewSession(SSL* ssl, SSL_SESSION* session) {
  auto* socket = static_cast<TlsSocket*>(SSL_get_ex_data(ssl, tlsSocketIndex()));
  if (socket == nullptr) {
    return 0;  // not ours to keep: OpenSSL frees it
  }
  const TlsContext& self = socket->context();
  std::lock_guard<std::mutex> lock(self.sessions_mutex_);
  SSL_SESSION*& slot = self.sessions_[socket->sessionKey()];
  if (slot != nullptr) {
    SSL_SESSION_free(slot);
  }
  slot = session;
  return 1;  // the reference is kept
}

TlsSocket::TlsSocket(TlsContextSharedPtr context, SSL* ssl, std::string session_key)
    : context_(std::move(context)), ssl_(ssl), session_key_(std::move(session_key)) {
  SSL_set_ex_data(ssl_, tlsSocketIndex(), this);
}

TlsSocket::~TlsSocket() { SSL_free(ssl_); }

std::string TlsSocket::failureReason(int ssl_error) {
  unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (san_mismatch_) {
    return "san_mismatch";
  }
  const long verify = SSL_get_verify_result(ssl_);
  if (verify != X509_V_OK) {
    switch (verify) {
      case X509_V_ERR_HOSTNAME_MISMATCH: return "san_mismatch";
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE: return "unknown_ca";
      case X509_V_ERR_CERT_HAS_EXPIRED: return "certificate_expired";
      default: return "bad_certificate";
    }
  }
  if (code == 0) {
    return ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_ZERO_RETURN
               ? "connection_closed"
               : "other";
  }
  switch (ERR_GET_REASON(code)) {
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE: return "no_client_cert";
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION: return "protocol_version";
    case SSL_R_HTTP_REQUEST: return "http_request";
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA: return "unknown_ca";
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN: return "bad_certificate";
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED: return "no_client_cert";
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_UNEXPECTED_MESSAGE:
    case SSL_R_UNEXPECTED_RECORD:
    case SSL_R_RECORD_LENGTH_MISMATCH:
    case SSL_R_PACKET_LENGTH_TOO_LONG: return "malformed";
    default: return "other";
  }
}

std::string_view TlsSocket::version() const {
  return handshake_done_ ? std::string_view(SSL_get_version(ssl_)) : std::string_view();
}

std::string_view TlsSocket::alpn() const {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &data, &len);
  return data == nullptr ? std::string_view()
                         : std::string_view(reinterpret_cast<const char*>(data), len);
}

void TlsSocket::setHandshakeDone() {
  handshake_done_ = true;
  if (const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name)) {
    sni_ = name;
    for (char& ch : sni_) {
      ch = asciiLower(ch);
    }
  }
  if (X509* peer = SSL_get0_peer_certificate(ssl_)) {
    auto uris = config::subjectAltNames(peer, GEN_URI);
    if (!uris.empty()) {
      peer_uri_san_ = std::move(uris.front());
    }
  }
}

const std::string& TlsSocket::clientCertDetails() {
  if (!client_cert_details_) {
    client_cert_details_ = computeClientCertDetails();
  }
  return *client_cert_details_;
}

std::string TlsSocket::computeClientCertDetails() const {
  X509* peer = SSL_get0_peer_certificate(ssl_);
  if (peer == nullptr || SSL_get_verify_result(ssl_) != X509_V_OK) {
    return {};
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (X509_digest(peer, EVP_sha256(), digest, &length) != 1) {
    ERR_clear_error();
    return {};
  }
  std::string out = "Hash=";
  for (unsigned int i = 0; i < length; ++i) {
    out += fmt::format("{:02x}", digest[i]);
  }
  for (const auto& uri : config::subjectAltNames(peer, GEN_URI)) {
    out += ";URI=" + uri;
  }
  for (const auto& dns : config::subjectAltNames(peer, GEN_DNS)) {
    out += ";DNS=" + dns;
  }
  return out;
}

}  // namespace bulwark::network
