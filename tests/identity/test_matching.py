"""Probabilistic matching: the spec, blocking, clustering and `match` end to end."""

from __future__ import annotations

import random
from itertools import combinations

import duckdb
import pyarrow as pa
import pytest

from quanyu.errors import InvalidInput
from quanyu.identity import blocking, scoring
from quanyu.identity.match_spec import PersonMatchSpec, person_spec, trained_by
from quanyu.identity.matching import STAGES, cluster, match
from quanyu.identity.person_records import standardise

ROLES = {
    "first_name": "first",
    "last_name": "last",
    "birth_date": "dob",
    "phone": "phone",
    "email": "email",
    "address": "address",
    "city": "city",
    "district": "district",
}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚"
LATIN_FIRST = ["james", "mary", "john", "linda", "david", "susan", "josé", "zoë", "andré", "chloé"]
LATIN_LAST = ["smith", "jones", "garcia", "martínez", "brown", "miller", "davis", "wilson"]
PLACES = {
    "上海": ["浦东新区", "徐汇区", "静安区"],
    "北京": ["朝阳区", "海淀区"],
    "杭州": ["西湖区", "滨江区"],
}


def people_list(people: int, seed: int = 5) -> tuple[pa.Table, list[int]]:
    """A customer list with known duplicates: typos, swapped names, dates and phones written
    several ways, masked phones, missing fields. Returns the records and each one's person."""
    rnd = random.Random(seed)
    rows: list[dict[str, str | None]] = []
    truth: list[int] = []
    for p in range(people):
        chinese = rnd.random() < 0.7
        last = rnd.choice(SURNAMES) if chinese else rnd.choice(LATIN_LAST)
        first = "".join(rnd.sample(GIVEN, rnd.choice([1, 2]))) if chinese else rnd.choice(LATIN_FIRST)
        year, month, day = rnd.randint(1950, 2004), rnd.randint(1, 12), rnd.randint(1, 28)
        phone = f"1{rnd.choice('3589')}{rnd.randrange(10**9):09d}"
        city = rnd.choice(list(PLACES))
        district = rnd.choice(PLACES[city])
        street = f"{rnd.choice('中山解放人民建设')}{rnd.choice(['路', '街'])}{rnd.randint(1, 999)}号"
        email = (
            f"u{p}x{rnd.randrange(1000)}@{rnd.choice(['qq.com', '163.com'])}" if rnd.random() < 0.5 else None
        )
        for copy in range(rnd.choice([1, 2, 2, 3])):
            r = rnd.random
            f, la = first, last
            if copy and r() < 0.15:
                f = _typo(f, rnd, GIVEN if chinese else "aeiou")
            if copy and r() < 0.08:
                f, la = la, f
            elif chinese and copy and r() < 0.1:
                f, la = None, la + f  # the full name typed into 姓
            dob = rnd.choice([f"{year}-{month:02d}-{day:02d}", f"{year}/{month}/{day}", f"{year}{month:02d}{day:02d}",
                              f"{year}年{month}月{day}日", f"{day:02d}/{month:02d}/{year}"])  # fmt: skip
            tel = rnd.choice(
                [phone, phone, f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}", f"{phone[:3]}****{phone[7:]}"]
            )
            rows.append(
                {
                    "id": f"C{len(rows):05d}",
                    "first": f if chinese else (f.title() if f and r() < 0.5 else f),
                    "last": la,
                    "dob": dob if r() > 0.1 else None,
                    "phone": tel if r() > 0.15 else None,
                    "email": email.upper() if email and r() < 0.2 else email,
                    "address": f"{city}市{district}{street}" if r() < 0.5 else street,
                    "city": city if r() < 0.5 else f"{city}市",
                    "district": district if r() > 0.2 else None,
                }
            )
            truth.append(p)
    order = list(range(len(rows)))
    rnd.shuffle(order)
    columns = {k: [rows[i][k] for i in order] for k in rows[0]}
    return pa.table(columns, schema=pa.schema([(k, pa.string()) for k in columns])), [truth[i] for i in order]


