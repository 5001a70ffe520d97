"""The web dashboard (`newsdedup web`): Starlette + Jinja2 + vendored htmx, read-only by default."""
