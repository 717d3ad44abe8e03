"""The data file as typed, immutable objects (built only from schema-valid data).

Defaults are applied here, once, so later stages (planner, reports, Ansible modules) never
re-implement them: kind personal, role staff, state active, quota from policy.quotas[kind].
Every unit and mailbox keeps its ``index`` in its list so a problem can point back at the
line in the file (``("mailboxes", index, ...)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, make_dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class QuotaRange:
    """Quota limits for one kind of mailbox, in MiB."""

    default: int
    min: int
    max: int


@dataclass(frozen=True, slots=True)
class PasswordRules:
    min_length: int
    required_classes: tuple[str, ...]
    history: int
    max_age_days: int
    lockout_failures: int
    first_login_change_days: int
    forbid_personal_data: bool
    # Minutes a lockout lasts; 0 = until an administrator unlocks (policy.password.*
    # .lockout_duration_minutes; defaults in LOCKOUT_DURATION_DEFAULT_MINUTES).
    lockout_duration_minutes: int = 0


@dataclass(frozen=True, slots=True)
class AliasDomain:
    """organization.alias_domains[]: a domain every address also receives at, until ``until``
    (the day it stops; None: for ever). Typically the old domain after a migration."""

    index: int
    domain: str
    until: str | None = None  # YYYY-MM-DD
    request: str | None = None
    # A dated domain switch: this domain stays the primary until this day (then the
    # organisation's ``domain`` is; None: the switch is done or the domain never was primary).
    primary_until: str | None = None


@dataclass(frozen=True, slots=True)
class Organization:
    name: str
    domain: str
    base_dn: str
    it_unit: str
    name_en: str | None = None
    alias_domains: tuple[AliasDomain, ...] = ()

    def live_alias_domains(self, today: object = None) -> tuple[str, ...]:
        """The alias domains still receiving on ``today`` (a date; None: all listed)."""
        from datetime import date

        out = []
        for a in self.alias_domains:
            if a.until is not None and today is not None:
                end = a.until if isinstance(a.until, date) else date.fromisoformat(str(a.until))
                if not today < end:  # type: ignore[operator]
                    continue
            out.append(a.domain.lower())
        return tuple(out)


@dataclass(frozen=True, slots=True)
class AdminSsh:
    """policy.admin_ssh: how admins reach the servers (the hardening role's sshd inputs)."""

    classical_kex: bool = False  # post-quantum hybrid only unless an old client needs more
    max_sessions: int = 4
    max_startups: str = "10:30:60"
    login_grace_seconds: int = 30
    idle_timeout_minutes: int = 10


@dataclass(frozen=True, slots=True)
class Policy:
    naming: Mapping[str, Any]  # parsed by mailgov.naming.NamingPolicy.from_dict
    quotas: Mapping[str, QuotaRange]  # kind -> range: personal, unit, affiliate
    message_size_mb: int
    blocked_attachments: tuple[str, ...]
    password_users: PasswordRules
    password_administrators: PasswordRules
    inactivity_lock_days: int
    retention_staff_days: int
    retention_heads_days: int
    rate_limit_messages: int
    rate_limit_window_minutes: int
    rate_limit_action: str
    forwarding_allowed_domains: tuple[str, ...]
    max_disable_share: float
    protected: tuple[str, ...]
    logs_retention_days: int
    backup_schedule: str
    remove_drift: bool = False  # safety.remove_drift: plans delete entries the data lacks
    # safety caps on the other kinds of change (mailgov.plan.Guards; defaults there)
    max_address_change_share: float = 0.30
    max_modify_share: float = 0.30
    cap_floor: int = 10
    admin_ssh: AdminSsh = field(default_factory=AdminSsh)
    #: The IT department's git users/groups: CODEOWNERS of everything no unit owns.
    approvers: tuple[str, ...] = ()
    # policy.history.alias_days: how long a dated previous address keeps delivering
    # (None: for ever, as before issue 14)
    previous_alias_days: int | None = None
    unit_alias_days: int | None = None  # policy.history.unit_alias_days



@dataclass(frozen=True, slots=True)
class UnitMailbox:
    quota_mb: int
    delegates: tuple[str, ...] = ()
    request: str | None = None


@dataclass(frozen=True, slots=True)
class FocalPoint:
    """Who receives the unit's new initial passwords (an age-encrypted file, see credentials)."""

    name: str
    age_recipient: str  # age public key, age1...


@dataclass(frozen=True, slots=True)
class FormerAbbr:
    """units[].formerly[]: what the unit's address was made of before a rename (``abbr``) or
    a move to another parent (``parent``, `mailgov unit merge` of its parent)."""

    abbr: str | None
    date: str | None = None
    request: str | None = None
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class Dissolved:
    """units[].dissolved: merged into or replaced by ``successor`` on ``date``."""

    date: str
    successor: str
    request: str


@dataclass(frozen=True, slots=True)
class Unit:
    index: int  # position in `units`
    id: str
    name: str
    mailbox: UnitMailbox
    name_en: str | None = None
    parent: str | None = None
    head: str | None = None
    abbreviation: str | None = None  # as written; see `abbr`
    focal_point: FocalPoint | None = None
    #: Git users/groups who approve changes to this unit's per-unit file (CODEOWNERS).
    approvers: tuple[str, ...] = ()
    headcount: int | None = None  # HR's staff count (the y of "x of y have a mailbox")
    formerly: tuple[FormerAbbr, ...] = ()
    dissolved: Dissolved | None = None

    @property
    def abbr(self) -> str:
        """What the unit mailbox address is made of: `abbr` from the file, else the id."""
        return self.abbreviation or self.id


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """A `suspended` or `cancelled` block: when, why, on whose request."""

    date: str  # YYYY-MM-DD
    reason: str
    request: str
    until: str | None = None  # suspended only: the first day it no longer holds (the restore)


@dataclass(frozen=True, slots=True)
class PreviousAddress:
    """One address a mailbox had before a rename (``renamed_from``), oldest first."""

    address: str  # local part
    date: str | None = None  # YYYY-MM-DD the rename took effect; None = long ago
    request: str | None = None


@dataclass(frozen=True, slots=True)
class MovedFrom:
    """``moved_from``: the unit a mailbox was in before a move dated ``date`` (a future date
    schedules the move; a past one is history)."""

    unit: str
    date: str  # YYYY-MM-DD the move takes effect
    request: str | None = None


@dataclass(frozen=True, slots=True)
class Reserved:
    """An address never given to anyone else (top-level ``reserved``)."""

    index: int
    address: str  # local part
    reason: str
    id: int | None = None  # the mailbox that held it: it alone may have it back


@dataclass(frozen=True, slots=True)
class Exemption:
    reason: str
    request: str


@dataclass(frozen=True, slots=True)
class Mailbox:
    index: int  # position in `mailboxes`
    address: str  # local part
    name: str
    unit: str
    quota_mb: int
    kind: str = "personal"  # personal | affiliate
    role: str = "staff"  # staff | head | admin
    state: str = "active"  # active | suspended | cancelled
    title: str | None = None
    created: str | None = None
    request: str | None = None
    aliases: tuple[str, ...] = ()
    forward_to: tuple[str, ...] = ()
    suspended: Lifecycle | None = None
    cancelled: Lifecycle | None = None
    sponsor: str | None = None
    naming_exemption: Exemption | None = None
    birth: str | None = None
    id_digits: str | None = None
    explicit_quota: bool = False  # quota_mb written in the file (not the policy default)
    # Previous local parts, oldest first (renamed_from: a scalar or a list). Aliases while
    # their policy period lasts, reserved for this mailbox for ever.
    previous: tuple[PreviousAddress, ...] = ()
    # change.request: the request of the record's latest edit (a move, a new title …), cited
    # by the plan for that change instead of the record's original request (issue 14).
    change_request: str | None = None
    # The identity (schema: required; None only for data built without validation, which
    # the planner matches by address, as before ids). Recorded as mailUidNumber; names the
    # store. Never the address: see docs/reconcile.md, "Invariants".
    id: int | None = None
    moved_from: MovedFrom | None = None  # a dated move (issue 14 item 4)

    @property
    def renamed_from(self) -> str | None:
        """The address just before the current one (the last rename), or None."""
        return self.previous[-1].address if self.previous else None


@dataclass(frozen=True, slots=True)
class Directory:
    version: int
    organization: Organization
    policy: Policy
    units: tuple[Unit, ...]
    mailboxes: tuple[Mailbox, ...]
    reserved: tuple[Reserved, ...] = ()

    def address(self, local: str) -> str:
        return f"{local}@{self.organization.domain}"

    def ever_used(self, m: Mailbox) -> list[str]:
        """Every local part ``m`` used: its address, its previous addresses, its aliases at
        one of the organisation's domains (primary or alias), in that order, each once. What
        `reserve-purged` reserves and a purged record may not leave the data without."""
        out = [m.address, *(p.address for p in m.previous),
               *own_aliases(m, self.domains())]
        return list(dict.fromkeys(out))

    def domains(self) -> set[str]:
        """The organisation's domains (primary and alias), lower case."""
        return {self.organization.domain.lower(),
                *(a.domain.lower() for a in self.organization.alias_domains)}


def own_aliases(m: Mailbox, domains: set[str]) -> list[str]:
    """The local parts of ``m``'s aliases at one of ``domains`` (written bare or in full):
    addresses of the record, as its address is."""
    out = []
    for a in m.aliases:
        local, _at, dom = a.partition("@")
        if not dom or dom.lower() in domains:
            out.append(local)
    return out


# policy.password.<kind>.lockout_duration_minutes when the data leaves it out. Users: locked
# until an administrator unlocks (as before the field existed). Administrators: 30 minutes,
# PCI DSS v4.0 requirement 8.3.4 ("lockout duration is set to a minimum of 30 minutes or until
# the user's identity is confirmed"); never 0 (MG407): whoever knows an administrator's
# address could otherwise lock every administrator out for good (issue 12, finding 11).
LOCKOUT_DURATION_DEFAULT_MINUTES = {"users": 0, "administrators": 30}


def _password(d: Mapping[str, Any], kind: str) -> PasswordRules:
    return PasswordRules(
        d["min_length"],
        tuple(d["required_classes"]),
        d["history"],
        d["max_age_days"],
        d["lockout_failures"],
        d["first_login_change_days"],
        d["forbid_personal_data"],
        d.get("lockout_duration_minutes", LOCKOUT_DURATION_DEFAULT_MINUTES[kind]),
    )


def _policy(p: Mapping[str, Any]) -> Policy:
    rate = p["outbound_rate_limit"]
    return Policy(
        naming=p["naming"],
        quotas={k: QuotaRange(v["default"], v["min"], v["max"]) for k, v in p["quotas"].items()},
        message_size_mb=p["message_size_mb"],
        blocked_attachments=tuple(p["blocked_attachments"]),
        password_users=_password(p["password"]["users"], "users"),
        password_administrators=_password(p["password"]["administrators"], "administrators"),
        inactivity_lock_days=p["inactivity_lock_days"],
        retention_staff_days=p["retention"]["staff_days"],
        retention_heads_days=p["retention"]["heads_days"],
        rate_limit_messages=rate["messages"],
        rate_limit_window_minutes=rate["window_minutes"],
        rate_limit_action=rate["action"],
        forwarding_allowed_domains=tuple(p["forwarding"]["allowed_domains"]),
        max_disable_share=p["safety"]["max_disable_share"],
        protected=tuple(p["protected"]),
        logs_retention_days=p["logs_retention_days"],
        backup_schedule=p["backups"]["schedule"],
        remove_drift=p["safety"].get("remove_drift", False),
        max_address_change_share=p["safety"].get("max_address_change_share", 0.30),
        max_modify_share=p["safety"].get("max_modify_share", 0.30),
        cap_floor=p["safety"].get("floor", 10),
        admin_ssh=AdminSsh(**p.get("admin_ssh", {})),
        approvers=tuple(p.get("approvers", ())),
        previous_alias_days=(p.get("history") or {}).get("alias_days"),
        unit_alias_days=(p.get("history") or {}).get("unit_alias_days"),
    )


def _lifecycle(d: Mapping[str, Any] | None) -> Lifecycle | None:
    return None if d is None else Lifecycle(d["date"], d["reason"], d["request"], d.get("until"))


def _previous(value: Any) -> tuple[PreviousAddress, ...]:
    """renamed_from: one local part (the form before issue 14) or a list of local parts and
    {address, date, request} records."""
    items = [value] if isinstance(value, str) else value
    return tuple(PreviousAddress(v) if isinstance(v, str)
                 else PreviousAddress(v["address"], v.get("date"), v.get("request"))
                 for v in items)


def next_free_id(data: Any) -> int:
    """One more than the highest mailbox id in the (possibly invalid) raw data, the ids of
    purged mailboxes (``reserved``) included: an id is never reused. The one rule for new
    records (mailbox_edit) and validate's hints."""
    ids: list[int] = []
    for key in ("mailboxes", "reserved"):
        items = data.get(key) if isinstance(data, Mapping) else None
        if isinstance(items, list):
            ids += [b["id"] for b in items if isinstance(b, Mapping)
                    and isinstance(b.get("id"), int) and not isinstance(b.get("id"), bool)]
    return max(ids, default=0) + 1


# A frozen dataclass sets each field through object.__setattr__ (a call per field: 24 for a
# Mailbox, 2.2 µs a record, 0.11 s of 50,000), a mutable one with plain slot stores (0.3 µs).
# So build() makes each Mailbox as its mutable twin (the same fields in the same order, hence
# the same slot layout) and then gives it its real class: from then on it is a Mailbox in
# every respect, frozen (tests/unit/test_model.py checks both against the dataclass's own
# constructor). The twin never leaves this module.
_MailboxDraft = make_dataclass("_MailboxDraft", [f.name for f in fields(Mailbox)], slots=True)


def build(data: Mapping[str, Any]) -> Directory:
    """Turn schema-valid data into a :class:`Directory` (raises KeyError on invalid data)."""
    org = data["organization"]
    policy = _policy(data["policy"])
    unit_quota = policy.quotas["unit"].default
    units = []
    for i, u in enumerate(data["units"]):
        mb = u.get("mailbox") or {}
        units.append(
            Unit(
                i,
                u["id"],
                u["name"],
                UnitMailbox(
                    mb.get("quota_mb", unit_quota), tuple(mb.get("delegates", ())),
                    mb.get("request"),
                ),
                u.get("name_en"),
                u.get("parent"),
                u.get("head"),
                u.get("abbr"),
                None if (fp := u.get("focal_point")) is None
                else FocalPoint(fp["name"], fp["age_recipient"]),
                tuple(u.get("approvers", ())),
                u.get("headcount"),
                tuple(FormerAbbr(f.get("abbr"), f.get("date"), f.get("request"), f.get("parent"))
                      for f in u.get("formerly") or ()),
                None if (ds := u.get("dissolved")) is None
                else Dissolved(ds["date"], ds["successor"], ds["request"]),
            )
        )
    defaults = {kind: q.default for kind, q in policy.quotas.items()}
    mailboxes = []
    # The hot loop for 50k mailboxes: plain .get() calls, positional construction.
    append = mailboxes.append
    for i, m in enumerate(data["mailboxes"]):
        kind = m.get("kind", "personal")
        quota = m.get("quota_mb")
        susp = m.get("suspended")
        canc = m.get("cancelled")
        exe = m.get("naming_exemption")
        box = _MailboxDraft(
            i,
            m["address"],
            m["name"],
            m["unit"],
            defaults[kind] if quota is None else quota,
            kind,
            m.get("role", "staff"),
            m.get("state", "active"),
            m.get("title"),
            m.get("created"),
            m.get("request"),
            tuple(m.get("aliases", ())),
            tuple(m.get("forward_to", ())),
            None if susp is None else _lifecycle(susp),
            None if canc is None else _lifecycle(canc),
            m.get("sponsor"),
            None if exe is None else Exemption(exe["reason"], exe["request"]),
            m.get("birth"),
            m.get("id_digits"),
            quota is not None,
            () if (prev := m.get("renamed_from")) is None else _previous(prev),
            (m.get("change") or {}).get("request"),
            m.get("id"),
            None if (mv := m.get("moved_from")) is None
            else MovedFrom(mv["unit"], mv["date"], mv.get("request")),
        )
        box.__class__ = Mailbox
        append(box)
    return Directory(
        data["version"],
        Organization(org["name"], org["domain"], org["base_dn"], org["it_unit"],
                     org.get("name_en"),
                     tuple(AliasDomain(i, a["domain"], a.get("until"), a.get("request"),
                                       a.get("primary_until"))
                           for i, a in enumerate(org.get("alias_domains") or ()))),
        policy,
        tuple(units),
        tuple(mailboxes),
        tuple(Reserved(i, r["address"], r["reason"], r.get("id"))
              for i, r in enumerate(data.get("reserved") or ())),
    )
