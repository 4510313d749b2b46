"""Processing: drain the ingestion queue, dedupe, normalise, append to the warehouse."""
