"""The demo corp: FIXED credentials, so the product's seed command can create the matching corp.

    CorpID          wwdec0de5a4db0c001
    Corp name       演示科技有限公司
    AgentId         1000002
    Secret          dEmOsEcReT-sandbox-only-0123456789abcdefghi
    Token           DemoToken2024
    EncodingAESKey  DemoAesKey0123456789abcdefghijklmnopqrstuvw
    Callback URL    http://127.0.0.1:8000/wecom/callback/wwdec0de5a4db0c001/  (override with --callback-url)

Data: 8 members with Chinese names, ~300 customers, tag groups 客户等级 / 来源 / 兴趣 (made in the
console, so the app cannot edit them), 5 customer groups, two console contact ways (state store_qr,
douyin) and a console join way (state fuli) over two groups with auto_create_room."""

from __future__ import annotations

from typing import Any

from .models import CONSOLE, ContactWay, Department, JoinWay, Member
from .scenario import seed
from .state import Corp, Sandbox

CORP_ID = "wwdec0de5a4db0c001"
CORP_NAME = "演示科技有限公司"
AGENT_ID = 1000002
# Fixed and published on purpose: they only open this local simulator.
SECRET = "dEmOsEcReT-sandbox-only-0123456789abcdefghi"  # noqa: S105
TOKEN = "DemoToken2024"  # noqa: S105
ENCODING_AES_KEY = "DemoAesKey0123456789abcdefghijklmnopqrstuvw"
DEFAULT_CALLBACK_URL = f"http://127.0.0.1:8000/wecom/callback/{CORP_ID}/"
SEED = 20240601

MEMBERS = [
    ("zhangwei", "张伟", 2, "店长"),
    ("wangfang", "王芳", 2, "客户经理"),
    ("lina", "李娜", 2, "导购"),
    ("liuyang", "刘洋", 3, "客服专员"),
    ("chenjing", "陈静", 3, "客服专员"),
    ("yanglei", "杨磊", 4, "市场专员"),
    ("zhaomin", "赵敏", 2, "导购"),
    ("huangqiang", "黄强", 4, "市场经理"),
]
TAG_GROUPS = [
    {"name": "客户等级", "tags": ["VIP", "重要客户", "普通客户", "潜在客户"]},
    {"name": "来源", "tags": ["线下门店", "抖音", "小红书", "朋友推荐", "官网"]},
    {"name": "兴趣", "tags": ["护肤", "彩妆", "母婴", "数码", "运动"]},
]
GROUPS = ["会员福利群1", "会员福利群2", "新品体验群", "母婴交流群", "VIP专属服务群"]


def credentials(callback_url: str = DEFAULT_CALLBACK_URL) -> dict[str, Any]:
    return {
        "corp_id": CORP_ID,
        "name": CORP_NAME,
        "agent_id": AGENT_ID,
        "secret": SECRET,
        "token": TOKEN,
        "encoding_aes_key": ENCODING_AES_KEY,
        "callback_url": callback_url,
    }


def install(sb: Sandbox, *, callback_url: str = DEFAULT_CALLBACK_URL, customers: int = 300) -> Corp:
    """Create (or refresh the app of) the demo corp. Existing demo data is kept, e.g. from a snapshot."""
    if CORP_ID in sb.corps:
        corp = sb.corps[CORP_ID]
        sb.set_app(corp, credentials(callback_url))
        return corp
    corp = sb.register_corp(CORP_ID, CORP_NAME)
    sb.set_app(corp, {**credentials(callback_url), "name": "客户运营助手"})
    now = sb.clock.now()
    for i, name in enumerate(("销售部", "客服部", "市场部"), start=2):
        corp.departments[i] = Department(i, name, 1, i)
    for userid, name, dept, position in MEMBERS:
        corp.members[userid] = Member(
            userid=userid, name=name, department=[dept], position=position, created_at=now - 400 * 86400
        )
    seed(
        sb,
        corp,
        {
            "seed": SEED,
            "members": 0,
            "customers": customers,
            "follows": round(customers * 1.15),
            "tag_groups": TAG_GROUPS,
            "groups": len(GROUPS),
            "group_names": GROUPS,
            "group_size": 40,
            "contact_ways": 0,
        },
    )
    store = ContactWay(
        config_id=sb.ids.config_id(),
        type=2,
        scene=2,
        creator=CONSOLE,
        create_time=now,
        remark="门店活码",
        state="store_qr",
        user=["zhangwei", "wangfang", "lina", "zhaomin"],
    )
    douyin = ContactWay(
        config_id=sb.ids.config_id(),
        type=1,
        scene=2,
        creator=CONSOLE,
        create_time=now,
        remark="抖音引流码",
        state="douyin",
        user=["yanglei"],
    )
    chats = list(corp.groups)[:2]
    fuli = JoinWay(
        config_id=sb.ids.config_id(),
        scene=2,
        creator=CONSOLE,
        create_time=now,
        remark="福利群活码",
        room_base_name="会员福利群",
        room_base_id=3,
        chat_id_list=chats,
        state="fuli",
    )
    for way in (store, douyin):
        way.qr_code = f"{sb.public_url}/sandbox/qr/{way.config_id}.png"
        corp.contact_ways[way.config_id] = way
        sb.qr_index[way.config_id] = CORP_ID
    fuli.qr_code = f"{sb.public_url}/sandbox/qr/{fuli.config_id}.png"
    corp.join_ways[fuli.config_id] = fuli
    sb.qr_index[fuli.config_id] = CORP_ID
    return corp
