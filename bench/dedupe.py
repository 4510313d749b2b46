"""Probabilistic dedupe benchmark: Quanyu's `match` vs plain Splink on the same typo-heavy list.

Generates person records with known truth, the way a brand's merged customer lists look:
three quarters Chinese names (shared surnames, the most common full names such as 王伟 and
张伟 given to one person in ten), the rest Latin names with accents; about two records per
person; one-character typos, swapped surname and given name, a Chinese full name typed into
the surname field, birth dates in six formats, phones with country codes, dashes or masked
(138****1234), missing fields, households sharing a surname, phone and address. Then, on the
same in-memory table and in the same run, times from the table to clusters:

- baseline: plain Splink with the standard configuration of Splink's own deduplication
  example (forename/surname, date of birth, exact and email comparisons, docs-style blocking
  and training), on the columns lower-cased and trimmed, phones reduced to digits;
- Quanyu: `quanyu.identity.matching.match` on the raw columns.

Both cluster at a match probability of 0.95 and are scored by pairwise precision and recall
against the truth.

    .venv/bin/python bench/dedupe.py [--records 1000000] [--people N] [--repeat 1]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).parent))
from dataset import median, write_result
from quanyu.identity.matching import match

THRESHOLD = 0.95
ROLES = {
    "first_name": "first_name",
    "last_name": "last_name",
    "birth_date": "birth_date",
    "phone": "phone",
    "email": "email",
    "address": "address",
    "city": "city",
    "district": "district",
    "postcode": "postcode",
}

# Chinese surnames by frequency (王 and 李 are about 7% each), and a few compound ones.
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
SURNAME_WEIGHTS = np.array([7.1, 7.0, 6.7, 5.4, 4.5, 3.1, 2.2, 2.0, 1.9, 1.9, 1.7, 1.5, 1.2, 1.2, 1.2, 1.2]
                           + [1.0] * 16 + [0.6] * 18)  # fmt: skip
COMPOUND = ["欧阳", "司马", "诸葛", "上官", "东方", "慕容"]
GIVEN_CHARS = list(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂英华建国红玲斌浩宇轩子涵欣怡梓萱晨阳博文雪梅志鹏海燕"
)
# One person in ten carries one of the most common full names in China.
COMMON_NAMES = ["王伟", "张伟", "王芳", "李伟", "李娜", "张敏", "李静", "王静", "刘伟", "王秀英",
                "张丽", "李秀英", "王丽", "张静", "张秀英", "李强", "王敏", "李敏", "王磊", "刘洋"]  # fmt: skip
FIRST = ["james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "william",
         "elizabeth", "david", "barbara", "richard", "susan", "joseph", "jessica", "thomas", "sarah",
         "charles", "karen", "josé", "zoë", "renée", "andré", "françois", "chloé", "müller", "søren",
         "anna", "peter", "lucas", "emma", "olivia", "noah", "liam", "sophia", "mia", "ethan"]  # fmt: skip
LAST = ["smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodríguez",
        "martínez", "hernández", "lopez", "gonzález", "wilson", "anderson", "thomas", "taylor", "moore",
        "jackson", "martin", "lee", "pérez", "thompson", "white", "harris", "sánchez", "clark", "lewis",
        "robinson", "walker", "young", "allen", "king", "wright", "scott", "torres", "nguyen", "hill"]  # fmt: skip
CITIES = {
    "上海": ["浦东新区", "徐汇区", "静安区", "黄浦区", "长宁区", "普陀区", "闵行区", "宝山区"],
    "北京": ["朝阳区", "海淀区", "东城区", "西城区", "丰台区", "通州区"],
    "广州": ["天河区", "越秀区", "海珠区", "白云区", "番禺区"],
    "深圳": ["南山区", "福田区", "罗湖区", "宝安区", "龙岗区"],
    "杭州": ["西湖区", "上城区", "拱墅区", "滨江区", "余杭区"],
    "成都": ["锦江区", "青羊区", "武侯区", "成华区", "高新区"],
    "南京": ["鼓楼区", "玄武区", "秦淮区", "建邺区"],
    "福州": ["鼓楼区", "台江区", "仓山区", "晋安区"],
}
STREETS = list("中山解放人民建设和平长江黄河新华复兴文化")
STREET_SUFFIX = ["路", "大道", "街"]
DOMAINS = ["qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "sina.com"]


def generate(people: int, seed: int = 3) -> tuple[pa.Table, np.ndarray]:
    """Records (raw text columns + record_id) and the true person of each record."""
    rng = np.random.default_rng(seed)
    persons = _persons(people, rng)
    copies = rng.choice([1, 2, 3, 4], size=people, p=[0.35, 0.35, 0.2, 0.1])
    person_of = np.repeat(np.arange(people), copies)
    first_copy = np.concatenate([[True], person_of[1:] != person_of[:-1]])
    rows = [_record(persons, int(p), bool(f), rng) for p, f in zip(person_of, first_copy, strict=True)]
    order = rng.permutation(len(rows))
    columns = {name: [rows[i][k] for i in order] for k, name in enumerate(_RECORD_FIELDS)}
    table = pa.table({"record_id": np.arange(len(rows), dtype=np.int64), **columns})
    return table, person_of[order]


_RECORD_FIELDS = ("first_name", "last_name", "birth_date", "phone", "email", "address", "city", "district",
                  "postcode")  # fmt: skip


def _persons(n: int, rng: np.random.Generator) -> dict[str, list]:
    chinese = rng.random(n) < 0.75
    surname_p = SURNAME_WEIGHTS / SURNAME_WEIGHTS.sum()
    out: dict[str, list] = {k: [] for k in ("chinese", "surname", "given", "dob", "phone", "email",
                                               "city", "district", "street", "postcode")}  # fmt: skip
    births = rng.integers(np.datetime64("1950-01-01").astype(int), np.datetime64("2006-01-01").astype(int), n)
    phones = rng.choice(np.arange(10**8), size=n, replace=False)
    prefixes = rng.choice(["138", "139", "135", "136", "150", "151", "186", "187", "177", "199"], n)
    city_names = list(CITIES)
    for i in range(n):
        if chinese[i]:
            if rng.random() < 0.1:
                full = COMMON_NAMES[rng.integers(len(COMMON_NAMES))]
                surname, given = full[0], full[1:]
            else:
                r = rng.random()
                surname = (
                    COMPOUND[rng.integers(len(COMPOUND))]
                    if r < 0.01
                    else SURNAMES[rng.choice(50, p=surname_p)]
                )
                given = "".join(rng.choice(GIVEN_CHARS, size=rng.choice([1, 2], p=[0.3, 0.7])))
        else:
            surname, given = LAST[rng.integers(len(LAST))], FIRST[rng.integers(len(FIRST))]
        city = city_names[rng.integers(len(city_names))]
        district_i = rng.integers(len(CITIES[city]))
        out["chinese"].append(bool(chinese[i]))
        out["surname"].append(surname)
        out["given"].append(given)
        out["dob"].append(str(np.datetime64(int(births[i]), "D")))
        out["phone"].append(f"{prefixes[i]}{phones[i]:08d}")
        user = (
            f"{_ascii(given)}{_ascii(surname)}{rng.integers(1, 999)}"
            if not chinese[i]
            else f"u{rng.integers(10**7)}"
        )
        out["email"].append(f"{user}@{DOMAINS[rng.integers(len(DOMAINS))]}" if rng.random() < 0.6 else None)
        out["city"].append(city)
        out["district"].append(CITIES[city][district_i])
        out["street"].append(
            f"{''.join(rng.choice(STREETS, 2))}{STREET_SUFFIX[rng.integers(3)]}{rng.integers(1, 999)}号"
        )
        out["postcode"].append(
            f"{(city_names.index(city) + 10) * 10000 + district_i * 100 + rng.integers(100):06d}"
        )
    # Households: one person in twenty shares a surname, phone and address with the previous one.
    for i in np.flatnonzero(rng.random(n) < 0.05):
        if i and out["chinese"][i] == out["chinese"][i - 1]:
            for k in ("surname", "phone", "city", "district", "street", "postcode"):
                out[k][i] = out[k][i - 1]
    return out


def _ascii(name: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", name) if c.isascii())


def _record(p: dict[str, list], i: int, first: bool, rng: np.random.Generator) -> tuple:
    noisy = 0.5 if first else 1.0  # the first copy is cleaner, as a member sign-up would be
    r = rng.random(12)
    surname, given = p["surname"][i], p["given"][i]
    if r[0] < 0.10 * noisy:
        if p["chinese"][i]:
            given = _chinese_typo(given, rng)
        elif rng.random() < 0.5:
            surname = _latin_typo(surname, rng)
        else:
            given = _latin_typo(given, rng)
    if not p["chinese"][i]:
        surname, given = (_case(surname, rng), _case(given, rng))
    if r[1] < 0.04 * noisy:
        surname, given = given, surname
    elif p["chinese"][i] and r[1] < 0.12 * noisy:
        surname, given = surname + ("" if rng.random() < 0.5 else " ") + given, None  # full name in 姓
    dob = p["dob"][i] if r[2] > 0.08 * noisy else None
    if dob and r[3] < 0.05 * noisy:
        dob = _date_typo(dob, rng)
    phone = _phone(p["phone"][i], rng) if r[4] > 0.15 * noisy else None
    email = p["email"][i] if r[5] < 0.7 else None
    if email and rng.random() < 0.2:
        email = email.upper()
    city, district = p["city"][i], p["district"][i]
    street = p["street"][i]
    if r[6] < 0.05 * noisy:
        street = _chinese_typo(street, rng)
    full_address = rng.random() < 0.5
    address = (f"{city}市{district}{street}" if full_address else f"{street}") if r[7] > 0.2 * noisy else None
    city_out = (city + "市" if rng.random() < 0.5 else city) if r[8] > 0.1 * noisy else None
    district_out = district if r[9] > 0.15 * noisy else None
    postcode = p["postcode"][i] if r[10] > 0.4 else None
    return (given, surname, _date_format(dob, rng) if dob else None, phone, email, address, city_out,
            district_out, postcode)  # fmt: skip


def _chinese_typo(text: str, rng: np.random.Generator) -> str:
    k = int(rng.integers(len(text)))
    return text[:k] + GIVEN_CHARS[rng.integers(len(GIVEN_CHARS))] + text[k + 1 :]


def _latin_typo(text: str, rng: np.random.Generator) -> str:
    if len(text) < 3:
        return text
    k = int(rng.integers(1, len(text) - 1))
    kind = rng.integers(3)
    if kind == 0:
        return text[:k] + text[k + 1] + text[k] + text[k + 2 :]
    if kind == 1:
        return text[:k] + text[k + 1 :]
    return text[:k] + "aeiou"[rng.integers(5)] + text[k + 1 :]


def _case(text: str, rng: np.random.Generator) -> str:
    r = rng.random()
    return text.upper() if r < 0.15 else text.title() if r < 0.8 else text


def _date_typo(iso: str, rng: np.random.Generator) -> str:
    y, m, d = iso.split("-")
    if rng.random() < 0.3 and int(d) <= 12:
        return f"{y}-{d}-{m}"
    return f"{y}-{m}-{min(28, max(1, int(d) + (1 if rng.random() < 0.5 else -1))):02d}"


def _date_format(iso: str, rng: np.random.Generator) -> str:
    y, m, d = iso.split("-")
    k = rng.integers(6)
    return [
        iso,
        f"{y}/{int(m)}/{int(d)}",
        f"{y}{m}{d}",
        f"{d}/{m}/{y}",
        f"{y}年{int(m)}月{int(d)}日",
        f"{y}.{m}.{d}",
    ][k]


def _phone(number: str, rng: np.random.Generator) -> str:
    r = rng.random()
    if r < 0.15:
        return f"{number[:3]}****{number[-4:]}"
    if r < 0.25:
        return f"+86 {number[:3]} {number[3:7]} {number[7:]}"
    if r < 0.35:
        return f"{number[:3]}-{number[3:7]}-{number[7:]}"
    if r < 0.37:
        k = int(rng.integers(3, 11))
        return number[:k] + str(rng.integers(10)) + number[k + 1 :]
    return number


# -- the two contenders ---------------------------------------------------------------------


def baseline(records: pa.Table) -> tuple[float, np.ndarray]:
    """Plain Splink as its deduplication example configures it. Returns (seconds, cluster per record)."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    started = time.perf_counter()
    con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")
    con.register("raw", records)
    cleaned = [f"nullif(lower(trim({c})), '') AS {c}" for c in _RECORD_FIELDS if c != "phone"]
    extra = [
        "nullif(regexp_replace(phone, '[^0-9*]', '', 'g'), '') AS phone",
        "lower(trim(first_name)) || ' ' || lower(trim(last_name)) AS first_name_surname_concat",
    ]
    con.table("raw").project(", ".join(["record_id AS unique_id", *cleaned, *extra])).create("people")
    db_api = DuckDBAPI(con)
    blocking_rules = [
        block_on("substr(first_name,1,3)", "substr(last_name,1,4)", "substr(birth_date,1,4)"),
        block_on("last_name", "birth_date"),
        block_on("first_name", "birth_date"),
        block_on("postcode", "first_name"),
        block_on("postcode", "last_name"),
        block_on("phone"),
        block_on("email"),
    ]
    settings = SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=blocking_rules,
        comparisons=[
            cl.ForenameSurnameComparison(
                "first_name", "last_name", forename_surname_concat_col_name="first_name_surname_concat"
            ),
            cl.DateOfBirthComparison("birth_date", input_is_string=True),
            cl.ExactMatch("phone").configure(term_frequency_adjustments=True),
            cl.EmailComparison("email"),
            cl.JaroWinklerAtThresholds("address", [0.9, 0.7]),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            cl.ExactMatch("district"),
            cl.ExactMatch("postcode"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(db_api.register("people"), settings, log_level=None)
    linker.training.estimate_probability_two_random_records_match(
        [
            block_on("first_name", "last_name", "birth_date"),
            block_on("phone", "last_name"),
            block_on("email"),
        ],
        recall=0.6,
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    # The example's two EM rules; Chinese names repeat so much that a first+last name block holds
    # 150M pairs at a million records, so both are sampled down as Splink 5 allows.
    for rule in (block_on("first_name", "last_name"), block_on("birth_date")):
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True, max_pairs=1e6
        )
    predictions = linker.inference.predict(threshold_match_probability=0.5, warning_mode="never")
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, THRESHOLD)
    out = con.table(clusters.physical_name).select("unique_id", "cluster_id").to_arrow_table()
    elapsed = time.perf_counter() - started
    con.close()
    return elapsed, _clusters_by_record(out.column("unique_id"), out.column("cluster_id"), len(records))


def quanyu(records: pa.Table) -> tuple[float, np.ndarray, dict[str, float]]:
    started = time.perf_counter()
    result = match(records, ROLES, threshold=THRESHOLD, id_column="record_id")
    elapsed = time.perf_counter() - started
    clusters = result.clusters
    labels = _clusters_by_record(clusters.column("record_id"), clusters.column("cluster_id"), len(records))
    return elapsed, labels, result.seconds


def _clusters_by_record(record_ids: pa.ChunkedArray, cluster_ids: pa.ChunkedArray, n: int) -> np.ndarray:
    labels = np.empty(n, dtype=np.int64)
    codes = pc.dictionary_encode(cluster_ids.cast(pa.string())).combine_chunks().indices
    labels[record_ids.to_numpy()] = codes.to_numpy(zero_copy_only=False)
    return labels


def pairwise_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Pairwise precision, recall and F1 of a clustering against the true people."""

    def pairs(counts: np.ndarray) -> int:
        return int((counts * (counts - 1) // 2).sum())

    _, together = np.unique(np.stack([predicted, truth]), axis=1, return_counts=True)
    true_positives = pairs(together)
    predicted_pairs = pairs(np.unique(predicted, return_counts=True)[1])
    true_pairs = pairs(np.unique(truth, return_counts=True)[1])
    precision = true_positives / predicted_pairs if predicted_pairs else 1.0
    recall = true_positives / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--people", type=int, default=None, help="default: enough for --records")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    records, truth = generate(args.people or int(args.records / 2.0) + 1)
    records, truth = records.slice(0, args.records), truth[: args.records]
    print(f"{len(records):,} records of {len(np.unique(truth)):,} people "
          f"generated in {time.perf_counter() - started:.0f}s")  # fmt: skip
    base_runs, ours_runs = [], []
    base_scores: dict[str, float] = {}
    for run in range(args.repeat):
        if not args.skip_baseline:
            base, base_labels = baseline(records)
            base_runs.append(base)
            base_scores = pairwise_scores(base_labels, truth)
            print(f"run {run + 1}: plain Splink {base:.1f}s {base_scores}")
        ours, labels, stages = quanyu(records)
        ours_runs.append(ours)
        scores = pairwise_scores(labels, truth)
        print(f"run {run + 1}: quanyu {ours:.1f}s {scores} {stages}")
    result: dict[str, object] = {
        "records": len(records),
        "people": len(np.unique(truth)),
        "repeat": args.repeat,
        "threshold": THRESHOLD,
        "quanyu_seconds_median": round(median(ours_runs), 1),
        "quanyu_seconds_runs": [round(x, 1) for x in ours_runs],
        "quanyu": scores,
        "quanyu_stages_last_run": stages,
    }
    if base_runs:
        result |= {
            "splink_seconds_median": round(median(base_runs), 1),
            "splink_seconds_runs": [round(x, 1) for x in base_runs],
            "splink": base_scores,
            "ratio_quanyu_to_splink_seconds": round(median(ours_runs) / median(base_runs), 2),
            "f1_quanyu_minus_splink": round(scores["f1"] - base_scores["f1"], 4),
        }
    write_result("dedupe", result)


if __name__ == "__main__":
    main()
