"""Options shared by the reconcile modules (mailgov_mailboxes, mailgov_units, mailgov_plan):
written once here, pulled in with extends_documentation_fragment."""

from __future__ import annotations


class ModuleDocFragment:
    # Connection, data and safety options of every reconcile module.
    DOCUMENTATION = r"""
options:
  data:
    description:
      - Path of the data file (C(data/mailboxes.yaml)) on the controller. It is validated
        first; a file with problems fails the task before any connection is made.
    type: path
    required: true
  uri:
    description:
      - The provider's LDAP URI. C(ldaps://HOST) or C(ldap://HOST) (StartTLS is then
        required, as the server refuses password binds without TLS).
    type: str
    required: true
  bind_dn:
    description:
      - The account to bind as; default the reconciler's service account
        C(cn=mailgov,ou=services,BASE) (BASE from the data file).
    type: str
  bind_password:
    description: Its password (lab - generated file; production - vault).
    type: str
    required: true
  ca_file:
    description: CA certificate that signed the server's certificate (verified by name).
    type: path
  timeout:
    description: Seconds to wait for the server to answer a connection.
    type: int
    default: 10
  today:
    description:
      - Date (YYYY-MM-DD) the plan is made as of (what is due); default today. At most
        O(today_max_ahead_days) ahead of the clock (MG608). A cancel is always recorded with
        the clock's day, so no date given here shortens a retention.
    type: str
  today_max_ahead_days:
    description:
      - How many days O(today) may be ahead of the clock (the inventory's
        C(mailgov_today_max_ahead_days)); 0 in production.
    type: int
    default: 0
  base:
    description:
      - The data file at the base of the review (main's, before the change). The safety
        guards (policy.safety, policy.protected) are read from it, and a change to them must
        be planned alone (MG607). Without it the defaults hold, tightened by the file.
    type: path
  archived:
    description:
      - Address -> sha256 of the verified archive of its mail store. Only a cancelled
        mailbox past retention that appears here is purged.
    type: dict
    default: {}
  allow_mass_change:
    description:
      - Apply even when the plan cancels, suspends or purges more than the policy share of
        mailboxes (the safety rail of C(policy.safety.max_disable_share)).
    type: bool
    default: false
  override_reason:
    description:
      - With I(allow_mass_change), the decision that makes the mass change right (e.g. the
        merger's decree). It is shown in the plan, and only an override with a reason passes
        the caps on address changes (MG609) and modifications (MG610); without one only the
        disable cap (MG601) is passed.
    type: str
    default: ""
  remove_drift:
    description:
      - Also remove what the live directory has and the data does not explain - never an
        entry that holds mail (a person, a unit mailbox) - those leave through cancel,
        retention, archive and purge.
    type: bool
    default: false
"""

    # The reconcile lock, for the modules that write.
    LOCK = r"""
options:
  kinds:
    description:
      - Apply only these change kinds (for example C([purge]) in the lifecycle); empty applies
        every change of the module's scope. The safety rails still judge the whole plan.
    type: list
    elements: str
    default: []
  lock_wait:
    description:
      - Seconds to wait while another apply holds the reconcile lock
        (C(cn=reconcile-lock,ou=services,BASE)); 0 fails at once with the holder's name.
    type: int
    default: 0
  lock_ttl:
    description: Seconds after which a lock whose holder died is taken over.
    type: int
    default: 3600
"""
