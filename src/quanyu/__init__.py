"""Quanyu 全域: self-hosted omnichannel customer data and marketing platform."""

__version__ = "0.1.0"
