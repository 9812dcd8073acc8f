#pragma once

// AttemptResult values for the policy tests that classify attempts (outcome, retry): one
// constructor per kind of result, so a test row reads as what happened.

#include "policies/outcome.h"

namespace bulwark::policies::test {

/** An HTTP answer with `status` from a host the request reached. */
inline AttemptResult http(uint32_t status) {
  AttemptResult r;
  r.http_status = status;
  r.request_sent = true;
  return r;
}

/** A gRPC answer (HTTP 200) with `status`. */
inline AttemptResult grpc(GrpcStatus status) {
  AttemptResult r;
  r.http_status = 200;
  r.grpc = true;
  r.grpc_status = status;
  r.request_sent = true;
  return r;
}

/** A failure without an answer; `sent` says whether the request reached the host. */
inline AttemptResult local(LocalFailure failure, bool sent) {
  AttemptResult r;
  r.local_failure = failure;
  r.request_sent = sent;
  return r;
}

}  // namespace bulwark::policies::test
