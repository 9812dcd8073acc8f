#include "policies/outcome.h"

namespace bulwark::policies {

namespace {

Outcome classifyGrpc(GrpcStatus status) {
  switch (status) {
    case GrpcStatus::Ok: return Outcome::Success;
    case GrpcStatus::Cancelled: return Outcome::GrpcCancelled;
    case GrpcStatus::DeadlineExceeded: return Outcome::GrpcDeadlineExceeded;
    case GrpcStatus::Internal: return Outcome::GrpcInternal;
    case GrpcStatus::ResourceExhausted: return Outcome::GrpcResourceExhausted;
    case GrpcStatus::Unavailable: return Outcome::GrpcUnavailable;
    case GrpcStatus::Unknown:
    case GrpcStatus::DataLoss: return Outcome::GrpcServerError;
    case GrpcStatus::InvalidArgument:
    case GrpcStatus::NotFound:
    case GrpcStatus::AlreadyExists:
    case GrpcStatus::PermissionDenied:
    case GrpcStatus::FailedPrecondition:
    case GrpcStatus::Aborted:
    case GrpcStatus::OutOfRange:
    case GrpcStatus::Unimplemented:
    case GrpcStatus::Unauthenticated: return Outcome::GrpcClientError;
  }
  return Outcome::GrpcServerError;
}

Outcome classifyLocal(const AttemptResult& result) {
  switch (result.local_failure) {
    case LocalFailure::ConnectFailure: return Outcome::ConnectFailure;
    case LocalFailure::ConnectTimeout: return Outcome::ConnectTimeout;
    case LocalFailure::Reset:
      return result.request_sent ? Outcome::Reset : Outcome::ResetBeforeRequest;
    case LocalFailure::RefusedStream: return Outcome::RefusedStream;
    case LocalFailure::GoAway: return Outcome::GoAwayBeforeProcessing;
    case LocalFailure::PerTryTimeout: return Outcome::PerTryTimeout;
    case LocalFailure::ProtocolError: return Outcome::ProtocolError;
    case LocalFailure::None: break;
  }
  return Outcome::Success;  // Unreachable: callers check LocalFailure::None first.
}

}  // namespace

Outcome classify(const AttemptResult& result) {
  if (result.local_failure != LocalFailure::None) {
    return classifyLocal(result);
  }
  if (result.grpc_status.has_value()) {
    return classifyGrpc(*result.grpc_status);
  }
  if (result.grpc && result.http_status != 200) {
    // A broken intermediary answered a gRPC call without grpc-status: synthesise it as a gRPC
    // client would, so `unavailable` matches an HTTP 503 in front of a gRPC backend.
    return classifyGrpc(grpcStatusFromHttp(result.http_status));
  }
  if (result.http_status >= 500 && result.http_status <= 599) {
    const bool gateway =
        result.http_status == 502 || result.http_status == 503 || result.http_status == 504;
    return gateway ? Outcome::GatewayError : Outcome::Http5xx;
  }
  if (result.http_status >= 400 && result.http_status <= 499) {
    return Outcome::Http4xx;
  }
  if (result.http_status == 0 || result.http_status > 599) {
    // No status and no local failure, or a status outside the grammar: a malformed answer.
    return Outcome::ProtocolError;
  }
  // A gRPC call that ended with HTTP 200 but without grpc-status is a protocol violation
  // ("Status must be sent in Trailers even if the status code is OK").
  return result.grpc ? Outcome::ProtocolError : Outcome::Success;
}

std::string_view reasonLabel(Outcome outcome) {
  switch (outcome) {
    case Outcome::Success: return "success";
    case Outcome::Http4xx: return "4xx";
    case Outcome::Http5xx: return "5xx";
    case Outcome::GatewayError: return "gateway-error";
    case Outcome::ConnectFailure: return "connect-failure";
    case Outcome::ConnectTimeout: return "connect-timeout";
    case Outcome::ResetBeforeRequest: return "reset-before-request";
    case Outcome::Reset: return "reset";
    case Outcome::RefusedStream: return "refused-stream";
    case Outcome::GoAwayBeforeProcessing: return "goaway";
    case Outcome::PerTryTimeout: return "per-try-timeout";
    case Outcome::ProtocolError: return "protocol-error";
    case Outcome::GrpcCancelled: return "cancelled";
    case Outcome::GrpcDeadlineExceeded: return "deadline-exceeded";
    case Outcome::GrpcInternal: return "internal";
    case Outcome::GrpcResourceExhausted: return "resource-exhausted";
    case Outcome::GrpcUnavailable: return "unavailable";
    case Outcome::GrpcServerError: return "grpc-server-error";
    case Outcome::GrpcClientError: return "grpc-client-error";
  }
  return "unknown";
}

bool isFailure(Outcome outcome) {
  return outcome != Outcome::Success && outcome != Outcome::Http4xx &&
         outcome != Outcome::GrpcClientError;
}

bool isBreakerFailure(Outcome outcome) {
  return isFailure(outcome) && outcome != Outcome::GrpcCancelled;
}

bool isLocalOriginFailure(Outcome outcome) {
  switch (outcome) {
    case Outcome::ConnectFailure:
    case Outcome::ConnectTimeout:
    case Outcome::ResetBeforeRequest:
    case Outcome::Reset:
    case Outcome::RefusedStream:
    case Outcome::PerTryTimeout:
    case Outcome::ProtocolError: return true;
    // GOAWAY is a graceful drain by a healthy host, not evidence that it is failing.
    default: return false;
  }
}

bool isServer5xxLike(Outcome outcome) {
  switch (outcome) {
    case Outcome::Http5xx:
    case Outcome::GatewayError:
    case Outcome::GrpcInternal:
    case Outcome::GrpcServerError:
    case Outcome::GrpcUnavailable:
    case Outcome::GrpcDeadlineExceeded: return true;
    default: return false;
  }
}

bool isGatewayErrorLike(Outcome outcome) {
  return outcome == Outcome::GatewayError || outcome == Outcome::GrpcUnavailable ||
         outcome == Outcome::GrpcDeadlineExceeded;
}

bool requestNeverProcessed(const AttemptResult& result) {
  switch (result.local_failure) {
    case LocalFailure::ConnectFailure:
    case LocalFailure::ConnectTimeout:
    case LocalFailure::RefusedStream:
    case LocalFailure::GoAway: return true;
    case LocalFailure::Reset: return !result.request_sent;
    default: return false;
  }
}

}  // namespace bulwark::policies
