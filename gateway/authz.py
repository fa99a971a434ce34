"""Envoy HTTP ext_authz service (Kourier `KOURIER_EXTAUTHZ_*`, Istio `envoyExtAuthzHttp`).

Envoy sends each client request's method, Host, headers and `{path_prefix}{path}` here; 200
allows it (our `x-par-tenant`/`x-par-key-id` go upstream via `headersToUpstreamOnAllow`), any other
status denies it and Envoy returns that status, headers and JSON body to the client. A check whose
path is outside the configured prefix or carries dot segments is denied (400), whatever its Host.

What a real Envoy 1.40 showed (tests/integration/gateway/test_envoy_decisions.py):
- The check's Content-Length is the length of the body Envoy forwards with it (0 without
  `with_request_body`), never the client's. When Envoy buffered only the first part of a larger
  body it says so (`x-envoy-auth-partial-body: true`): the client's body is then longer than what
  arrived, so with the ingress buffering up to the gateway's limit, an over-limit body is refused
  whether it was declared or chunked.
- Kourier programs no `allowed_upstream_headers`, so none of the gateway's headers reach the agent
  on allow, while a client's own `x-par-tenant` would pass untouched. Its checks carry its fixed
  `client: kourier`; for those the gateway has Envoy strip the `x-par-*` names from the request
  (`x-envoy-auth-headers-to-remove`). Istio's `headersToUpstreamOnAllow` overwrites them instead
  (Envoy applies the removal after the overwrite, so it must not be sent there).
"""

from __future__ import annotations

from gateway.asgi import GatewayApp, Receive, RequestHeaders, Scope, Send, deny_with, has_dot_segment, respond
from gateway.decision import Authorizer, Decision, deny
from gateway.feed import PolicySource, policy_source_from
from gateway.ratelimit import RateLimiter, limiter_from
from gateway.settings import GatewaySettings

_OK = b"{}"
_STRIP_SPOOFABLE = (b"x-envoy-auth-headers-to-remove", b"x-par-tenant,x-par-key-id")


class AuthzApp(GatewayApp):
    async def decide(self, scope: Scope, headers: RequestHeaders) -> Decision:
        prefix = self.settings.path_prefix
        path = scope["path"]
        if has_dot_segment(path):
            return deny(400, "bad_path", "dot segments are not allowed in the path")
        if prefix and path != prefix and not path.startswith(prefix + "/"):
            return deny(400, "bad_path", "check request outside the configured path prefix")
        if headers.partial_body not in (None, "false"):
            received = headers.content_length or "0"
            # at least one byte more than Envoy forwarded: over the limit once that reached it
            headers.content_length = str(int(received) + 1) if received.isdigit() else received
        return await super().decide(scope, headers)

    async def forward(
        self, scope: Scope, receive: Receive, send: Send, headers: RequestHeaders, decision: Decision
    ) -> None:
        assert headers.trace is not None
        # the trace continued under the gateway's span: Istio's headersToUpstreamOnAllow passes it on
        trace = (b"traceparent", headers.trace.traceparent.encode())
        if decision.allowed:
            tenant, key_id = decision.tenant.encode(), decision.key_id.encode()
            extra = [(b"x-par-tenant", tenant), (b"x-par-key-id", key_id), trace]
            if headers.client == "kourier":
                extra.append(_STRIP_SPOOFABLE)
            await respond(send, 200, _OK, [*extra, *decision.headers])
        else:
            await deny_with(send, decision, [*decision.headers, trace])


def build_authz_app(
    settings: GatewaySettings | None = None,
    policy: PolicySource | None = None,
    limiter: RateLimiter | None = None,
) -> AuthzApp:
    """The ext_authz ASGI app; the policy source and limiter default to what `settings` name."""
    settings = settings or GatewaySettings()
    authorizer = Authorizer(
        settings, policy or policy_source_from(settings), limiter or limiter_from(settings)
    )
    return AuthzApp(settings, authorizer)
