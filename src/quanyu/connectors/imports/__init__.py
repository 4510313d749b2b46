"""File imports: platform order exports, offline lists and CRM files, read strictly and written
whole or not at all through the same queue as collected events (docs/connectors.md)."""
