"""The dashboard as a Starlette application: pages, the auth guard, security headers, overrides."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jinja2
import redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from crawler.config import Settings
from crawler.render import ago, byte_size, iso, score, span, when
from crawler.web import auth, chart
from crawler.web.overview import overview, redis_where
from crawler.web.stories import (
    DUPLICATE_KINDS,
    MAX_SCAN,
    flag_names,
    override_log,
    parse_since,
    recent_duplicates,
    side_by_side,
    story,
)
from dedup.engine import Engine, EngineConfig
from dedup.keys import Keys
from dedup.overrides import OverrideError, Overrides

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make browsers send Origin: null on our own forms
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
MAX_BODY = 64 * 1024
CHART_RANGES = {"24h": 24, "7d": 168}
LIST_LIMITS = (20, 50, 100, 200)
OVERRIDE_ACTIONS = ("split", "promote", "merge", "undo")


@dataclass
class Dashboard:
    """What every request needs: settings, Redis, credentials, and the engine once an index exists."""

    settings: Settings
    client: redis.Redis
    credentials: auth.Credentials
    overrides_enabled: bool = False
    _engine: Engine | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def keys(self) -> Keys:
        return Keys(self.settings.redis.prefix)

    def engine(self) -> Engine | None:
        """The engine, or None while nothing was decided under this prefix (the dashboard writes no
        index parameters of its own)."""
        with self._lock:
            if self._engine is None and self.client.exists(self.keys.params):
                dedup = self.settings.dedup
                self._engine = Engine(self.client, self.keys, EngineConfig(
                    retention=dedup.retention, stream_maxlen=dedup.stream_maxlen,
                    stream_retention=dedup.stream_retention, overrides_maxlen=dedup.overrides_maxlen))
            return self._engine


def safe_href(url: str) -> str | None:
    """The URL when it is http(s) and fit to link to; None for javascript:, data: and the like."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(ago=ago, when=when, iso=iso, score=score, bytes=byte_size, span=span, href=safe_href, flags=flag_names,
                       pct=lambda value: f"{value:.1%}")
    env.globals.update(kind_labels=chart.KIND_LABELS)
    return env


TEMPLATES = Jinja2Templates(env=_environment())


def _dashboard(request: Request) -> Dashboard:
    return request.app.state.dashboard  # type: ignore[no-any-return]


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    """A page, with what the layout needs (where, who, whether overrides are on, the CSRF token)."""
    board = _dashboard(request)
    who = getattr(request.state, "who", None)
    can_override = board.overrides_enabled and who is not None
    base = {
        "where": redis_where(board.settings), "prefix": board.keys.prefix, "who": who,
        "auth_on": board.credentials.configured, "token_on": bool(board.credentials.token),
        "can_override": can_override,
        "csrf": auth.csrf_token(board.credentials, who) if can_override and who else "",
        "overrides_enabled": board.overrides_enabled,
        # Where the data lives (Redis host, prefix) is for signed-in users only.
        "show_where": who is not None or not board.credentials.configured,
    }
    return TEMPLATES.TemplateResponse(request, name, {**base, **context}, status_code=status_code)


# Pages

def overview_page(request: Request) -> Response:
    board = _dashboard(request)
    range_name = request.query_params.get("range", "24h")
    hours = CHART_RANGES.get(range_name, 24)
    data = overview(board.client, board.keys, board.settings, hours)
    return render(request, "overview.html", {
        "page": "overview", "o": data, "chart": chart.layout(data.hours), "range": range_name,
        "ranges": CHART_RANGES,
    })


def duplicates_page(request: Request) -> Response:
    board = _dashboard(request)
    params = request.query_params
    kinds = tuple(k for k in params.getlist("kind") if k in DUPLICATE_KINDS)
    source = params.get("source", "")[:200]
    since_text = params.get("since", "")[:64]
    try:
        limit = int(params.get("limit", "50"))
    except ValueError:
        limit = 50
    limit = limit if limit in LIST_LIMITS else 50
    error = None
    try:
        since = parse_since(since_text)
    except ValueError as exc:
        since, error = None, str(exc)
    engine = board.engine()
    result = None
    if engine is not None and error is None:
        result = recent_duplicates(engine, kinds=kinds, source=source, since=since, limit=limit)
    sources = [s.name for s in board.settings.sources]
    return render(request, "duplicates.html", {
        "page": "duplicates", "result": result, "kinds": kinds, "all_kinds": DUPLICATE_KINDS, "source": source,
        "since": since_text, "limit": limit, "limits": LIST_LIMITS, "error": error, "sources": sources,
        "max_scan": MAX_SCAN, "empty": engine is None,
    }, status_code=400 if error else 200)


