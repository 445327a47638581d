"""Scenarios: seed a corp with members, customers, tags and groups (up to millions of follows), and
drive traffic (a rate of world actions for a duration, with a mix) in the background."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from .models import CONSOLE, ContactWay, Department, Follow, GroupMember, JoinWay, Member, Tag, TagGroup
from .names import member_name, unique_userid
from .state import Corp, Sandbox
from .world import WorldError, make_group, new_customer, run

log = logging.getLogger("wecom.sandbox.scenario")

DEFAULT_MIX = {
    "scan": 0.55,
    "add_half": 0.05,
    "edit_external_contact": 0.08,
    "del_follow_user": 0.06,
    "del_external_contact": 0.04,
    "join_group": 0.12,
    "leave_group": 0.05,
    "chat": 0.03,
    "tag_edit": 0.02,
}
DEPARTMENTS = ["销售部", "客服部", "市场部"]


def seed(sb: Sandbox, corp: Corp, params: dict[str, Any]) -> dict[str, Any]:
    """Populate a corp directly (no callbacks: this is the state WeCom already had).

    params: members (10), customers (100), follows (total relationships, default 1.2 × customers),
    tag_groups (an int, or a list of {name, tags: [...]}), tags_per_follow (1.5), groups (0),
    group_size (30), contact_ways (1 console way), join_ways (0), seed (random seed)."""
    t0 = time.perf_counter()
    rng = sb.rng
    if params.get("seed") is not None:
        rng.seed(int(params["seed"]))
        sb.ids.rng.seed(int(params["seed"]) + 1)
    now = sb.clock.now()
    n_members = int(params.get("members", 10))
    n_customers = int(params.get("customers", 100))
    n_follows = int(params.get("follows", round(n_customers * 1.2)))
    for i, dname in enumerate(DEPARTMENTS, start=2):
        corp.departments.setdefault(i, Department(i, dname, 1, i))

    new_members: list[Member] = []
    for _ in range(n_members):
        name, stem = member_name(rng)
        userid = unique_userid(stem, corp.members)
        m = Member(
            userid=userid,
            name=name,
            department=[rng.choice((2, 3, 4))],
            created_at=now,
            position=rng.choice(("客户经理", "导购", "客服专员", "店长")),
        )
        corp.members[userid] = m
        new_members.append(m)
    members = [m for m in corp.members.values() if m.resigned_at is None and m.contact_permission]
    if not members:
        raise WorldError("seed needs at least one member")

    tag_ids = _seed_tags(sb, corp, params.get("tag_groups", 3), now)
    tags_per_follow = float(params.get("tags_per_follow", 1.5))

    customers = [new_customer(sb, corp, now=now - rng.uniform(0, 180 * 86400)) for _ in range(n_customers)]
    link = sb.link
    follows = 0
    for i in range(n_follows):
        c = customers[i % n_customers] if i < n_customers else rng.choice(customers)
        m = members[i % len(members)] if i < n_customers else rng.choice(members)
        if m.userid in c.follows:
            continue
        created = int(c.created_at + (0 if i < n_customers else rng.uniform(0, 30 * 86400)))
        f = Follow(
            userid=m.userid,
            external_userid=c.external_userid,
            createtime=created,
            add_way=rng.choice((1, 1, 1, 2, 3, 5)),
            oper_userid=c.external_userid,
            chatted=True,
        )
        k = int(tags_per_follow + rng.random()) if tag_ids and tags_per_follow else 0
        if k:
            f.tags = tuple(rng.sample(tag_ids, min(k, len(tag_ids))))
        link(corp, m, c, f)
        follows += 1

    groups = _seed_groups(sb, corp, members, customers, params, now)
    ways = _seed_ways(sb, corp, members, params, now)
    # A seeded corp is millions of long-lived objects; keep them out of the cyclic GC's full passes,
    # which would otherwise stall the event loop for a second at a time (refcounting still frees them).
    gc.collect()
    gc.freeze()
    return {
        "corp_id": corp.corp_id,
        "members": len(new_members),
        "customers": len(customers),
        "follows": follows,
        "tags": len(tag_ids),
        "groups": len(groups),
        "contact_ways": ways,
        "seconds": round(time.perf_counter() - t0, 3),
    }


def _seed_tags(sb: Sandbox, corp: Corp, spec: Any, now: float) -> list[str]:
    groups: list[dict[str, Any]]
    if isinstance(spec, int):
        groups = [
            {"name": f"标签组{i + 1}", "tags": [f"标签{i + 1}-{j + 1}" for j in range(5)]}
            for i in range(spec)
        ]
    else:
        groups = list(spec or [])
    out: list[str] = []
    for order, g in enumerate(groups):
        group = TagGroup(sb.ids.tag_id(), str(g["name"]), order, int(now), CONSOLE)
        corp.tag_groups[group.group_id] = group
        for j, name in enumerate(g.get("tags", [])):
            if len(corp.tags) >= corp.settings.tag_cap:
                break
            tag = Tag(sb.ids.tag_id(), str(name), group.group_id, j, int(now), CONSOLE)
            corp.tags[tag.id] = tag
            group.tag_ids.append(tag.id)
            out.append(tag.id)
    return out


def _seed_groups(
    sb: Sandbox, corp: Corp, members: list[Member], customers: list[Any], params: dict[str, Any], now: float
) -> list[str]:
    rng = sb.rng
    n_groups = int(params.get("groups", 0))
    size = min(int(params.get("group_size", 30)), corp.settings.group_size_cap - 1)
    names = params.get("group_names") or []
    out = []
    for i in range(n_groups):
        owner = members[i % len(members)]
        name = str(names[i]) if i < len(names) else f"{owner.name}的客户群{i + 1}"
        chat = make_group(sb, corp, owner, name, now - rng.uniform(0, 90 * 86400))
        for c in rng.sample(customers, min(size, len(customers))):
            chat.members[c.external_userid] = GroupMember(
                c.external_userid,
                2,
                int(chat.create_time + rng.uniform(0, 86400)),
                rng.choice((1, 3)),
                invitor=owner.userid,
                name=c.name,
            )
        out.append(chat.chat_id)
    return out


def _seed_ways(sb: Sandbox, corp: Corp, members: list[Member], params: dict[str, Any], now: float) -> int:
    """Console-made contact ways (not listed by list_contact_way) so scans have somewhere to go."""
    n = int(params.get("contact_ways", 1))
    for i in range(n):
        users = [m.userid for m in sb.rng.sample(members, min(3, len(members)))]
        way = ContactWay(
            config_id=sb.ids.config_id(),
            type=2 if len(users) > 1 else 1,
            scene=2,
            creator=CONSOLE,
            create_time=now,
            remark=f"门店活码{i + 1}",
            state=f"store_{i + 1}",
            user=users,
        )
        way.qr_code = f"{sb.public_url}/sandbox/qr/{way.config_id}.png"
        corp.contact_ways[way.config_id] = way
        sb.qr_index[way.config_id] = corp.corp_id
    for i in range(int(params.get("join_ways", 0))):
        chats = [c for c in corp.groups.values() if not c.dismissed][:2]
        if not chats:
            break
        jw = JoinWay(
            config_id=sb.ids.config_id(),
            scene=2,
            creator=CONSOLE,
            create_time=now,
            remark=f"福利群活码{i + 1}",
            room_base_name="福利群",
            room_base_id=len(chats) + 1,
            chat_id_list=[c.chat_id for c in chats],
            state=f"group_{i + 1}",
        )
        jw.qr_code = f"{sb.public_url}/sandbox/qr/{jw.config_id}.png"
        corp.join_ways[jw.config_id] = jw
        sb.qr_index[jw.config_id] = corp.corp_id
    return n


# --- traffic --------------------------------------------------------------------------------------
@dataclass(slots=True)
class Traffic:
    corp_id: str
    rate_per_min: float
    duration: float | None
    mix: dict[str, float]
    started: float = field(default_factory=time.time)
    done: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "corp_id": self.corp_id,
            "rate_per_min": self.rate_per_min,
            "duration": self.duration,
            "mix": self.mix,
            "running": self.task is not None and not self.task.done(),
            "elapsed": round(time.time() - self.started, 3),
            "done": self.done,
            "refused": self.refused,
        }


RUNS: dict[int, dict[str, Traffic]] = {}  # id(sandbox) -> corp_id -> run (runtime only, never pickled)


def start_traffic(sb: Sandbox, corp: Corp, params: dict[str, Any]) -> Traffic:
    rate = float(params.get("rate_per_min", params.get("rate", 60)))
    if rate <= 0:
        raise WorldError("rate_per_min must be positive")
    duration = params.get("duration")
    mix = {k: float(v) for k, v in (params.get("mix") or DEFAULT_MIX).items()}
    from .world import ACTIONS

    unknown = set(mix) - set(ACTIONS)
    if unknown:
        raise WorldError(f"unknown actions in mix: {sorted(unknown)}")
    stop_traffic(sb, corp.corp_id)
    run_ = Traffic(corp.corp_id, rate, None if duration is None else float(duration), mix)
    run_.task = asyncio.get_running_loop().create_task(_drive(sb, corp, run_))
    RUNS.setdefault(id(sb), {})[corp.corp_id] = run_
    return run_


def traffic_status(sb: Sandbox, corp_id: str) -> dict[str, Any] | None:
    run_ = RUNS.get(id(sb), {}).get(corp_id)
    return run_.as_dict() if run_ else None


def stop_traffic(sb: Sandbox, corp_id: str) -> bool:
    run_ = RUNS.get(id(sb), {}).get(corp_id)
    if run_ is None or run_.task is None or run_.task.done():
        return False
    run_.task.cancel()
    return True


async def stop_all(sb: Sandbox) -> None:
    runs = RUNS.pop(id(sb), {})
    for r in runs.values():
        if r.task is not None:
            r.task.cancel()
    for r in runs.values():
        if r.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await r.task


async def _drive(sb: Sandbox, corp: Corp, t: Traffic) -> None:
    actions = list(t.mix)
    weights = [t.mix[a] for a in actions]
    rate_per_s = t.rate_per_min / 60.0
    start = time.monotonic()
    n = 0
    while t.duration is None or time.monotonic() - start < t.duration:
        # Scheduled, not slept per event: holds the rate even when each action takes time.
        n += 1
        delay = start + n / rate_per_s - time.monotonic()
        await asyncio.sleep(delay if delay > 0 else 0)  # behind schedule: still let the loop breathe
        if sb.corps.get(corp.corp_id) is not corp:
            return  # the corp was dropped or replaced
        name = sb.rng.choices(actions, weights)[0]
        try:
            run(sb, corp, name, {})
            t.done[name] = t.done.get(name, 0) + 1
        except WorldError:
            t.refused[name] = t.refused.get(name, 0) + 1
        except Exception:
            log.exception("traffic action %s failed", name)
            t.refused[name] = t.refused.get(name, 0) + 1
