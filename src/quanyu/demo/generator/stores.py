"""The brand's physical stores and the store guides (导购) who work in them."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Store:
    """A store with its guides; `kiosk` is the shared check-in tablet at its events."""

    store_id: str
    name: str
    city: str
    province: str
    guides: tuple[str, ...]

    @property
    def kiosk(self) -> str:
        """Device id of the store's shared event check-in tablet."""
        return f"KIOSK-{self.store_id}-01"


def _store(store_id: str, name: str, city: str, province: str, guides: int) -> Store:
    return Store(store_id, name, city, province, tuple(f"G-{store_id}-{i:02d}" for i in range(1, guides + 1)))


STORES: tuple[Store, ...] = (
    _store("SH001", "上海南京西路店", "上海", "上海", 6),
    _store("SH002", "上海徐汇滨江店", "上海", "上海", 4),
    _store("HZ001", "杭州龙井路店", "杭州", "浙江", 5),
    _store("HZ002", "杭州湖滨店", "杭州", "浙江", 5),
    _store("BJ001", "北京三里屯店", "北京", "北京", 4),
    _store("GZ001", "广州天河店", "广州", "广东", 3),
    _store("SZ001", "深圳万象城店", "深圳", "广东", 3),
    _store("CD001", "成都太古里店", "成都", "四川", 3),
    _store("NJ001", "南京新街口店", "南京", "江苏", 3),
    _store("SU001", "苏州观前街店", "苏州", "江苏", 3),
)
STORE_CITIES = frozenset(store.city for store in STORES)
_BY_CITY: dict[str, tuple[Store, ...]] = {
    city: tuple(s for s in STORES if s.city == city) for city in STORE_CITIES
}


def home_store(rng: random.Random, city: str) -> Store:
    """The store a shopper from `city` frequents; travellers end up in Shanghai or Hangzhou."""
    local = _BY_CITY.get(city)
    if local:
        return rng.choice(local)
    return rng.choice(STORES[:4])
