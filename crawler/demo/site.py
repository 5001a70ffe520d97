"""A small local news web: publisher sites with originals, aggregators with republished copies.

Each virtual site listens on its own loopback port and serves pages, robots.txt, RSS/Atom feeds and
(Google News) sitemaps from memory. The demo runs the service against it; tests add odd routes.
"""

from __future__ import annotations

import html
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).parent

Handler = Callable[["Request"], "Reply"]


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    hits: int
    """How often this path was requested, this time included."""


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Story:
    """One article: its text, and when its publisher says it was published."""

    slug: str
    title: str
    text: str
    published: datetime


class Site:
    """One virtual site: routes from path to a fixed reply or a handler."""

    def __init__(self, name: str, host: str = "127.0.0.1") -> None:
        self.name = name
        self.host = host
        """Each site on its own loopback address (all of 127.0.0.0/8 is local), so sites differ by host."""
        self.routes: dict[str, Reply | Handler] = {}
        self.hits: Counter[str] = Counter()
        self.port = 0

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, reply: Reply | Handler) -> None:
        self.routes[path] = reply

    def page(self, path: str, body: str, content_type: str = "text/html; charset=utf-8") -> None:
        self.routes[path] = Reply(body=body.encode("utf-8"), content_type=content_type)

    def feed(self, path: str, body: str, content_type: str, last_modified: datetime) -> None:
        """A feed or sitemap that answers conditional GETs (ETag and Last-Modified) with 304."""
        data = body.encode("utf-8")
        etag = f'"{abs(hash(data)) & 0xFFFFFFFF:08x}"'
        modified = format_datetime(last_modified.astimezone(UTC), usegmt=True)

        def handler(request: Request) -> Reply:
            headers = {"ETag": etag, "Last-Modified": modified}
            if request.headers.get("if-none-match") == etag or request.headers.get("if-modified-since") == modified:
                return Reply(304, b"", content_type, headers)
            return Reply(200, data, content_type, headers)

        self.routes[path] = handler

    def respond(self, path: str, headers: dict[str, str]) -> Reply:
        self.hits[path] += 1
        route = self.routes.get(path)
        if route is None:
            return Reply(404, b"<html><body><h1>Not found</h1></body></html>")
        if isinstance(route, Reply):
            return route
        return route(Request(path, headers, self.hits[path]))


class SiteServer:
    """Serves several sites, each on its own free loopback port, from daemon threads."""

    def __init__(self, sites: list[Site]) -> None:
        self.sites = {site.name: site for site in sites}
        self._servers: list[ThreadingHTTPServer] = []

    def __getitem__(self, name: str) -> Site:
        return self.sites[name]

    def start(self) -> SiteServer:
        for site in self.sites.values():
            server = ThreadingHTTPServer((site.host, site.port), _handler_for(site))
            server.daemon_threads = True
            site.port = server.server_address[1]
            self._servers.append(server)
            threading.Thread(target=server.serve_forever, name=f"site-{site.name}", daemon=True).start()
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()


