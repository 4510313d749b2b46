"""What the brand sells (tea, teaware, snacks) and the coupons it hands out."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

TEA, TEAWARE, SNACKS = "茶叶", "茶具", "零食"


@dataclass(frozen=True)
class Product:
    """One sellable SKU, priced in CNY."""

    product_id: str
    sku: str
    name: str
    category: str
    price: float


def _products() -> tuple[Product, ...]:
    rows = (
        (TEA, "明前西湖龙井 特级 100g", 398.0),
        (TEA, "西湖龙井 一级 250g", 268.0),
        (TEA, "洞庭碧螺春 100g", 228.0),
        (TEA, "黄山毛峰 150g", 158.0),
        (TEA, "安吉白茶 125g", 188.0),
        (TEA, "六安瓜片 100g", 176.0),
        (TEA, "武夷正山小种 200g", 168.0),
        (TEA, "祁门红茶 礼盒 200g", 258.0),
        (TEA, "云南滇红金芽 150g", 138.0),
        (TEA, "安溪铁观音 清香型 250g", 198.0),
        (TEA, "武夷大红袍 岩茶 150g", 328.0),
        (TEA, "凤凰单丛 鸭屎香 100g", 218.0),
        (TEA, "台湾东方美人 75g", 268.0),
        (TEA, "福鼎白毫银针 100g", 458.0),
        (TEA, "白牡丹 饼茶 300g", 238.0),
        (TEA, "老寿眉 2018 饼茶 350g", 298.0),
        (TEA, "勐海熟普洱 357g", 188.0),
        (TEA, "冰岛生普洱 200g", 588.0),
        (TEA, "横县茉莉花茶 100g", 88.0),
        (TEA, "桂花乌龙 冷泡茶 15袋", 59.0),
        (TEA, "山茶记 四季茶礼盒", 688.0),
        (TEAWARE, "白瓷盖碗 150ml", 128.0),
        (TEAWARE, "宜兴紫砂西施壶 200ml", 860.0),
        (TEAWARE, "玻璃公道杯 300ml", 59.0),
        (TEAWARE, "青瓷品茗杯 六只装", 168.0),
        (TEAWARE, "便携旅行茶具套装", 239.0),
        (TEAWARE, "竹制茶盘", 299.0),
        (TEAWARE, "双层玻璃泡茶杯", 89.0),
        (SNACKS, "龙井绿茶酥 8枚", 49.0),
        (SNACKS, "杭州桂花糕 礼盒", 68.0),
        (SNACKS, "茶香瓜子 500g", 29.9),
        (SNACKS, "台式凤梨酥 10枚", 79.0),
        (SNACKS, "抹茶曲奇 罐装", 56.0),
        (SNACKS, "每日坚果礼盒 30包", 139.0),
        (SNACKS, "手工芝麻糖", 36.0),
        (SNACKS, "山楂条 400g", 26.8),
        (SNACKS, "红茶黄油饼干", 45.0),
        (SNACKS, "龙井茶糕 6枚", 39.0),
        (SNACKS, "话梅茶梅 250g", 32.0),
        (SNACKS, "茶点拼盘 中秋礼盒", 198.0),
    )
    prefixes = {TEA: "TEA", TEAWARE: "WARE", SNACKS: "SNK"}
    counts: dict[str, int] = {}
    products = []
    for category, name, price in rows:
        counts[category] = counts.get(category, 0) + 1
        product_id = f"{prefixes[category]}-{counts[category]:03d}"
        products.append(Product(product_id, f"{product_id}-{_size(name)}", name, category, price))
    return tuple(products)


_UNITS = (("只装", "PCS"), ("枚", "PC"), ("袋", "BAG"), ("包", "PK"))


def _size(name: str) -> str:
    last = name.rsplit(" ", 1)[-1]
    if not last[0].isdigit():
        return "STD"
    for unit, code in _UNITS:
        last = last.replace(unit, code)
    return last.upper()


PRODUCTS: tuple[Product, ...] = _products()
_BY_CATEGORY = {c: tuple(p for p in PRODUCTS if p.category == c) for c in (TEA, TEAWARE, SNACKS)}


@dataclass(frozen=True)
class Coupon:
    """A money-off coupon: `amount` off an order of at least `threshold`."""

    coupon_id: str
    name: str
    threshold: float
    amount: float


COUPONS: dict[str, Coupon] = {
    c.coupon_id: c
    for c in (
        Coupon("CPN-NEWMEMBER-20", "新会员礼 满99减20", 99.0, 20.0),
        Coupon("CPN-BIRTHDAY-50", "生日礼 满199减50", 199.0, 50.0),
        Coupon("CPN-FESTIVAL-30", "大促券 满199减30", 199.0, 30.0),
        Coupon("CPN-FESTIVAL-80", "大促券 满499减80", 499.0, 80.0),
        Coupon("CPN-WINBACK-30", "老客回归 满129减30", 129.0, 30.0),
        Coupon("CPN-GUIDE-15", "导购专享 满99减15", 99.0, 15.0),
        Coupon("CPN-SALON-40", "品鉴会专享 满299减40", 299.0, 40.0),
    )
}

SEARCH_TERMS = (
    "龙井",
    "明前龙井",
    "白茶",
    "普洱",
    "红茶",
    "铁观音",
    "大红袍",
    "茶具",
    "盖碗",
    "紫砂壶",
    "礼盒",
    "送礼",
    "零食",
    "绿茶酥",
    "桂花糕",
    "冷泡茶",
    "茉莉花茶",
    "中秋礼盒",
    "凤梨酥",
    "茶叶",
)


def pick_products(rng: random.Random, tea_lover: float, gift: bool = False) -> list[Product]:
    """Products a shopper looks at; tea lovers look at tea, others at snacks."""
    count = 1 + (rng.random() < 0.45) + (rng.random() < 0.15) + gift
    return [_pick_product(rng, tea_lover) for _ in range(count)]


def _pick_product(rng: random.Random, tea_lover: float) -> Product:
    roll = rng.random()
    if roll < 0.25 + 0.5 * tea_lover:
        return rng.choice(_BY_CATEGORY[TEA])
    if roll < 0.38 + 0.5 * tea_lover:
        return rng.choice(_BY_CATEGORY[TEAWARE])
    return rng.choice(_BY_CATEGORY[SNACKS])


def basket_lines(rng: random.Random, products: list[Product]) -> list[dict[str, Any]]:
    """Segment `products` entries with quantities (snacks get bought in twos and threes)."""
    picked: dict[Product, int] = {}
    for product in products:
        picked[product] = picked.get(product, 0) + 1
    return [product_line(p, n * _units(rng, p)) for p, n in picked.items()]


def _units(rng: random.Random, product: Product) -> int:
    if product.category == SNACKS:
        return rng.choice((1, 1, 2, 3))
    return 2 if rng.random() < 0.1 else 1


def product_fields(product: Product) -> dict[str, Any]:
    """A product as Segment's `Product Viewed` properties."""
    return {
        "product_id": product.product_id,
        "sku": product.sku,
        "name": product.name,
        "category": product.category,
        "price": product.price,
    }


def product_line(product: Product, quantity: int = 1) -> dict[str, Any]:
    """A product as a Segment e-commerce spec order line."""
    line = product_fields(product)
    line["quantity"] = quantity
    return line
