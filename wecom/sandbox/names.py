"""Names for simulated people: members with Chinese names and pinyin userids, customers' nicknames."""

from __future__ import annotations

import random
from collections.abc import Container

SURNAMES = [
    ("王", "wang"),
    ("李", "li"),
    ("张", "zhang"),
    ("刘", "liu"),
    ("陈", "chen"),
    ("杨", "yang"),
    ("黄", "huang"),
    ("赵", "zhao"),
    ("吴", "wu"),
    ("周", "zhou"),
    ("徐", "xu"),
    ("孙", "sun"),
    ("马", "ma"),
    ("朱", "zhu"),
    ("胡", "hu"),
    ("郭", "guo"),
    ("何", "he"),
    ("林", "lin"),
    ("高", "gao"),
    ("罗", "luo"),
    ("郑", "zheng"),
    ("梁", "liang"),
    ("谢", "xie"),
    ("宋", "song"),
]
GIVEN = [
    ("伟", "wei"),
    ("芳", "fang"),
    ("娜", "na"),
    ("敏", "min"),
    ("静", "jing"),
    ("磊", "lei"),
    ("强", "qiang"),
    ("洋", "yang"),
    ("艳", "yan"),
    ("勇", "yong"),
    ("军", "jun"),
    ("杰", "jie"),
    ("娟", "juan"),
    ("涛", "tao"),
    ("明", "ming"),
    ("超", "chao"),
    ("秀英", "xiuying"),
    ("霞", "xia"),
    ("平", "ping"),
    ("刚", "gang"),
    ("桂英", "guiying"),
    ("丹", "dan"),
    ("婷", "ting"),
    ("浩", "hao"),
    ("宇", "yu"),
    ("欣怡", "xinyi"),
    ("子涵", "zihan"),
    ("梓萱", "zixuan"),
    ("俊杰", "junjie"),
    ("雪", "xue"),
]
NICKNAMES = [
    "小太阳",
    "快乐每一天",
    "Lily",
    "阿杰",
    "晴天",
    "Coco",
    "安静的美男子",
    "小鱼儿",
    "向日葵",
    "Kevin",
    "木子",
    "一路向北",
    "Grace",
    "大白",
    "糖糖",
    "岁月静好",
    "Tony",
    "阿May",
    "橙子",
    "微笑",
    "风继续吹",
    "Amy",
    "知足常乐",
    "小兔子",
    "Jason",
    "蓝天白云",
    "花开半夏",
    "Vivian",
    "小米粒",
    "追梦人",
]
COMPANIES = [
    "腾讯科技",
    "华为技术",
    "字节跳动",
    "美团",
    "京东",
    "小米科技",
    "网易",
    "携程",
    "顺丰速运",
    "蔚来汽车",
]


def member_name(rng: random.Random) -> tuple[str, str]:
    """(Chinese name, pinyin userid stem)."""
    s, sp = rng.choice(SURNAMES)
    g, gp = rng.choice(GIVEN)
    return s + g, sp + gp


def unique_userid(stem: str, taken: Container[str]) -> str:
    if stem not in taken:
        return stem
    n = 2
    while f"{stem}{n}" in taken:
        n += 1
    return f"{stem}{n}"


def customer_name(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.45:
        return rng.choice(NICKNAMES)
    if r < 0.75:
        s, _ = rng.choice(SURNAMES)
        return s + rng.choice(("先生", "女士", "小姐", "老师", "总"))
    return member_name(rng)[0]
