"""Bearer-token authentication for every call except health checks.

Probes (load balancers, Kubernetes) check health without credentials; everything else needs
`authorization: Bearer <token>` with one of the configured tokens. Several tokens may be valid
at once, so a token can be rotated without downtime.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from typing import Any

import grpc
from grpc_health.v1 import health

_HEALTH_PREFIX = f"/{health.SERVICE_NAME}/"
_HANDLER_KINDS = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def _reject(request: Any, context: grpc.ServicerContext) -> None:
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")


class BearerTokenInterceptor(grpc.ServerInterceptor):
    def __init__(self, tokens: Iterable[str]) -> None:
        self._tokens = [t.encode() for t in tokens]
        if not self._tokens:
            raise ValueError("bearer-token authentication needs at least one token")

    def _authorised(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> bool:
        for key, value in metadata or ():
            if key != "authorization" or not isinstance(value, str):
                continue
            scheme, _, token = value.partition(" ")
            if scheme.lower() != "bearer":
                continue
            presented = token.strip().encode()
            # Compare with every token so the time taken says nothing about which matched.
            matches = [hmac.compare_digest(presented, t) for t in self._tokens]
            return any(matches)
        return False

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method: str = handler_call_details.method
        metadata = handler_call_details.invocation_metadata
        handler = continuation(handler_call_details)
        if handler is None or method.startswith(_HEALTH_PREFIX) or self._authorised(metadata):
            return handler
        # The rejection must have the same shape (streaming or not) as the method it replaces.
        kind = _HANDLER_KINDS[(handler.request_streaming, handler.response_streaming)]
        return kind(
            _reject,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
