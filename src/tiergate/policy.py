"""Change authority: ``tiers/policy.yaml`` says who may change which definition files, and which
changes need someone else's approval.

    rules:
      decisions:   {changed_by: [platform-lead], approved_by: compliance-officer}
      checklists:  {changed_by: [support-lead, qa-lead]}          # no approval needed
      default:     {changed_by: [platform-lead], approved_by: platform-lead}

Every definition file is of one kind (``kind_of``). A change is judged against the policy and the
roles of the **latest deployment**, never the drafts': nobody grants themselves a right by
editing the policy they are changing. Without a deployed policy nothing is enforced (any person
may deploy, as before policies existed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from tiergate.definitions.models import Frozen, Roles, Slug
from tiergate.definitions.problems import Problem, ProblemList
from tiergate.errors import TiergateError

POLICY_FILE = "tiers/policy.yaml"
KINDS = ("catalog", "roles", "policy", "decisions", "processes", "checklists", "conventions", "settings")
Kind = Literal["catalog", "roles", "policy", "decisions", "processes", "checklists", "conventions", "settings",
               "default"]


class ChangeRule(Frozen):
    """Who may change one kind of file, and whose approval a change of it needs."""

    changed_by: list[Slug] = Field(min_length=1, description="Roles whose members may propose or deploy a change.")
    approved_by: Slug | None = Field(None, description="A role one of whose members, other than the author, must "
                                     "approve the change (in a definition-change run). None: no approval needed.")
    description: str = ""


class Policy(Frozen):
    """``tiers/policy.yaml``: a rule per kind of file; ``default`` covers the kinds not named."""

    rules: dict[Kind, ChangeRule]

    def rule(self, kind: str) -> ChangeRule | None:
        return self.rules.get(kind) or self.rules.get("default")  # type: ignore[call-overload]


def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema of tiers/policy.yaml, for editors and `tiergate schema policy`."""
    schema = Policy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://tiergate.dev/schemas/policy.schema.json"
    return schema


def kind_of(path: str) -> str:
    """The kind of a definition file, by its path relative to the home."""
    top = path.split("/", 1)[0]
    if top in ("decisions", "processes", "checklists"):
        return top
    if path == "tiers/catalog.yaml":
        return "catalog"
    if path == "tiers/roles.yaml":
        return "roles"
    if path == POLICY_FILE:
        return "policy"
    if path.startswith(("tiers/conventions/", "tiers/guidance/")):
        return "conventions"
    return "settings"


def load_policy(root: Path, display: Any, roles: Roles | None) -> tuple[Policy | None, list[Problem]]:
    """``tiers/policy.yaml`` of a home (None without one), every problem at its line."""
    from pydantic import ValidationError

    from tiergate.definitions.yamlfile import load_yaml
    from tiergate.errors import DefinitionError

    path = root / POLICY_FILE
    if not path.is_file():
        return None, []
    shown = display(path)
    try:
        document = load_yaml(path)
    except DefinitionError as exc:
        return None, [Problem(shown, exc.details.get("line", 1), exc.message.split(": ", 1)[-1])]
    found = ProblemList(shown, document)
    try:
        policy = Policy.model_validate(document.data if document.data is not None else {})
    except ValidationError as exc:
        found.add_validation_error(exc, document.data)
        return None, list(found)
    if roles is not None:
        for kind, rule in policy.rules.items():
            for index, role in enumerate(rule.changed_by):
                if role not in roles.roles:
                    found.add(f"/rules/{kind}/changed_by/{index}", f"'{role}' is not a role in tiers/roles.yaml. "
                              "Add the role there, or name one that exists.")
            if rule.approved_by is not None and rule.approved_by not in roles.roles:
                found.add(f"/rules/{kind}/approved_by", f"'{rule.approved_by}' is not a role in tiers/roles.yaml, "
                          "so nobody could approve a change. Add the role there, or name one that exists.")
            elif rule.approved_by is not None and len(roles.roles[rule.approved_by].members) < 2 and \
                    set(roles.roles[rule.approved_by].members) & _members(roles, rule.changed_by):
                found.add(f"/rules/{kind}/approved_by", f"'{rule.approved_by}' has one member, who may also make "
                          "the change: nobody else could approve their change. Add a second member.",
                          severity="warning")
    if "policy" not in policy.rules and "default" not in policy.rules:
        found.add("/rules", "no rule covers the policy itself (`policy` or `default`): nobody could ever change "
                  "this file again. Add one.")
    return (None if found.has_errors else policy), list(found)


def deployed_policy(root: Path, deployment: dict[str, Any], files: dict[str, str]) -> tuple[Policy | None, Roles | None]:
    """The policy and roles of a deployment (None, None: it has no policy, so nothing is enforced)."""
    from tiergate.definitions.home import Home, load_roles
    from tiergate.deployments import materialize

    if POLICY_FILE not in files:
        return None, None
    home = Home(materialize(root, deployment, files))
    roles = load_roles(home)
    policy, problems = load_policy(home.root, home.display, roles)
    if policy is None or roles is None:  # deploy refuses such files: the database was edited by hand
        raise ChangeRefused(f"the {POLICY_FILE} or tiers/roles.yaml of deployment {deployment['number']} cannot be "
                            f"read ({'; '.join(str(p) for p in problems[:3]) or 'roles.yaml has problems'}), so no "
                            "change can be judged. Ask an operator to check the database.",
                            details={"deployment": deployment["number"]})
    return policy, roles


def _members(roles: Roles, names: list[str]) -> set[str]:
    return {m for name in names if name in roles.roles for m in roles.roles[name].members}


class ChangeRefused(TiergateError):
    """A change its actor may not make (``change_not_allowed``), or may not make without an approved
    ``definition-change`` run (``approval_required``)."""

    code = "change_not_allowed"


@dataclass
class Authority:
    """What a change touches, by kind, and the roles that must approve it (empty: none)."""

    kinds: dict[str, list[str]] = field(default_factory=dict)
    approvers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"kinds": self.kinds, "approvers": self.approvers}


def judge(policy: Policy | None, roles: Roles | None, actor: str, paths: list[str]) -> Authority:
    """Whether ``actor`` may change ``paths``, and whose approval it needs; ``ChangeRefused`` if not allowed."""
    authority = Authority()
    for path in sorted(paths):
        authority.kinds.setdefault(kind_of(path), []).append(path)
    if policy is None:
        return authority
    known = roles.roles if roles is not None else {}
    for kind, files in sorted(authority.kinds.items()):
        rule = policy.rule(kind)
        if rule is None:
            raise ChangeRefused(f"{POLICY_FILE} gives nobody the right to change {kind} files ({files[0]}"
                                f"{' and more' if len(files) > 1 else ''}). Add a rule for `{kind}` (or `default`) "
                                "to the policy, and deploy that first.",
                                details={"kind": kind, "files": files, "actor": actor})
        if not any(r in known and actor in known[r].members for r in rule.changed_by):
            raise ChangeRefused(f"{actor} may not change {kind} files ({files[0]}"
                                f"{' and more' if len(files) > 1 else ''}): {POLICY_FILE} allows members of "
                                f"{', '.join(rule.changed_by)}. Ask one of them to propose it.",
                                details={"kind": kind, "files": files, "actor": actor,
                                         "changed_by": list(rule.changed_by)})
        if rule.approved_by is not None and rule.approved_by not in authority.approvers:
            authority.approvers.append(rule.approved_by)
    return authority
