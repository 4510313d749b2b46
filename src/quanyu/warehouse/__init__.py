"""The warehouse: events (and later identity graph, profiles, segments) behind Ibis."""

from quanyu.warehouse.base import Warehouse, open_warehouse

__all__ = ["Warehouse", "open_warehouse"]
