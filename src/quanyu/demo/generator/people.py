"""The demo brand's customers: who they are and which identifiers they have handed out."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .identifiers import IdentifierFactory

# (surname, pinyin, weight): the most common surnames, roughly by frequency.
SURNAMES = (
    ("王", "wang", 7.1),
    ("李", "li", 7.0),
    ("张", "zhang", 6.7),
    ("刘", "liu", 5.4),
    ("陈", "chen", 4.5),
    ("杨", "yang", 3.1),
    ("黄", "huang", 2.5),
    ("赵", "zhao", 2.3),
    ("吴", "wu", 2.0),
    ("周", "zhou", 1.9),
    ("徐", "xu", 1.3),
    ("孙", "sun", 1.3),
    ("马", "ma", 1.1),
    ("朱", "zhu", 1.1),
    ("胡", "hu", 1.0),
    ("郭", "guo", 1.0),
    ("何", "he", 0.9),
    ("林", "lin", 0.9),
    ("罗", "luo", 0.8),
    ("高", "gao", 0.8),
    ("郑", "zheng", 0.7),
    ("梁", "liang", 0.7),
    ("谢", "xie", 0.6),
    ("宋", "song", 0.5),
    ("唐", "tang", 0.5),
    ("许", "xu", 0.5),
    ("韩", "han", 0.5),
    ("冯", "feng", 0.4),
    ("邓", "deng", 0.4),
    ("曹", "cao", 0.4),
    ("彭", "peng", 0.4),
    ("曾", "zeng", 0.3),
    ("萧", "xiao", 0.3),
    ("田", "tian", 0.3),
    ("董", "dong", 0.3),
    ("潘", "pan", 0.3),
    ("袁", "yuan", 0.3),
    ("蔡", "cai", 0.3),
    ("蒋", "jiang", 0.3),
    ("余", "yu", 0.3),
    ("欧阳", "ouyang", 0.05),
    ("司马", "sima", 0.02),
)
_SURNAME_CUM = tuple(sum(weight for _, _, weight in SURNAMES[: i + 1]) for i in range(len(SURNAMES)))

# Given names as (characters, pinyin); one or two characters.
FEMALE_GIVEN = (
    ("芳", "fang"),
    ("娜", "na"),
    ("敏", "min"),
    ("静", "jing"),
    ("丽", "li"),
    ("婷", "ting"),
    ("雪", "xue"),
    ("琳", "lin"),
    ("颖", "ying"),
    ("倩", "qian"),
    ("晓燕", "xiaoyan"),
    ("欣怡", "xinyi"),
    ("梓涵", "zihan"),
    ("诗涵", "shihan"),
    ("雨桐", "yutong"),
    ("佳怡", "jiayi"),
    ("思琪", "siqi"),
    ("慧敏", "huimin"),
    ("玉兰", "yulan"),
    ("秀英", "xiuying"),
    ("美玲", "meiling"),
    ("嘉欣", "jiaxin"),
    ("若曦", "ruoxi"),
    ("一诺", "yinuo"),
    ("可馨", "kexin"),
    ("梦瑶", "mengyao"),
    ("雅静", "yajing"),
)
MALE_GIVEN = (
    ("伟", "wei"),
    ("强", "qiang"),
    ("磊", "lei"),
    ("军", "jun"),
    ("洋", "yang"),
    ("勇", "yong"),
    ("杰", "jie"),
    ("涛", "tao"),
    ("斌", "bin"),
    ("超", "chao"),
    ("浩然", "haoran"),
    ("子轩", "zixuan"),
    ("宇航", "yuhang"),
    ("俊杰", "junjie"),
    ("志强", "zhiqiang"),
    ("建华", "jianhua"),
    ("明辉", "minghui"),
    ("国栋", "guodong"),
    ("文博", "wenbo"),
    ("一鸣", "yiming"),
    ("思远", "siyuan"),
    ("天佑", "tianyou"),
    ("家豪", "jiahao"),
    ("博文", "bowen"),
    ("振华", "zhenhua"),
)
LATIN_FIRST = {
    "female": ("Emily", "Grace", "Chloe", "Vivian", "Cindy", "Sophie", "Alice", "Iris"),
    "male": ("Kevin", "Jason", "Eric", "Leo", "David", "Tony", "Frank", "Vincent"),
}

# (city, province, pinyin, weight). Store cities first; the brand is strongest in the east.
CITIES = (
    ("上海", "上海", "shanghai", 14.0),
    ("杭州", "浙江", "hangzhou", 10.0),
    ("北京", "北京", "beijing", 9.0),
    ("广州", "广东", "guangzhou", 6.0),
    ("深圳", "广东", "shenzhen", 6.0),
    ("成都", "四川", "chengdu", 5.0),
    ("南京", "江苏", "nanjing", 5.0),
    ("苏州", "江苏", "suzhou", 5.0),
    ("武汉", "湖北", "wuhan", 3.5),
    ("西安", "陕西", "xian", 3.0),
    ("重庆", "重庆", "chongqing", 3.0),
    ("宁波", "浙江", "ningbo", 2.5),
    ("长沙", "湖南", "changsha", 2.5),
    ("天津", "天津", "tianjin", 2.0),
    ("厦门", "福建", "xiamen", 2.0),
    ("青岛", "山东", "qingdao", 2.0),
    ("郑州", "河南", "zhengzhou", 1.5),
    ("昆明", "云南", "kunming", 1.5),
    ("合肥", "安徽", "hefei", 1.5),
    ("福州", "福建", "fuzhou", 1.5),
)
_CITY_CUM = tuple(sum(c[3] for c in CITIES[: i + 1]) for i in range(len(CITIES)))

MEMBER_LEVELS = ("普通", "银卡", "金卡", "黑金")
_MAIL_DOMAINS = (
    "qq.com",
    "163.com",
    "126.com",
    "foxmail.com",
    "gmail.com",
    "outlook.com",
    "sina.com",
    "icloud.com",
)


@dataclass
class Person:
    """One real customer; only the generator and the ground truth know they are one."""

    person_id: str
    name: str
    surname: str
    gender: str
    birthday: str
    city: str
    province: str
    phone: str
    email: str | None
    latin: bool
    noisy: bool
    tea_lover: float
    second_phone: str | None = None
    member_level: str = "普通"
    store_id: str = ""
    guide_id: str = ""
    spend: float = 0.0
    user_id: str | None = None
    member_card: str | None = None
    ids: dict[str, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)

    def id(self, kind: str, factory: IdentifierFactory) -> str:
        """This person's identifier of `kind`, created on first use and then kept."""
        value = self.ids.get(kind)
        if value is None:
            value = factory.new(kind)
            self.ids[kind] = value
        return value

    def renew(self, kind: str, factory: IdentifierFactory) -> str:
        """A fresh identifier of `kind` (a cleared cookie, a new phone install)."""
        value = factory.new(kind)
        self.ids[kind] = value
        return value