def _typo(text: str, rnd: random.Random, alphabet: str) -> str:
    k = rnd.randrange(len(text))
    return text[:k] + rnd.choice(alphabet) + text[k + 1 :]


def pairwise(clusters: list[str], truth: list[int]) -> tuple[float, float]:
    found = {(a, b) for a, b in combinations(range(len(truth)), 2) if clusters[a] == clusters[b]}
    true = {(a, b) for a, b in combinations(range(len(truth)), 2) if truth[a] == truth[b]}
    return len(found & true) / max(len(found), 1), len(found & true) / max(len(true), 1)


@pytest.fixture(scope="module")
def customers() -> tuple[pa.Table, list[int]]:
    return people_list(520)


@pytest.fixture(scope="module")
def matched(customers: tuple[pa.Table, list[int]]):  # type: ignore[no-untyped-def]
    return match(customers[0], ROLES, threshold=0.95, review_threshold=0.3, id_column="id")


def test_match_finds_the_duplicates_of_a_messy_list(customers, matched) -> None:  # type: ignore[no-untyped-def]
    table, truth = customers
    assert table.num_rows >= 1000  # large enough to train on
    assert matched.clusters.column("record_id").to_pylist() == table.column("id").to_pylist()
    precision, recall = pairwise(matched.clusters.column("cluster_id").to_pylist(), truth)
    assert precision >= 0.97, precision
    assert recall >= 0.9, recall


def test_cluster_ids_are_the_smallest_record_id_of_the_cluster(matched) -> None:  # type: ignore[no-untyped-def]
    members: dict[str, list[str]] = {}
    for rec, cl in zip(
        matched.clusters.column("record_id").to_pylist(),
        matched.clusters.column("cluster_id").to_pylist(),
        strict=True,
    ):
        members.setdefault(cl, []).append(rec)
    assert all(cl == min(recs) for cl, recs in members.items())


def test_pairs_and_review_split_at_the_threshold(matched) -> None:  # type: ignore[no-untyped-def]
    merged = matched.pairs.column("match_probability").to_pylist()
    review = matched.review.column("match_probability").to_pylist()
    assert merged and min(merged) >= 0.95
    assert review and all(0.3 <= p < 0.95 for p in review)
    assert matched.review.column_names == ["left_id", "right_id", "match_weight", "match_probability"]
    assert set(matched.seconds) == {"standardising", "training", "scoring", "clustering"}
    assert matched.model["probability_two_random_records_match"] > 0


