"""Collection: sources, the Segment-compatible tracking API, the durable ingestion queue, quarantine."""
