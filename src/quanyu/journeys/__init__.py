"""Journeys: durable marketing automation (model, engine, triggers, stats)."""