def story_page(request: Request) -> Response:
    board = _dashboard(request)
    engine = board.engine()
    ref = request.path_params["ref"]
    found = story(engine, ref) if engine is not None else None
    if found is None:
        return render(request, "search.html", {
            "page": "search", "q": ref, "empty": engine is None,
            "message": f"No article {ref} in the index (never decided, or expired).",
        }, status_code=404)
    diff_ref = request.query_params.get("diff", "")
    member = found.member(diff_ref) if diff_ref else None
    if member is None and found.canonical is not None:
        member = found.asked if found.asked.id != found.canonical.id else next(
            (m for m in found.members if m.id != found.canonical.id), None)
    diff = side_by_side(found.canonical.text, member.text) if member and found.canonical else []
    done = request.query_params.get("done", "")
    return render(request, "story.html", {
        "page": "story", "s": found, "member": member, "diff": diff,
        "done": done if done.isdigit() else "", "error": request.query_params.get("error", "")[:300],
    })


def overrides_page(request: Request) -> Response:
    board = _dashboard(request)
    engine = board.engine()
    try:
        limit = int(request.query_params.get("limit", "100"))
    except ValueError:
        limit = 100
    limit = min(max(limit, 1), 1000)
    entries = override_log(engine, limit) if engine is not None else []
    done = request.query_params.get("done", "")
    return render(request, "overrides.html", {
        "page": "overrides", "entries": entries, "limit": limit, "empty": engine is None,
        "done": done if done.isdigit() else "", "error": request.query_params.get("error", "")[:300],
    })


def search_page(request: Request) -> Response:
    board = _dashboard(request)
    q = request.query_params.get("q", "").strip()[:2000]
    engine = board.engine()
    if q and engine is not None:
        found = engine.find(q)
        if found is not None:
            return RedirectResponse(f"/story/{found.id}", status_code=303)
    message = ""
    if q:
        message = ("Nothing decided under this prefix yet." if engine is None else
                   f"No stored article has the URL or id {q!r}. URLs are matched after canonicalisation "
                   "(tracking parameters, case of the host and a leading www. do not matter); an article "
                   "older than the retention window has left the index.")
    # A search that finds nothing is an answer, not a missing page.
    return render(request, "search.html", {"page": "search", "q": q, "message": message, "empty": engine is None})


def favicon(request: Request) -> Response:
    return RedirectResponse("/static/favicon.svg", status_code=308)


# Sign-in

def login_page(request: Request) -> Response:
    return render(request, "login.html", {"page": "login", "next": _local_path(request.query_params.get("next", "/")),
                                          "failed": False})


async def login_submit(request: Request) -> Response:
    board = _dashboard(request)
    form = await _form(request)
    target = _local_path(form.get("next", "/"))
    if not auth.token_matches(form.get("token", ""), board.credentials):
        return render(request, "login.html", {"page": "login", "next": target, "failed": True}, status_code=401)
    response = RedirectResponse(target, status_code=303)
    _set_session(request, response, board.credentials)
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response


def _set_session(request: Request, response: Response, credentials: auth.Credentials) -> None:
    response.set_cookie(auth.SESSION_COOKIE, credentials.session_value, max_age=7 * 86400, path="/",
                        httponly=True, samesite="strict", secure=request.url.scheme == "https")


def _local_path(target: str) -> str:
    """Only a path on this site (no scheme, no host, no //evil.example) is a place to go back to."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body (small; the app refuses bodies over MAX_BODY)."""
    body = (await request.body()).decode("utf-8", "replace")
    return {name: values[-1] for name, values in parse_qs(body, keep_blank_values=True).items()}


# Overrides

