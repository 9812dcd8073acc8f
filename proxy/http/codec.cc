#include "proxy/http/codec.h"

namespace bulwark::http {

std::string_view toString(StreamResetReason reason) {
  switch (reason) {
    case StreamResetReason::LocalReset: return "local_reset";
    case StreamResetReason::RemoteReset: return "remote_reset";
    case StreamResetReason::RefusedStream: return "refused_stream";
    case StreamResetReason::ConnectionFailure: return "connection_failure";
    case StreamResetReason::ConnectionTermination: return "connection_termination";
    case StreamResetReason::ConnectTimeout: return "connect_timeout";
    case StreamResetReason::ProtocolError: return "protocol_error";
    case StreamResetReason::GoAwayBeforeProcessing: return "goaway_before_processing";
    case StreamResetReason::TlsFailure: return "tls_failure";
  }
  return "unknown";
}

}  // namespace bulwark::http
