"""In-memory state of the simulated WeCom: corps, apps, members, customers and everything they own.

Plain slotted dataclasses: cheap to create by the million (benchmark seeds reach 1M follows) and
picklable for snapshots. Lists that are paged with cursors are append-only with tombstones
(the dict says what is live), so a page costs O(limit), not O(n)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CONSOLE = 0  # creator of objects made in the admin console rather than through an app


class KeyOrder:
    """Append-only key order with tombstones, so cursors are positions and a page is O(limit)."""

    __slots__ = ("dead", "keys")

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.dead: set[str] | None = None

    def add(self, key: str) -> None:
        if self.dead is not None and key in self.dead:
            self.compact()  # re-added: drop its old position so it is listed once
        self.keys.append(key)

    def remove(self, key: str) -> None:
        if self.dead is None:
            self.dead = set()
        self.dead.add(key)
        if len(self.keys) > 64 and 2 * len(self.dead) > len(self.keys):
            self.compact()

    def compact(self) -> None:
        if self.dead:
            dead = self.dead
            self.keys = [k for k in self.keys if k not in dead]
        self.dead = None

    def live(self, key: str) -> bool:
        return self.dead is None or key not in self.dead

    def __len__(self) -> int:
        return len(self.keys) - (len(self.dead) if self.dead else 0)


@dataclass(slots=True)
class App:
    agent_id: int
    secret: str
    name: str = ""
    callback_url: str = ""
    token: str = ""  # callback Token (≤32 letters/digits)
    encoding_aes_key: str = ""  # exactly 43 chars [a-zA-Z0-9]
    visible_userids: set[str] | None = None  # None = the whole corp is visible


@dataclass(slots=True)
class AccessToken:
    value: str
    corp_id: str
    agent_id: int
    expires_at: float
    revoked: bool = False


@dataclass(slots=True)
class Department:
    id: int
    name: str
    parentid: int
    order: int = 0


@dataclass(slots=True)
class Follow:
    """One member ↔ customer relationship (follow_user / follow_info)."""

    userid: str
    external_userid: str
    createtime: int
    add_way: int = 1
    state: str = ""
    oper_userid: str = ""
    remark: str = ""
    description: str = ""
    remark_corp_name: str = ""
    remark_mobiles: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # tag ids; ids of deleted tags are skipped when read
    chatted: bool = False
    deleted_by_customer: bool = False  # del_follow_user: still listed, but sends fail (status 2)


@dataclass(slots=True)
class Member:
    userid: str
    name: str
    department: list[int] = field(default_factory=lambda: [1])
    position: str = ""
    alias: str = ""
    status: int = 1  # 1 active, 2 disabled, 4 not activated
    verified: bool = True
    contact_permission: bool = True  # has 客户联系 permission
    resigned_at: float | None = None
    created_at: float = 0.0
    follows: dict[str, Follow] = field(default_factory=dict)  # by external_userid
    follow_order: KeyOrder = field(default_factory=KeyOrder)


@dataclass(slots=True)
class Customer:
    external_userid: str
    name: str
    type: int = 1  # 1 WeChat user, 2 WeCom user of another corp
    gender: int = 0
    unionid: str = ""
    avatar: str = ""
    position: str = ""
    corp_name: str = ""
    corp_full_name: str = ""
    created_at: float = 0.0
    follows: dict[str, Follow] = field(default_factory=dict)  # by userid
    follow_order: KeyOrder = field(default_factory=KeyOrder)
    transfer_times: list[float] = field(default_factory=list)  # on-job transfers started


@dataclass(slots=True)
class Tag:
    id: str
    name: str
    group_id: str
    order: int
    create_time: int
    creator: int


@dataclass(slots=True)
class TagGroup:
    group_id: str
    name: str
    order: int
    create_time: int
    creator: int
    tag_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ContactWay:
    config_id: str
    type: int
    scene: int
    creator: int
    create_time: float
    style: int = 1
    remark: str = ""
    skip_verify: bool = True
    state: str = ""
    user: list[str] = field(default_factory=list)
    party: list[int] = field(default_factory=list)
    is_temp: bool = False
    expires_in: int = 0
    chat_expires_in: int = 0
    unionid: str = ""
    is_exclusive: bool = False
    conclusions: dict[str, Any] = field(default_factory=dict)
    qr_code: str = ""
    next_pick: int = 0  # round-robin cursor when several users share the way


@dataclass(slots=True)
class JoinWay:
    config_id: str
    scene: int
    creator: int
    create_time: float
    remark: str = ""
    auto_create_room: int = 1
    room_base_name: str = ""
    room_base_id: int = 1
    chat_id_list: list[str] = field(default_factory=list)
    state: str = ""
    mark_source: bool = False
    qr_code: str = ""


@dataclass(slots=True)
class GroupMember:
    id: str  # userid (type 1) or external_userid (type 2)
    type: int
    join_time: int
    join_scene: int
    invitor: str = ""
    group_nickname: str = ""
    name: str = ""
    unionid: str = ""
    state: str = ""


@dataclass(slots=True)
class GroupChat:
    chat_id: str
    name: str
    owner: str
    create_time: int
    notice: str = ""
    members: dict[str, GroupMember] = field(default_factory=dict)
    admin_list: list[str] = field(default_factory=list)
    version: int = 1
    status: int = 0  # 0 normal, 1 owner resigned, 2 transferring, 3 transferred
    dismissed: bool = False
    onjob_transfer_times: list[float] = field(default_factory=list)


@dataclass(slots=True)
class WelcomeCode:
    code: str
    userid: str
    external_userid: str
    created_at: float
    used_at: float | None = None
    chatted: bool = False
    busy_until: float = 0.0  # another app is sending (41096)


@dataclass(slots=True)
class Media:
    media_id: str
    type: str
    filename: str
    created_at: float
    data: bytes


@dataclass(slots=True)
class Recipient:
    target: str  # external_userid (single) or chat_id (group)
    userid: str
    status: int = 0  # 0 not sent, 1 sent, 2 not a friend, 3 already received (quota)
    send_time: int = 0


@dataclass(slots=True)
class MsgTask:
    userid: str
    will_confirm: bool
    confirm_at: float | None
    status: int = 0  # 0 not sent, 2 sent
    send_time: int = 0
    recipients: list[Recipient] = field(default_factory=list)


@dataclass(slots=True)
class MsgTemplate:
    msgid: str
    chat_type: str
    creator_agent: int
    create_time: float
    sender: str
    text: dict[str, Any]
    attachments: list[dict[str, Any]]
    allow_select: bool = False
    tasks: dict[str, MsgTask] = field(default_factory=dict)
    cancelled: bool = False
    reminds: list[float] = field(default_factory=list)


@dataclass(slots=True)
class GroupWelcomeTemplate:
    template_id: str
    creator: int
    body: dict[str, Any]
    notify: int = 1


@dataclass(slots=True)
class Transfer:
    id: int
    kind: str  # "onjob" | "resigned"
    handover_userid: str
    takeover_userid: str
    external_userid: str
    started_at: float
    status: int = 2  # 1 done, 2 waiting, 3 refused, 4 takeover over its cap
    takeover_time: int = 0
    transfer_success_msg: str = ""
