"""newsdedup's ingest side: configuration, spiders, extraction, service and CLI."""
