"""The sandbox's state: corps and their data, access tokens, the virtual-time scheduler.

Everything here is synchronous and runs on the event loop thread; API handlers, world actions and
control endpoints all mutate it directly (no locks: one asyncio loop, no awaits inside mutations)."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from .audit import AuditLog
from .clock import Clock
from .errors import ApiError
from .ids import AES_KEY_RE, TOKEN_RE, IdFactory, secret_token
from .limits import FaultConfig, LimitConfig, RateLimiter
from .models import (
    AccessToken,
    App,
    ContactWay,
    Customer,
    Department,
    Follow,
    GroupChat,
    GroupWelcomeTemplate,
    JoinWay,
    KeyOrder,
    Media,
    Member,
    MsgTemplate,
    Tag,
    TagGroup,
    Transfer,
    WelcomeCode,
)
from .quota import RULES

if TYPE_CHECKING:
    from .delivery import Outbox


@dataclass(slots=True)
class CorpSettings:
    """Per-corp rules of the simulated platform and of the simulated people."""

    quota_rule: str = "days_of_month"  # | "7_per_week" | "1_per_day" (Doc 92135)
    confirm_delay: float = 60.0  # seconds until a member confirms a mass message in the client
    confirm_probability: float = 1.0  # share of members who confirm at all
    distribute_seconds: float = 1.0  # results answer 41063 this long after add_msg_template
    remind_limit: int = 3  # remind_groupmsg_send per msg per 24 h
    welcome_window: float = 20.0  # send_welcome_msg only within 20 s of the event (Doc 92137)
    welcome_busy_rate: float = 0.0  # share of codes another app is sending at first try (41096)
    no_welcome_code_rate: float = 0.0  # share of adds without WelcomeCode (console welcome configured)
    media_ttl: float = 3 * 86400.0  # temporary media (Doc 90253)
    token_ttl: int = 7200  # access_token (Doc 91039)
    tag_cap: int = 3000  # corp tags (Doc 92117)
    qr_capacity: int = 200  # joins by QR code stop at 200 members [3rd-party]
    group_size_cap: int = 500
    group_welcome_cap: int = 100  # Doc 92366
    contact_way_quota: int = 500_000  # contact ways + join ways (Doc 92572)
    member_customer_cap: int = 50_000  # customers one member may hold (40099 / transfer status 4)
    transfer_window: float = 86400.0  # the customer may refuse within 24 h; takeover after it
    transfer_refuse_rate: float = 0.0  # share of customers who refuse an on-job transfer
    transfer_guard_days: int = 90  # each customer at most twice per 90 days (on-job)

    def update(self, data: dict[str, Any]) -> None:
        known = {f.name: f for f in fields(self)}
        for key, value in data.items():
            if key not in known:
                raise ValueError(f"unknown setting {key!r}; known: {sorted(known)}")
            if key == "quota_rule" and value not in RULES:
                raise ValueError(f"quota_rule must be one of {RULES}")
            current = getattr(self, key)
            setattr(self, key, type(current)(value))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)
class Corp:
    corp_id: str
    name: str
    created_at: float
    apps: dict[int, App] = field(default_factory=dict)
    departments: dict[int, Department] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    customers: dict[str, Customer] = field(default_factory=dict)
    tag_groups: dict[str, TagGroup] = field(default_factory=dict)
    tags: dict[str, Tag] = field(default_factory=dict)
    contact_ways: dict[str, ContactWay] = field(default_factory=dict)
    join_ways: dict[str, JoinWay] = field(default_factory=dict)
    groups: dict[str, GroupChat] = field(default_factory=dict)
    group_order: KeyOrder = field(default_factory=KeyOrder)
    owner_groups: dict[str, int] = field(default_factory=dict)  # owner userid -> live groups
    welcome_codes: dict[str, WelcomeCode] = field(default_factory=dict)
    media: dict[str, Media] = field(default_factory=dict)
    templates: dict[str, MsgTemplate] = field(default_factory=dict)
    group_welcome_templates: dict[str, GroupWelcomeTemplate] = field(default_factory=dict)
    transfers: dict[int, Transfer] = field(default_factory=dict)
    pending_transfers: dict[str, int] = field(default_factory=dict)  # external_userid -> transfer id
    received: dict[tuple[str, str], int] = field(default_factory=dict)  # (target, period) -> delivered
    planned: dict[tuple[str, str], int] = field(default_factory=dict)  # (target, period) -> templated
    settings: CorpSettings = field(default_factory=CorpSettings)
    limits: LimitConfig = field(default_factory=LimitConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)
    follow_count: int = 0
    next_transfer_id: int = 1

    def app(self, agent_id: int) -> App:
        return self.apps[agent_id]

    def active_member(self, userid: str) -> Member | None:
        m = self.members.get(userid)
        return m if m is not None and m.resigned_at is None else None

    def live_tags(self) -> int:
        return len(self.tags)

    def count_owner(self, userid: str, delta: int) -> None:
        """Keep owner_groups (owner -> live groups) in step; it answers 81017 without a scan."""
        n = self.owner_groups.get(userid, 0) + delta
        if n > 0:
            self.owner_groups[userid] = n
        else:
            self.owner_groups.pop(userid, None)


Task = Callable[["Sandbox", tuple[Any, ...]], None]
TASKS: dict[str, Task] = {}


def task(kind: str) -> Callable[[Task], Task]:
    """Register a handler for scheduled virtual-time work (kept as data so state stays picklable)."""

    def deco(fn: Task) -> Task:
        TASKS[kind] = fn
        return fn

    return deco


class Sandbox:
    def __init__(self, *, clock: Clock | None = None, seed: int | None = None, audit_maxlen: int = 200_000):
        self.clock = clock or Clock()
        self.ids = IdFactory(seed)
        self.rng = random.Random(seed)
        self.audit = AuditLog(maxlen=audit_maxlen)
        self.limiter = RateLimiter()
        self.corps: dict[str, Corp] = {}
        self.tokens: dict[str, AccessToken] = {}
        self.current_tokens: dict[tuple[str, int], str] = {}  # (corp, agent) -> token value
        self.qr_index: dict[str, str] = {}  # config_id -> corp_id (contact and join ways)
        self.schedule: list[tuple[float, int, str, tuple[Any, ...]]] = []
        self._seq = 0
        self.outbox: Outbox | None = None
        self.public_url = ""  # base URL of this sandbox, for QR code URLs

    # --- corps and apps --------------------------------------------------------------------------
    def corp(self, corp_id: str) -> Corp:
        try:
            return self.corps[corp_id]
        except KeyError:
            raise KeyError(f"unknown corp {corp_id!r}") from None

    def register_corp(self, corp_id: str, name: str = "", *, replace: bool = False) -> Corp:
        if corp_id in self.corps and not replace:
            return self.corps[corp_id]
        corp = Corp(corp_id=corp_id, name=name or corp_id, created_at=self.clock.now())
        corp.departments[1] = Department(id=1, name=name or corp_id, parentid=0)
        self.drop_corp(corp_id)
        self.corps[corp_id] = corp
        return corp

    def drop_corp(self, corp_id: str) -> None:
        self.corps.pop(corp_id, None)
        for value in [k for k, t in self.tokens.items() if t.corp_id == corp_id]:
            del self.tokens[value]
        for key in [k for k in self.current_tokens if k[0] == corp_id]:
            del self.current_tokens[key]
        for cid in [k for k, c in self.qr_index.items() if c == corp_id]:
            del self.qr_index[cid]
        self.limiter.clear(corp_id)

    @staticmethod
    def set_app(corp: Corp, data: dict[str, Any]) -> App:
        agent_id = int(data.get("agent_id", 1000002))
        token = str(data.get("token", ""))
        key = str(data.get("encoding_aes_key", ""))
        if token and not TOKEN_RE.match(token):
            raise ValueError("token must be 1-32 letters or digits")
        if key and not AES_KEY_RE.match(key):
            raise ValueError("encoding_aes_key must be exactly 43 letters or digits")
        app = corp.apps.get(agent_id) or App(
            agent_id=agent_id, secret=str(data.get("secret") or secret_token(32))
        )
        app.secret = str(data.get("secret", app.secret))
        app.name = str(data.get("name", app.name))
        app.callback_url = str(data.get("callback_url", app.callback_url))
        app.token = token or app.token
        app.encoding_aes_key = key or app.encoding_aes_key
        if "visible_userids" in data:
            vis = data["visible_userids"]
            app.visible_userids = None if vis is None else set(vis)
        corp.apps[agent_id] = app
        return app

    # --- access tokens (Doc 91039) ---------------------------------------------------------------
    def issue_token(self, corp: Corp, app: App) -> AccessToken:
        now = self.clock.now()
        key = (corp.corp_id, app.agent_id)
        tok = self.tokens.get(self.current_tokens.get(key, ""))
        # Within its validity gettoken returns the same token (and still burns quota).
        if tok is not None and not tok.revoked and tok.expires_at > now:
            return tok
        tok = AccessToken(secret_token(64), corp.corp_id, app.agent_id, now + corp.settings.token_ttl)
        self._prune_tokens(now)
        self.tokens[tok.value] = tok
        self.current_tokens[key] = tok.value
        return tok

    def _prune_tokens(self, now: float) -> None:
        # Keep expired/revoked tokens a day so callers get 42001/40014 rather than a generic 40014.
        stale = [k for k, t in self.tokens.items() if t.expires_at < now - 86400]
        for k in stale:
            del self.tokens[k]

    def check_token(self, value: str | None) -> AccessToken:
        if not value:
            raise ApiError(41001)
        tok = self.tokens.get(value)
        if tok is None or tok.revoked or tok.corp_id not in self.corps:
            raise ApiError(40014)
        if tok.expires_at <= self.clock.now():
            raise ApiError(42001)
        return tok

    def revoke_tokens(self, corp_id: str, agent_id: int | None = None) -> int:
        n = 0
        for tok in self.tokens.values():
            if tok.corp_id == corp_id and (agent_id is None or tok.agent_id == agent_id) and not tok.revoked:
                tok.revoked = True
                n += 1
        return n

    # --- virtual-time scheduler --------------------------------------------------------------------
    def at(self, when: float, kind: str, *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self.schedule, (when, self._seq, kind, args))

    def run_due(self) -> int:
        """Run scheduled work that is due on the virtual clock; cheap when nothing is."""
        sched = self.schedule
        if not sched:
            return 0
        now = self.clock.now()
        n = 0
        while sched and sched[0][0] <= now:
            _, _, kind, args = heapq.heappop(sched)
            TASKS[kind](self, args)
            n += 1
        return n

    # --- callbacks ----------------------------------------------------------------------------------
    def emit(self, corp: Corp, xml: str, event: str) -> int:
        """Queue one event for every app of the corp that has a callback URL; returns how many."""
        n = 0
        for app in corp.apps.values():
            if app.callback_url and app.token and app.encoding_aes_key:
                if self.outbox is not None:
                    self.outbox.submit(corp.corp_id, app, xml, event)
                n += 1
        if n == 0:
            self.audit.callback(self.clock.now(), corp.corp_id, event, "no_callback_url", {})
        return n

    # --- helpers shared by APIs and the world ---------------------------------------------------------
    def visible(self, app: App, userid: str) -> bool:
        return app.visible_userids is None or userid in app.visible_userids

    @staticmethod
    def link(corp: Corp, member: Member, customer: Customer, follow: Follow) -> None:
        if customer.external_userid not in member.follows:
            corp.follow_count += 1
            member.follow_order.add(customer.external_userid)
        if member.userid not in customer.follows:
            customer.follow_order.add(member.userid)
        member.follows[customer.external_userid] = follow
        customer.follows[member.userid] = follow

    @staticmethod
    def unlink(corp: Corp, userid: str, external_userid: str) -> Follow | None:
        member = corp.members.get(userid)
        customer = corp.customers.get(external_userid)
        follow = None
        if member is not None:
            follow = member.follows.pop(external_userid, None)
            if follow is not None:
                corp.follow_count -= 1
                member.follow_order.remove(external_userid)
        if customer is not None and customer.follows.pop(userid, None) is not None:
            customer.follow_order.remove(userid)
        return follow
