"""A deterministic synthetic omnichannel retailer, "山茶记 Camellia Tea".

`generate_brand()` returns Segment-spec messages grouped by the source that would send
them (website, mini-program, Tmall, POS...) plus a ground truth of which person sent
which identifier, kept outside the messages so identity resolution can be scored.
"""

from .brand import BRAND_NAME, DemoBrand, generate_brand
from .catalog import PRODUCTS, Product
from .noise import JUNK_IDENTIFIERS
from .sources import SOURCE_TYPES, SOURCES, DemoSource
from .stores import STORES, Store

__all__ = [
    "BRAND_NAME",
    "JUNK_IDENTIFIERS",
    "PRODUCTS",
    "SOURCES",
    "SOURCE_TYPES",
    "STORES",
    "DemoBrand",
    "DemoSource",
    "Product",
    "Store",
    "generate_brand",
]
