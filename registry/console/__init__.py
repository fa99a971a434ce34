"""The PAR console: a web page of the platform, served by the registry at `/console`.

Stack: server-rendered Jinja2 templates and one small script (`static/console.js`), no front-end
build and nothing fetched at run time. The registry already holds every fact the pages show, so
rendering them where they live keeps one source of truth and one set of access rules; the
script only swaps in the page's live part every two seconds (short polling: it passes every
proxy and needs no open connection per viewer) and draws the requests chart as SVG.

Safe by default: sign-in with an API key (the same keys and grants as the API and the gateway:
a key sees the agents its grants allow; changes need an admin key), a `SameSite=Strict`,
HttpOnly session cookie plus a per-session CSRF token in a header for every change, and a
`Content-Security-Policy` of `default-src 'self'` with no inline script or style.

Public: `Console` (kept on `app.state.console`) and `router`.
"""

from registry.console.routes import Console, router

__all__ = ["Console", "router"]
