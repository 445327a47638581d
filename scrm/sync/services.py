"""Reads from WeCom that heal our state: one customer, one group, some tags, one member."""

from __future__ import annotations

import logging
from typing import Any

from scrm.core.wecom import wecom_client
from scrm.customers import services as customers
from scrm.groups import services as groups
from scrm.tenancy.models import Corp
from wecom.errors import PermanentError

logger = logging.getLogger(__name__)

# Reference: Doc 92114 / 92113 — 84061 (no relationship) and 40096 (bad external_userid) mean there is
# nothing to fetch: the relation is gone, which the deletion events already recorded.
GONE = {84061, 40096}


def customer_refresh(*, corp: Corp, external_userid: str) -> None:
    """externalcontact/get, every page of follow_user: the customer's profile and each live follow."""
    client = wecom_client(corp=corp, lane="events")
    contact = None
    follow_users: list[Any] = []
    try:
        for page in client.iter_external_contact(external_userid):
            contact = page["external_contact"]
            follow_users.extend(page.get("follow_user", []))
    except PermanentError as exc:
        if exc.errcode in GONE:
            logger.info("customer no longer reachable (errcode %s)", exc.errcode)
            return
        raise
    if contact is not None:
        customers.customer_apply_contact(corp=corp, contact=contact, follow_users=follow_users)


def group_refresh(*, corp: Corp, chat_id: str) -> None:
    client = wecom_client(corp=corp, lane="events")
    answer = client.get_groupchat(chat_id, need_name=True)
    groups.group_apply_details(corp=corp, chat=answer["group_chat"])


def tags_refresh(*, corp: Corp, kind: str, wecom_id: str) -> None:
    """Re-reads one tag or tag group after a console-side change (change_external_tag)."""
    client = wecom_client(corp=corp, lane="events")
    if kind == "group":
        answer = client.get_corp_tag_list(group_id=[wecom_id])
    else:
        answer = client.get_corp_tag_list(tag_id=[wecom_id])
    customers.tags_apply_groups(corp=corp, groups=answer.get("tag_group", []), complete=False)


def tags_refresh_all(*, corp: Corp) -> None:
    client = wecom_client(corp=corp, lane="bulk")
    answer = client.get_corp_tag_list()
    customers.tags_apply_groups(corp=corp, groups=answer.get("tag_group", []), complete=True)


def member_refresh(*, corp: Corp, userid: str) -> None:
    client = wecom_client(corp=corp, lane="events")
    try:
        info = client.get_user(userid)
    except PermanentError as exc:
        if exc.errcode in (60111, 40003, 60011):  # no such user, or outside the app's visibility
            logger.info("member %s not readable (errcode %s)", userid, exc.errcode)
            return
        raise
    customers.member_apply_info(corp=corp, info=info)
