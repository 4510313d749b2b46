"""Connectors: platforms that push events to Quanyu in their own formats (a WeChat official
account's message push, ...), checked with the platform's own signature and turned into Segment
messages queued through the same intake as collected events."""