async def override_submit(request: Request) -> Response:
    """Split, promote, merge or undo, with the same audit trail as `newsdedup override`."""
    board = _dashboard(request)
    who = getattr(request.state, "who", None)
    if not board.overrides_enabled:
        return PlainTextResponse("overrides from the dashboard are off ([web] overrides = true turns them on)\n",
                                 status_code=403)
    if who is None:
        return PlainTextResponse("sign in to override\n", status_code=401)
    form = await _form(request)
    if not auth.csrf_ok(board.credentials, who, form.get("csrf", "")):
        return PlainTextResponse("the form is stale or forged (CSRF check failed): reload the page\n",
                                 status_code=403)
    action = request.path_params["action"]
    back = _local_path(form.get("back", "/overrides"))
    engine = board.engine()
    if action not in OVERRIDE_ACTIONS or engine is None:
        return PlainTextResponse("unknown override\n", status_code=404)
    reason = form.get("reason", "").strip()
    name = who if who != "token" else form.get("who", "").strip()
    problem = None
    if not reason:
        problem = "say why (the reason goes into the audit log)"
    elif not name:
        problem = "say who you are (the name goes into the audit log)"
    if problem:
        return RedirectResponse(_with_query(back, error=problem), status_code=303)
    audit_who = f"{name[:100]}@web"
    overrides = Overrides(engine)
    try:
        if action == "undo":
            target = form.get("target", "")
            entry = overrides.undo(int(target) if target.isdigit() else None, who=audit_who, reason=reason)
        elif action == "merge":
            a, b = engine.find(form.get("a", "")), engine.find(form.get("b", ""))
            if a is None or b is None:
                raise OverrideError(f"no stored article {form.get('a' if a is None else 'b', '')!r}")
            entry = overrides.merge(a.id, b.id, who=audit_who, reason=reason)
        else:
            member = engine.find(form.get("member", ""))
            if member is None:
                raise OverrideError(f"no stored article {form.get('member', '')!r}")
            apply = overrides.split if action == "split" else overrides.promote
            entry = apply(member.id, who=audit_who, reason=reason)
    except OverrideError as exc:
        return RedirectResponse(_with_query(back, error=str(exc)), status_code=303)
    log.info("override #%d %s by %s from the dashboard: %s", entry.id, entry.action, audit_who,
             " + ".join(entry.urls))
    return RedirectResponse(_with_query(back, done=str(entry.id)), status_code=303)


def _with_query(path: str, **params: str) -> str:
    parts = urlsplit(path)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items() if k not in ("done", "error")}
    query.update(params)
    return f"{parts.path}?{urlencode(query)}"


# The guard

class Guard(BaseHTTPMiddleware):
    """Host check (when open), authentication (when configured), and security headers on every response."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await self._guarded(request, call_next)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    async def _guarded(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        credentials = _dashboard(request).credentials
        request.state.who = None
        if not credentials.configured:
            # Open only on loopback: refuse other Host names, so a DNS-rebinding page cannot read it.
            if not auth.loopback_host_header(request.headers.get("host", "")):
                return PlainTextResponse("unknown Host: open this dashboard at its loopback address\n",
                                         status_code=400)
            return await call_next(request)
        if request.method == "POST" and not _same_origin(request):
            return PlainTextResponse("cross-origin form refused\n", status_code=403)
        who = auth.identify(request.headers.get("authorization", ""),
                            request.cookies.get(auth.SESSION_COOKIE, ""), credentials)
        request.state.who = who
        path = request.url.path
        if who is not None or path.startswith("/static/") or path in ("/login", "/favicon.ico"):
            return await call_next(request)
        token = request.query_params.get("token")
        if request.method == "GET" and token is not None and auth.token_matches(token, credentials):
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            response = RedirectResponse(path + (f"?{urlencode(rest)}" if rest else ""), status_code=303)
            _set_session(request, response, credentials)
            return response
        return _refused(request, credentials, bad_token=token is not None)


def _refused(request: Request, credentials: auth.Credentials, bad_token: bool) -> Response:
    """401: the browser's basic-auth prompt when basic auth is on, the sign-in page for a person
    when a token is, a plain line for scripts."""
    headers = {"WWW-Authenticate": 'Basic realm="newsdedup dashboard", charset="UTF-8"' if credentials.user
               else 'Bearer realm="newsdedup dashboard"'}
    if credentials.token and request.method == "GET" and "text/html" in request.headers.get("accept", ""):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = render(request, "login.html", {"page": "login", "next": _local_path(target), "failed": bad_token},
                          status_code=401)
        response.headers.update(headers)
        return response
    return PlainTextResponse("authentication required\n", status_code=401, headers=headers)


def _same_origin(request: Request) -> bool:
    """A POST comes from our own pages: its Origin (or Referer), when the browser sends one, is this host.
    (Scripts send neither; they are held back by authentication and the CSRF token instead.)"""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


def create_app(settings: Settings, client: redis.Redis, *, credentials: auth.Credentials | None = None,
               overrides: bool = False) -> Starlette:
    """The dashboard for the index under settings.redis.prefix on `client`."""
    credentials = credentials or auth.Credentials()
    routes = [
        Route("/", overview_page),
        Route("/duplicates", duplicates_page),
        Route("/story/{ref:path}", story_page),
        Route("/overrides", overrides_page),
        Route("/search", search_page),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/override/{action}", override_submit, methods=["POST"]),
        Route("/favicon.ico", favicon),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(Guard)], max_body_size=MAX_BODY)
    app.state.dashboard = Dashboard(settings, client, credentials, overrides)
    return app