def make_person(index: int, rng: random.Random, factory: IdentifierFactory) -> Person:
    """A customer with a name, home city, phone and sometimes an email address."""
    gender = "female" if rng.random() < 0.62 else "male"
    surname, surname_py = _pick_surname(rng)
    latin = rng.random() < 0.03
    given, given_py = rng.choice(FEMALE_GIVEN if gender == "female" else MALE_GIVEN)
    name = f"{rng.choice(LATIN_FIRST[gender])} {surname_py.title()}" if latin else surname + given
    city, province, _, _ = CITIES[_pick_index(rng, _CITY_CUM)]
    person = Person(
        person_id=f"P{index + 1:06d}",
        name=name,
        surname=surname,
        gender=gender,
        birthday=_birthday(rng),
        city=city,
        province=province,
        phone=factory.new("phone"),
        email=_email(rng, factory, given_py, surname_py) if rng.random() < 0.35 else None,
        latin=latin,
        noisy=rng.random() < 0.12,
        tea_lover=rng.random(),
    )
    if rng.random() < 0.04:
        person.second_phone = factory.new("phone")
    return person


def _pick_surname(rng: random.Random) -> tuple[str, str]:
    surname, pinyin, _ = SURNAMES[_pick_index(rng, _SURNAME_CUM)]
    return surname, pinyin


def _pick_index(rng: random.Random, cum: tuple[float, ...]) -> int:
    target = rng.random() * cum[-1]
    for i, bound in enumerate(cum):
        if target < bound:
            return i
    return len(cum) - 1


def _birthday(rng: random.Random) -> str:
    year = 1965 + min(int(rng.triangular(0, 42, 25)), 41)
    return f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _email(rng: random.Random, factory: IdentifierFactory, given: str, surname: str) -> str:
    domain = rng.choice(_MAIL_DOMAINS)
    if domain == "qq.com" and rng.random() < 0.6:
        local = str(rng.randint(10_000_000, 3_999_999_999))
    else:
        local = rng.choice((f"{given}.{surname}", f"{surname}{given}", f"{given}_{surname}"))
        local += str(rng.randint(1, 9999)) if rng.random() < 0.7 else ""
    return factory.claim(f"{local}@{domain}", rng)
