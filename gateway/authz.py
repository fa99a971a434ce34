"""Envoy HTTP ext_authz service (Kourier `KOURIER_EXTAUTHZ_*`, Istio `envoyExtAuthzHttp`).

Envoy sends each client request's method, Host, headers and `{path_prefix}{path}` here; 200
allows it (our `x-par-tenant`/`x-par-key-id` go upstream via `headersToUpstreamOnAllow`), any other
status denies it and Envoy returns that status, headers and JSON body to the client. A check whose
path is outside the configured prefix or carries dot segments is denied (400), whatever its Host.
"""

from __future__ import annotations

from gateway.asgi import GatewayApp, Receive, RequestHeaders, Scope, Send, has_dot_segment, respond
from gateway.decision import Authorizer, Decision, deny
from gateway.feed import PolicySource, policy_source_from
from gateway.ratelimit import RateLimiter, limiter_from
from gateway.settings import GatewaySettings

_OK = b"{}"


class AuthzApp(GatewayApp):
    async def decide(self, scope: Scope, headers: RequestHeaders) -> Decision:
        prefix = self.settings.path_prefix
        path = scope["path"]
        if has_dot_segment(path):
            return deny(400, "bad_path", "dot segments are not allowed in the path")
        if prefix and path != prefix and not path.startswith(prefix + "/"):
            return deny(400, "bad_path", "check request outside the configured path prefix")
        return await super().decide(scope, headers)

    async def forward(
        self, scope: Scope, receive: Receive, send: Send, headers: RequestHeaders, decision: Decision
    ) -> None:
        if decision.allowed:
            extra = [(b"x-par-tenant", decision.tenant.encode()), (b"x-par-key-id", decision.key_id.encode())]
            await respond(send, 200, _OK, [*extra, *decision.headers])
        else:
            await respond(send, decision.status, decision.body(), decision.headers)


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