def test_same_input_same_result_and_no_database_left_open(customers, matched, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    opened: list[duckdb.DuckDBPyConnection] = []
    connect = duckdb.connect

    def tracking(*args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(connect(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(scoring.duckdb, "connect", tracking)
    again = match(customers[0], ROLES, threshold=0.95, review_threshold=0.3, id_column="id")
    assert again.clusters.equals(matched.clusters)
    assert again.pairs.select(["left_id", "right_id"]).equals(matched.pairs.select(["left_id", "right_id"]))
    with pytest.raises(duckdb.ConnectionException):  # the one holding the tables, first opened
        opened[0].execute("SELECT 1")


def test_a_small_list_matches_on_the_built_in_priors() -> None:
    table = pa.table(
        {
            "id": ["1", "2", "3", "4", "5"],
            "name": ["王伟", "王 伟", "李娜", "Zhang San", "王芳"],
            "phone": ["13800001234", "138****1234", None, "13900001111", "13700002222"],
            "dob": ["1990-01-02", "1990/1/2", None, "1985-05-05", "1992-03-04"],
        }
    )
    stages: list[str] = []
    roles = {"full_name": "name", "phone": "phone", "birth_date": "dob"}
    result = match(table, roles, id_column="id", progress=stages.append)
    assert result.clusters.column("cluster_id").to_pylist() == ["1", "1", "3", "4", "5"]
    assert stages == list(STAGES)


@pytest.mark.parametrize("rows", [0, 1])
def test_empty_and_single_record_lists(rows: int) -> None:
    table = pa.table({"id": ["1"], "name": ["王伟"]}).slice(0, rows)
    result = match(table, {"full_name": "name"}, id_column="id")
    assert result.clusters.column("cluster_id").to_pylist() == table.column("id").to_pylist()
    assert result.pairs.num_rows == 0


def test_cluster_ids_follow_numeric_order_when_ids_are_numbers() -> None:
    pairs = pa.table(
        {"unique_id_l": pa.array([0, 2], pa.int64()), "unique_id_r": pa.array([1, 3], pa.int64())}
    )
    numeric = cluster(pa.array(["10", "9", "b", "a"]), pairs).column("cluster_id").to_pylist()
    assert numeric == ["10", "10", "a", "a"]
    numbers = cluster(pa.array(["10", "9", "100", "11"]), pairs).column("cluster_id").to_pylist()
    assert numbers == ["9", "9", "11", "11"]
    ints = cluster(pa.array([10, 9, 8, 7]), pairs).column("cluster_id").to_pylist()
    assert ints == [9, 9, 7, 7]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 1.0}, "between 0 and 1"),
        ({"threshold": 0.0}, "between 0 and 1"),
        ({"review_threshold": 1.5}, "between 0 and 1"),
        ({"threshold": 0.8, "review_threshold": 0.9}, "must be below threshold"),
        ({"id_column": "nope"}, "missing id column"),
        ({"roles": {"nickname": "name"}}, "unknown role"),
        ({"roles": {"phone": "empty"}}, "no usable matching column"),
    ],
)
def test_readable_errors(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    table = pa.table(
        {"id": ["1", "2"], "name": ["王伟", "李娜"], "empty": pa.array([None, None], pa.string())}
    )
    args = {"roles": {"full_name": "name"}, "id_column": "id", **kwargs}
    with pytest.raises(InvalidInput, match=message):
        match(table, **args)


def test_duplicate_ids_are_refused() -> None:
    table = pa.table({"id": ["1", "1"], "name": ["王伟", "李娜"]})
    with pytest.raises(InvalidInput, match="duplicate id: '1'"):
        match(table, {"full_name": "name"}, id_column="id")


# -- the spec ------------------------------------------------------------------------------


def test_spec_is_chosen_from_the_columns_present() -> None:
    spec = person_spec(["surname", "given_name", "name_key", "name_fz", "birth_date", "postcode"])
    assert spec.comparisons == ("name", "birth_date", "contact")
    assert spec.contact_columns == ("postcode",)
    assert all("phone" not in part for rule in spec.blocking_rules for part in rule)
    assert PersonMatchSpec.model_validate_json(spec.model_dump_json()) == spec


def test_two_training_rules_estimate_every_comparison(customers) -> None:  # type: ignore[no-untyped-def]
    people = standardise(customers[0], ROLES, "id")
    spec = person_spec(people.column_names)
    plan = scoring.training_plan(spec, dict.fromkeys(spec.training_rules, 10**6))
    assert set().union(*(trained_by(rule, spec) for rule in plan)) == set(spec.comparisons)
    assert plan[0] == ("email",)  # personal identifiers first: pairs sharing a phone include families


def test_blocking_keys_pair_records_that_agree_and_ignore_missing_values() -> None:
    people = pa.table(
        {
            "unique_id": pa.array([0, 1, 2, 3], pa.int64()),
            "phone": ["138", "138", None, None],
            "birth_date": ["1990-01-01", "1990-01-01", "1990-01-01", None],
            "surname": ["王", "李", "王", "王"],
        }
    )
    rules = [("phone",), ("birth_date", "substr(surname, 1, 1)")]
    con = duckdb.connect()
    con.register("people", people)
    con.sql(blocking.sql(blocking.keys_query("people", rules))).create("keys")
    counts = [con.sql(blocking.sql(blocking.pair_count_query("keys", i))).fetchone() for i in range(2)]
    pairs = con.sql(blocking.sql(blocking.blocked_pairs_query("keys", [0, 1]))).fetchall()
    assert counts == [(1,), (1,)]
    assert sorted(pairs) == [("0", 0, 1), ("1", 0, 2)]