def _handler_for(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            reply = site.respond(self.path, {k.lower(): v for k, v in self.headers.items()})
            if reply.delay:
                time.sleep(reply.delay)
            try:
                self.send_response(reply.status)
                if reply.status != 304:
                    self.send_header("Content-Type", reply.content_type)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


# Pages

def _paragraphs(text: str) -> str:
    return "\n".join(f"<p>{html.escape(p.strip())}</p>" for p in text.split("\n") if p.strip())


def publisher_page(site: str, story: Story, own_url: str) -> str:
    """The original, as its publisher serves it: metadata, navigation, the article, a footer."""
    published = story.published.isoformat()
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(story.title)} | {html.escape(site)}</title>
<link rel="canonical" href="{own_url}">
<meta property="og:url" content="{own_url}">
<meta property="og:title" content="{html.escape(story.title)}">
<meta property="article:published_time" content="{published}">
</head><body>
<header><nav><a href="/">Home</a> <a href="/world/">World</a> <a href="/business/">Business</a></nav></header>
<main><article>
<h1>{html.escape(story.title)}</h1>
<p class="byline">By Staff Reporter, <time datetime="{published}">{story.published:%d %B %Y}</time></p>
{_paragraphs(story.text)}
</article></main>
<footer><p>&copy; {html.escape(site)}. All rights reserved.</p></footer>
</body></html>"""


def aggregator_page(site: str, story: Story, original_url: str, *, excerpt: bool = False,
                    reposted: datetime | None = None) -> str:
    """A republished copy: the same text (or its first part) inside an aggregator's clutter."""
    text = story.text
    if excerpt:
        paragraphs = [p for p in text.split("\n") if p.strip()]
        text = "\n".join(paragraphs[: max(2, len(paragraphs) // 2)])
    when = (reposted or datetime.now(UTC)).strftime("%A, %d %b %Y")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(story.title)} - {html.escape(site)}</title></head>
<body>
<div class="topbar">{when} | Trending: Markets, Sports, Weather</div>
<div class="content">
<h1>{html.escape(story.title)}</h1>
{_paragraphs(text)}
<p>Related Stories:</p>
<p>Source: <a href="{original_url}">Read Full Article</a></p>
</div>
<aside class="sidebar"><h3>Related Posts</h3><ul><li><a href="/">More news</a></li></ul></aside>
</body></html>"""


def rss(title: str, link: str, items: list[tuple[str, str, datetime]]) -> str:
    """RSS 2.0: items are (title, url, published)."""
    entries = "\n".join(
        f"<item><title>{html.escape(t)}</title><link>{html.escape(u)}</link>"
        f"<guid isPermaLink=\"true\">{html.escape(u)}</guid><pubDate>{format_datetime(d)}</pubDate></item>"
        for t, u, d in items
    )
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>{html.escape(title)}'
            f"</title><link>{html.escape(link)}</link><description>{html.escape(title)}</description>\n"
            f"{entries}\n</channel></rss>")


def atom(title: str, link: str, items: list[tuple[str, str, datetime]]) -> str:
    entries = "\n".join(
        f'<entry><title>{html.escape(t)}</title><link rel="alternate" type="text/html" href="{html.escape(u)}"/>'
        f"<id>{html.escape(u)}</id><updated>{d.isoformat()}</updated></entry>"
        for t, u, d in items
    )
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
            f'<title>{html.escape(title)}</title><link href="{html.escape(link)}"/><id>{html.escape(link)}</id>'
            f"<updated>{datetime.now(UTC).isoformat()}</updated>\n{entries}\n</feed>")


def news_sitemap(publication: str, items: list[tuple[str, str, datetime]]) -> str:
    urls = "\n".join(
        f"<url><loc>{html.escape(u)}</loc><news:news><news:publication><news:name>{html.escape(publication)}"
        f"</news:name><news:language>en</news:language></news:publication>"
        f"<news:publication_date>{d.isoformat()}</news:publication_date>"
        f"<news:title>{html.escape(t)}</news:title></news:news></url>"
        for t, u, d in items
    )
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">\n' + urls + "\n</urlset>")


def sitemap(urls: list[str]) -> str:
    body = "\n".join(f"<url><loc>{html.escape(u)}</loc></url>" for u in urls)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
            + body + "\n</urlset>")


def sitemap_index(urls: list[str]) -> str:
    body = "\n".join(f"<sitemap><loc>{html.escape(u)}</loc></sitemap>" for u in urls)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
            + body + "\n</sitemapindex>")


def load_stories(path: Path, *, start: datetime | None = None) -> list[Story]:
    """Stories from an articles.json ({"articles": [{"id", "url", "text", "title"?}]}); one without a title
    is named by its first words."""
    start = start or datetime.now(UTC) - timedelta(days=1)
    stories = []
    for number, item in enumerate(json.loads(path.read_text(encoding="utf-8"))["articles"]):
        first = item["text"].split("\n", 1)[0].split(". ", 1)[0]
        title = item.get("title") or " ".join(first.split()[:12]).rstrip(".,;:")
        stories.append(Story(f"story-{item['id']}", title, item["text"], start + timedelta(minutes=7 * number)))
    return stories
