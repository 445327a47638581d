"""What must hold whatever failed: the invariant checker of the fault suite, for the short tests and the
long runs (`scripts/faults`) alike.

It reads two witnesses and trusts neither side's bookkeeping alone: the sandbox's audit (what WeCom saw:
every API call with its errcode, every callback attempt, every welcome and template and transfer) and our
Postgres tables (what we recorded). Each invariant returns the violations it found, with enough detail to
start debugging from.

- no event lost: every callback the product answered 200 for is in the inbox and applied (done);
- no duplicate welcome: at most one welcome per welcome code and per add, one attempt per add, and no
  attempt that says "sent" for a welcome WeCom never delivered;
- no customer over quota: the sandbox found no template that pushed a customer over the receive quota,
  nor a late welcome nor a routing over capacity;
- no template created twice: no (sender, recipients) chunk appears in two templates, and every template
  WeCom created is one of our rows (a template created for an answer we never got would be a duplicate);
- no transfer requested twice: no customer asked for twice from the same member (a second request while
  the first is pending shows as 40129 in the answer);
- state converged: our follows (and their tags) are WeCom's, once the storm is over.

The last three are generic over the audit: they hold vacuously until broadcasts and transfers exist, and
bite from the first template or transfer the product creates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db.models import Model

from scrm.acquisition.models import WelcomeAttempt
from scrm.callbacks.models import InboxEvent, InboxStatus
from scrm.customers.models import Follow, FollowStatus, Tag
from scrm.tenancy.models import Corp

ALL = (
    "no_event_lost",
    "no_duplicate_welcome",
    "no_customer_over_quota",
    "no_template_created_twice",
    "no_transfer_requested_twice",
    "state_converged",
)
TRANSFER_APIS = ("externalcontact/transfer_customer", "externalcontact/resigned/transfer_customer")


@dataclass(frozen=True)
class Violation:
    invariant: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.detail}"


@dataclass
class Report:
    checked: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)  # what was counted, for the long runs' summary

    @property
    def ok(self) -> bool:
        return not self.violations

    def __str__(self) -> str:
        lines = [f"checked: {', '.join(self.checked)}", f"facts: {self.facts}"]
        lines += [f"  VIOLATION {v}" for v in self.violations[:50]]
        if len(self.violations) > 50:
            lines.append(f"  … and {len(self.violations) - 50} more")
        return "\n".join(lines)


class Checker:
    """`sb` is a wecom.sandbox.testing.SandboxServer; `acked` the plaintext digests the product answered 200
    for (tests/faults/front.py records them); without it, acknowledged deliveries are counted instead."""

    def __init__(
        self, sb: Any, corp: Corp, *, acked: Iterable[str] | None = None, templates_ours: bool = True
    ) -> None:
        self.sb = sb
        self.corp = corp
        self.acked = set(acked) if acked is not None else None
        # False when a test made templates itself, not through the product.
        self.templates_ours = templates_ours

    # --- the sandbox's audit ---------------------------------------------------------------------------
    def records(self, *, kind: str, name: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"corp": self.corp.corp_id, "kind": kind, "limit": 10**7}
        if name is not None:
            params["name"] = name
        return list(reversed(self.sb.control("GET", "/sandbox/audit", **params)["records"]))  # oldest first

    def api_errcodes(self, api: str) -> Counter[int]:
        return Counter(r["code"] for r in self.records(kind="api", name=api))

    # --- the invariants --------------------------------------------------------------------------------
    def no_event_lost(self, report: Report) -> None:
        rows = InboxEvent.objects.filter(corp=self.corp)
        report.facts["inbox_rows"] = rows.count()
        stats = self.sb.deliveries()["per_corp"].get(self.corp.corp_id, {})
        # WeCom stopped retrying these: not ours to lose, but only a sync can heal what they carried.
        report.facts["callbacks_given_up"] = stats.get("gave_up", 0)
        not_done = list(
            rows.exclude(status=InboxStatus.DONE).values_list("pk", "kind", "status", "last_error")
        )
        for pk, kind, status, error in not_done[:20]:
            report.violations.append(
                Violation("no_event_lost", f"inbox #{pk} {kind} is {status}: {error[:200]}")
            )
        if len(not_done) > 20:
            report.violations.append(Violation("no_event_lost", f"{len(not_done)} inbox rows not done"))
        if self.acked is not None:
            stored = set(rows.values_list("digest", flat=True))
            missing = self.acked - stored
            report.facts["acked_events"] = len(self.acked)
            if missing:
                report.violations.append(
                    Violation("no_event_lost", f"{len(missing)} acknowledged callbacks not in the inbox")
                )
        else:
            ok = {r["detail"]["delivery"] for r in self.records(kind="callback") if r["code"] == 0}
            report.facts["acked_deliveries"] = len(ok)
            if rows.count() < len(ok):
                report.violations.append(
                    Violation("no_event_lost", f"{len(ok)} deliveries acknowledged, {rows.count()} stored")
                )

    def no_duplicate_welcome(self, report: Report) -> None:
        sent = [r["detail"] for r in self.records(kind="world", name="welcome_sent")]
        report.facts["welcomes_sent"] = len(sent)
        per_code = Counter(d["welcome_code"] for d in sent)
        for code, n in per_code.items():
            if n > 1:
                report.violations.append(
                    Violation("no_duplicate_welcome", f"welcome code {code} used {n} times")
                )
        adds = Counter(
            (r["detail"]["userid"], r["detail"]["external_userid"])
            for r in self.records(kind="world")
            if r["name"] in ("add_external_contact", "add_half_external_contact", "confirm_half")
            and r["detail"].get("welcome_code")
        )
        per_pair = Counter((d["userid"], d["external_userid"]) for d in sent)
        for pair, n in per_pair.items():
            if n > max(1, adds[pair]):
                report.violations.append(
                    Violation("no_duplicate_welcome", f"{pair} welcomed {n} times for {adds[pair]} adds")
                )
        attempts = WelcomeAttempt.objects.filter(corp=self.corp)
        ours_sent = attempts.filter(status=WelcomeAttempt.Status.SENT).count()
        report.facts["welcome_attempts"] = attempts.count()
        if ours_sent > len(sent):
            report.violations.append(
                Violation("no_duplicate_welcome", f"{ours_sent} attempts say sent, WeCom saw {len(sent)}")
            )
        # One attempt per add: a second would be a second try at the same customer.
        per_attempt = Counter(attempts.values_list("userid", "external_userid"))
        for pair, n in per_attempt.items():
            if n > max(1, adds[pair]):
                report.violations.append(
                    Violation("no_duplicate_welcome", f"{pair}: {n} welcome attempts for {adds[pair]} adds")
                )
        # 41051 answers (a used code sent again) are facts, not violations: after a lost answer the only
        # way to learn the welcome went out is to try again.
        report.facts["welcome_41051"] = self.api_errcodes("externalcontact/send_welcome_msg")[41051]

    def no_customer_over_quota(self, report: Report) -> None:
        summary = self.sb.findings(self.corp.corp_id)["summary"]
        report.facts["findings"] = {k: summary[k] for k in ("over_quota", "late_welcome", "capacity")}
        for kind in ("over_quota", "late_welcome", "capacity"):
            if summary[kind]:
                report.violations.append(
                    Violation("no_customer_over_quota", f"sandbox finding {kind}: {summary[kind]}")
                )

    def no_template_created_twice(self, report: Report) -> None:
        created = [r["detail"] for r in self.records(kind="world", name="msg_template_created")]
        report.facts["templates"] = len(created)
        chunks: Counter[tuple[str, tuple[str, ...]]] = Counter()
        for d in created:
            for userid, targets in (d.get("recipients") or {}).items():
                chunks[(userid, tuple(targets))] += 1
        for (userid, targets), n in chunks.items():
            if n > 1:
                report.violations.append(
                    Violation(
                        "no_template_created_twice", f"{userid} → {len(targets)} customers: {n} templates"
                    )
                )
        ours = our_msgids(self.corp) if self.templates_ours else None
        if ours is not None:
            msgids = {d["msgid"] for d in created}
            report.facts["our_template_rows"] = len(ours)
            orphans = msgids - ours
            if orphans:
                report.violations.append(
                    Violation(
                        "no_template_created_twice",
                        f"{len(orphans)} templates WeCom created that we never recorded",
                    )
                )

    def no_transfer_requested_twice(self, report: Report) -> None:
        asked: Counter[tuple[str, str, str]] = Counter()
        requests = self.records(kind="world", name="transfer_requested")
        for d in (r["detail"] for r in requests):
            for c in d["customer"]:
                if c["errcode"] in (0, 40129):  # started, or refused because one is already pending
                    asked[(d["kind"], d["handover_userid"], c["external_userid"])] += 1
        report.facts["transfer_requests"] = len(requests)
        report.facts["transfer_calls"] = sum(sum(self.api_errcodes(api).values()) for api in TRANSFER_APIS)
        for (kind, handover, ext), n in asked.items():
            if n > 1:
                report.violations.append(
                    Violation("no_transfer_requested_twice", f"{kind} {handover} → {ext} requested {n} times")
                )

    def state_converged(self, report: Report) -> None:
        members = {
            m["userid"] for m in self.sb.data(self.corp.corp_id, "members") if m["resigned_at"] is None
        }
        wecom: dict[tuple[str, str], tuple[str, ...]] = {}
        for c in self.sb.data(self.corp.corp_id, "customers"):
            for f in c["follows"]:
                if f["userid"] in members:
                    gone = f["deleted_by_customer"]  # one-way: the member still lists the customer
                    status = (FollowStatus.DELETED_BY_CUSTOMER if gone else FollowStatus.ACTIVE).value
                    wecom[(f["userid"], c["external_userid"])] = (status, *sorted(f["tags"]))
        tag_ids = dict(Tag.objects.filter(corp=self.corp).values_list("pk", "tag_id"))
        ours: dict[tuple[str, str], tuple[str, ...]] = {}
        rows = Follow.objects.filter(
            corp=self.corp, status__in=(FollowStatus.ACTIVE, FollowStatus.DELETED_BY_CUSTOMER)
        ).values_list("member__userid", "customer__external_userid", "status", "tag_ids")
        for userid, ext, ours_status, tags in rows:
            ours[(userid, ext)] = (str(ours_status), *sorted(tag_ids.get(t, f"pk{t}") for t in tags))
        report.facts["follows"] = len(wecom)
        for key in sorted(set(wecom) | set(ours)):
            theirs, mine = wecom.get(key), ours.get(key)
            if theirs is None or mine is None or theirs[0] != mine[0]:
                report.violations.append(Violation("state_converged", f"{key}: WeCom {theirs}, ours {mine}"))
            elif theirs[0] == FollowStatus.ACTIVE and theirs != mine:
                report.violations.append(
                    Violation("state_converged", f"{key} tags: WeCom {theirs}, ours {mine}")
                )

    # --- running them ----------------------------------------------------------------------------------
    def check(self, *names: str) -> Report:
        report = Report()
        for name in names or ALL:
            fn: Callable[[Report], None] = getattr(self, name)
            fn(report)
            report.checked.append(name)
        return report

    def assert_holds(self, *names: str, context: str = "") -> Report:
        report = self.check(*names)
        assert report.ok, f"invariants violated\n{report}\n{context}"
        return report


def our_msgids(corp: Corp) -> set[str] | None:
    """The msgids our broadcast rows recorded, from whichever campaigns model keeps them (None until the
    campaigns app has one): the checker needs no change when the feature lands."""
    try:
        config = apps.get_app_config("campaigns")
    except LookupError:
        return None
    found: set[str] | None = None
    for model in config.get_models():
        names = {f.name for f in model._meta.get_fields()}
        if "msgid" in names and "corp" in names:
            found = found or set()
            found |= _values(model, corp)
    return found


def _values(model: type[Model], corp: Corp) -> set[str]:
    return {m for m in model._default_manager.filter(corp=corp).values_list("msgid", flat=True) if m}
