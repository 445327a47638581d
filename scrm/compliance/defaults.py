"""The built-in sensitive words every corp's outgoing text is checked against (DESIGN §5).

A corp can add its own words and patterns but cannot switch these off: each one is either what got
WeChat / WeCom accounts restricted in practice, or what Chinese law forbids in marketing. Words are
plain text; the gate matches them after normalisation (`normal.py`), so "赌 博", "赌*博" and full-width
or upper-case Latin letters match too. Keep entries specific: the gate blocks whole messages, so a broad
word ("免费领取", "优惠") would block ordinary marketing the platform allows.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Category:
    key: str
    label: str | Promise
    why: str | Promise
    words: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    # Recruiting-agent and "easy money" phrases of WeTool-era 微商 marketing. Messages carrying them are
    # the ones reported as spam, and accounts that mass-sent them were restricted or banned.
    Category(
        "marketing",
        _("Banned marketing phrases"),
        _("Agent recruiting and easy-money phrases that got accounts restricted or banned."),
        (
            "诚心招代理",
            "招代理",
            "招募代理",
            "代理加盟",
            "一键代发",
            "日赚",
            "日入过万",
            "月入过万",
            "躺赚",
            "宝妈兼职",
            "兼职刷单",
            "零投资创业",
            "拉人头",
            "发展下线",
        ),
    ),
    # Gambling is illegal in mainland China (Criminal Law art. 303) and in WeChat's rules.
    Category(
        "gambling",
        _("Gambling"),
        _("Gambling is illegal and against WeChat's rules."),
        (
            "赌博",
            "博彩",
            "网赌",
            "赌场",
            "赌球",
            "六合彩",
            "时时彩",
            "百家乐",
            "老虎机",
            "真人荷官",
            "casino",
            "gambling",
        ),
    ),
    # The wording of common frauds: fake orders, invoices, cashing out credit, laundering money.
    Category(
        "fraud",
        _("Fraud"),
        _("Wording of common frauds: fake orders and invoices, cashing out credit, laundering money."),
        (
            "刷单",
            "刷信誉",
            "代开发票",
            "办假证",
            "套现",
            "跑分",
            "洗钱",
            "安全账户",
            "解冻费",
        ),
    ),
    # Illegal finance: pyramid schemes, loan sharks, illegal fund-raising and promised returns, which
    # financial advertising rules forbid.
    Category(
        "finance",
        _("Illegal finance"),
        _("Pyramid schemes, loan sharks, illegal fund-raising and promised returns."),
        (
            "传销",
            "资金盘",
            "非法集资",
            "高利贷",
            "套路贷",
            "裸贷",
            "稳赚不赔",
            "保本保息",
            "保本高收益",
            "零风险投资",
            "内幕消息",
            "荐股",
            "guaranteed profit",
        ),
    ),
    # Adult content and solicitation.
    Category(
        "adult",
        _("Adult content"),
        _("Pornography and solicitation."),
        ("色情", "裸聊", "约炮", "一夜情", "援交", "成人视频", "黄色网站"),
    ),
    # Advertising Law art. 9(3) bans "国家级", "最高级", "最佳" and the like; arts. 16-17 ban cure and
    # efficacy promises for medicine and health products. Fines start at 200,000 yuan.
    Category(
        "absolute",
        _("Absolute claims (Advertising Law)"),
        _("The Advertising Law bans superlatives such as 国家级 and 最佳, and promises of a cure."),
        (
            "国家级",
            "最高级",
            "最佳",
            "全网最低",
            "全国第一",
            "销量第一",
            "第一品牌",
            "百分百有效",
            "100%有效",
            "根治",
            "药到病除",
            "无副作用",
        ),
    ),
)


def default_words() -> list[tuple[str, str]]:
    """Every built-in word with its category key, in list order."""
    return [(word, c.key) for c in CATEGORIES for word in c.words]
