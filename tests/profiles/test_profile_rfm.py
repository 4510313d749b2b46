"""RFM scores by quintile cut points over the workspace's buyers, and the eight segments."""

from __future__ import annotations

from profilekit import Ledger, row_of

from quanyu.profiles import refresh

# Ten buyers: F = orders (1..10), M and R in other orders, every value distinct.
_MONETARY_RANK = [3, 10, 1, 7, 5, 2, 9, 4, 8, 6]  # buyer i's revenue rank
_RECENCY_RANK = [10, 2, 5, 1, 8, 6, 3, 9, 4, 7]  # buyer i's last-purchase rank (10 = latest)


def _expected(rank: int) -> int:
    return (rank + 1) // 2  # two buyers per quintile


def _ten_buyers(ledger: Ledger) -> None:
    for i in range(10):
        orders, revenue, last = i + 1, 100.0 * _MONETARY_RANK[i], float(_RECENCY_RANK[i])
        for k in range(orders):
            ledger.order(f"b{i}", last - k * 0.01, revenue / orders)
    ledger.add("browser", 1.0)  # never bought
    ledger.store()


def test_distinct_values_score_like_quintiles(ledger: Ledger) -> None:
    _ten_buyers(ledger)
    refresh(ledger.warehouse, ledger.workspace_id)
    for i in range(10):
        row = row_of(ledger.warehouse, ledger.workspace_id, f"prof_b{i}")
        assert row is not None
        assert (row["rfm_recency"], row["rfm_frequency"], row["rfm_monetary"]) == (
            _expected(_RECENCY_RANK[i]), _expected(i + 1), _expected(_MONETARY_RANK[i]),
        ), i  # fmt: skip
    browser = row_of(ledger.warehouse, ledger.workspace_id, "prof_browser")
    assert browser is not None
    assert (browser["rfm_recency"], browser["rfm_segment"], browser["order_count"]) == (None, None, 0)


def test_segments(ledger: Ledger) -> None:
    _ten_buyers(ledger)
    refresh(ledger.warehouse, ledger.workspace_id)
    rows = {i: row_of(ledger.warehouse, ledger.workspace_id, f"prof_b{i}") for i in range(10)}
    segment = {i: row["rfm_segment"] for i, row in rows.items() if row}
    # b9: R 4, F 5, M 3 → all high. b0: R 5, F 1, M 2 → recent only. b2: R 3, F 2, M 1.
    # b3: R 1, F 2, M 4 → big spender gone quiet. b6: R 2, F 4, M 5 → loyal, slipping.
    assert segment[9] == "important_value"  # 重要价值客户
    assert segment[0] == "general_development"  # 一般发展客户
    assert segment[2] == "general_development"
    assert segment[3] == "important_winback"  # 重要挽留客户
    assert segment[6] == "important_retention"  # 重要保持客户


def test_ties_share_a_score(ledger: Ledger) -> None:
    # Six one-order buyers and four two-order buyers, all spending the same, on the same day.
    for i in range(10):
        for _ in range(1 if i < 6 else 2):
            ledger.order(f"p{i}", 5.0, 120.0 / (1 if i < 6 else 2))
    ledger.store()
    refresh(ledger.warehouse, ledger.workspace_id)
    rows = [row_of(ledger.warehouse, ledger.workspace_id, f"prof_p{i}") for i in range(10)]
    frequency = [r["rfm_frequency"] for r in rows if r]
    assert set(frequency[:6]) == {1} and set(frequency[6:]) == {4}
    assert {r["rfm_monetary"] for r in rows if r} == {1} and {r["rfm_recency"] for r in rows if r} == {1}
