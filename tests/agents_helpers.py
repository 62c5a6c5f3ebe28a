"""A literal-minded agent: it reads ONLY rendered guidance text (never a schema) and writes evidence from it.

Used to hold the guidance to its promise: evidence written from the words alone passes the gate.
It understands exactly the vocabulary of docs/guidance.md (*Gates in words*) and fails loudly on
anything else.
"""

from __future__ import annotations

import json
import re
import re._parser as sre_parse  # type: ignore[import-not-found]
from typing import Any

def split_outside_ticks(text: str, separator: str) -> list[str]:
    """Split on ``separator`` where it is not inside `backticks`."""
    parts, current, inside, i = [], "", False, 0
    while i < len(text):
        if text[i] == "`":
            inside = not inside
        if not inside and text.startswith(separator, i):
            parts.append(current)
            current, i = "", i + len(separator)
            continue
        current += text[i]
        i += 1
    return parts + [current]


def _in_set(char: str, items: list[Any]) -> bool:
    samples = {sre_parse.CATEGORY_DIGIT: "0123456789", sre_parse.CATEGORY_SPACE: " \t\n\r\f\v",
               sre_parse.CATEGORY_WORD: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"}
    for op, av in items:
        if op == sre_parse.LITERAL and chr(av) == char:
            return True
        if op == sre_parse.RANGE and av[0] <= ord(char) <= av[1]:
            return True
        if op == sre_parse.CATEGORY and char in samples.get(av, ""):
            return True
    return False


def from_regex(pattern: str, seed: int = 0) -> str:
    """A string the regular expression accepts; ``seed`` lengthens the first open-ended repeat."""
    spare = [seed]

    def generate(items: Any) -> str:
        out = ""
        for op, av in items:
            if op == sre_parse.LITERAL:
                out += chr(av)
            elif op == sre_parse.NOT_LITERAL:
                out += "a" if chr(av) != "a" else "b"
            elif op == sre_parse.ANY:
                out += "a"
            elif op == sre_parse.IN:
                negated = av and av[0][0] == sre_parse.NEGATE
                members = av[1:] if negated else av
                candidates = "a0xZ_-." if negated else "".join(
                    chr(a[1]) if a[0] == sre_parse.LITERAL else chr(a[1][0]) if a[0] == sre_parse.RANGE else
                    {sre_parse.CATEGORY_DIGIT: "0", sre_parse.CATEGORY_WORD: "a",
                     sre_parse.CATEGORY_SPACE: " "}.get(a[1], "a") for a in members)
                out += next(c for c in candidates if _in_set(c, members) != negated)
            elif op in (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT):
                low, high, sub = av
                count = low
                if high == sre_parse.MAXREPEAT and spare[0]:
                    count, spare[0] = low + spare[0], 0
                out += "".join(generate(sub) for _ in range(count))
            elif op == sre_parse.SUBPATTERN:
                out += generate(av[-1])
            elif op == sre_parse.BRANCH:
                out += generate(av[1][0])
            elif op == sre_parse.AT:
                continue
            else:
                raise AssertionError(f"the literal agent cannot read {op} in {pattern}")
        return out

    result = generate(sre_parse.parse(pattern))
    assert re.search(pattern, result), (pattern, result)
    return result


def _text(phrase: str, seed: int) -> str:
    low = int(m.group(1)) if (m := re.search(r"of (?:at least |exactly )?(\d+)(?: to \d+)? characters?", phrase)) else 1
    high_match = re.search(r"of (?:at most |exactly |\d+ to )(\d+) characters?", phrase)
    text = f"Written from the guidance words alone, item {seed}. "
    while len(text) < low:
        text += "More detail. "
    text = text.strip()
    if high_match:
        text = text[: int(high_match.group(1))]
    return text


class LiteralAgent:
    """Reads only the rendered guidance and writes evidence exactly as the words say."""

    def __init__(self, guidance: str):
        self.guidance = guidance

    def ready_steps(self) -> list[str]:
        if "## Ready now" not in self.guidance:
            return []
        section = self.guidance.split("## Ready now", 1)[1].split("\n## ", 1)[0]
        return re.findall(r"^### `([^`]+)`", section, re.M)

    def _section(self, step: str) -> list[str]:
        lines = self.guidance.splitlines()
        heads = (f"### `{step}`", f"## The step to do now: `{step}`")  # tier 2, tier 1
        start = lines.index(next(line for line in lines if line.startswith(heads)))
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("## ", "### `"))), len(lines))
        return lines[start:end]

    def who(self, step: str) -> str:
        return next(line for line in self._section(step) if line.startswith("Who may do it: "))

    def done_by(self, step: str) -> str | None:
        match = re.search(rf"^- \[x\] `{re.escape(step)}` — .* — done by (\S+) at ", self.guidance, re.M)
        return match.group(1) if match else None

    def evidence(self, step: str, seed: int = 0) -> dict[str, Any]:
        """Evidence for ``step``; a different ``seed`` picks other allowed values (for a step met again)."""
        section = self._section(step)
        first = next(i for i, line in enumerate(section) if line.startswith("Evidence — "))
        head = section[first][len("Evidence — "):]
        block = []
        for line in section[first + 1:]:
            if not line.strip():
                break
            block.append(line)
        value = self.build(head, block, seed)
        assert isinstance(value, dict), head
        return value

    # Reading a phrase ----------------------------------------------------------------------

    def build(self, phrase: str, children: list[str], seed: int) -> Any:
        phrase = split_outside_ticks(phrase, " — ")[0].strip()
        if phrase.startswith("either "):
            return self.build(split_outside_ticks(phrase[len("either "):], ", or ")[0], children, seed)
        if phrase.startswith("exactly `"):
            return json.loads(re.match(r"exactly `(.*)`$", phrase).group(1))  # type: ignore[union-attr]
        if phrase.startswith("one of `"):
            options = [json.loads(o.strip()[1:-1]) for o in split_outside_ticks(phrase[len("one of "):], ", ")]
            return options[seed % len(options)]
        if phrase == "`true` or `false`":
            return True
        if phrase == "`null`":
            return None
        if phrase.startswith(("a JSON object", "an object")):
            return self.build_object(children, seed)
        if phrase.startswith("a list"):
            return self.build_list(phrase, children)
        if phrase.startswith(("a whole number", "a number")):
            return self.build_number(phrase)
        pattern = re.search(r"matching the regular expression `(.*)`$", phrase)
        if pattern:
            return from_regex(pattern.group(1), seed)
        if phrase.startswith("a date written YYYY-MM-DD"):
            return "2026-01-15"
        if phrase.startswith("a date and time"):
            return "2026-01-15T09:30:00Z"
        if phrase.startswith("an e-mail address"):
            return "someone@example.com"
        if phrase.startswith("text"):
            return _text(phrase, seed)
        raise AssertionError(f"the literal agent cannot read: {phrase!r}")

    def build_number(self, phrase: str) -> int | float:
        if m := re.search(r"at least (-?[\d.]+)", phrase):
            return json.loads(m.group(1))
        if m := re.search(r"greater than (-?[\d.]+)", phrase):
            return json.loads(m.group(1)) + 1
        if m := re.search(r"at most (-?[\d.]+)", phrase):
            return min(0, json.loads(m.group(1)))
        return 0

    def build_list(self, phrase: str, children: list[str], at_least: int = 0) -> list[Any]:
        count = 1
        if m := re.search(r"of (?:at least |exactly )?(\d+)(?: to \d+)? items?", phrase):
            count = int(m.group(1)) or 1
        count = max(count, at_least)
        item = split_outside_ticks(phrase, "; each item")[1] if "; each item" in phrase else "text"
        item = item[2:] if item.startswith(": ") else item[len(" is "):]
        return [self.build(item, children, seed) for seed in range(count)]

    def _fields(self, children: list[str]) -> tuple[dict[str, tuple[str, str, list[str]]], list[str]]:
        """This level's field lines (name -> status, phrase, their own children) and its `If` lines."""
        fields: dict[str, tuple[str, str, list[str]]] = {}
        conditions: list[str] = []
        current: str | None = None
        for line in children:
            if line.startswith("  "):
                assert current is not None, line
                fields[current][2].append(line[2:])
                continue
            match = re.match(r"^- `([^`]+)` \((required|optional)(?:, .*?)?\): (.*)$", line)
            if match:
                current = match.group(1)
                fields[current] = (match.group(2), match.group(3), [])
            elif line.startswith("- If "):
                conditions.append(line[len("- If "):])
                current = None
            else:
                raise AssertionError(f"the literal agent cannot read: {line!r}")
        return fields, conditions

    def build_object(self, children: list[str], seed: int) -> dict[str, Any]:
        fields, conditions = self._fields(children)
        value = {name: self.build(phrase, sub, seed) for name, (status, phrase, sub) in fields.items()
                 if status == "required"}
        for condition in conditions:
            if re.match(r"^`[^`]+` is given, ", condition):  # "If `a` is given, `b` is also required."
                when, then = split_outside_ticks(condition, ", ")[0], ", ".join(split_outside_ticks(condition, ", ")[1:])
            else:  # "If `a` is `V` [and ...]: consequences."
                when, then = split_outside_ticks(condition, ": ")[0], ": ".join(split_outside_ticks(condition, ": ")[1:])
            if self.holds(when, value):
                self.apply(then.rstrip("."), value, fields, seed)
        return value

    @staticmethod
    def holds(when: str, value: dict[str, Any]) -> bool:
        for clause in split_outside_ticks(when, " and "):
            name = re.match(r"^`([^`]+)`", clause).group(1)  # type: ignore[union-attr]
            if clause.endswith(" is given"):
                ok = name in value
            elif m := re.match(r"^`[^`]+` is `(.*)`$", clause):
                ok = name in value and value[name] == json.loads(m.group(1))
            elif m := re.match(r"^`[^`]+` is at least (-?[\d.]+)$", clause):
                ok = name in value and value[name] >= json.loads(m.group(1))
            elif m := re.match(r"^`[^`]+` is one of (.*)$", clause):
                ok = name in value and value[name] in [json.loads(o.strip()[1:-1])
                                                       for o in split_outside_ticks(m.group(1), ", ")]
            else:
                raise AssertionError(f"the literal agent cannot read the condition {clause!r}")
            if not ok:
                return False
        return True

    def apply(self, then: str, value: dict[str, Any], fields: dict[str, tuple[str, str, list[str]]],
              seed: int) -> None:
        for piece in split_outside_ticks(then, "; "):
            if piece.endswith(("is also required", "are also required")):
                for name in re.findall(r"`([^`]+)`", piece):
                    _, phrase, sub = fields[name]
                    value.setdefault(name, self.build(phrase, sub, seed))
            elif m := re.match(r"^`([^`]+)` must have at least (\d+) items?$", piece):
                _, phrase, sub = fields[m.group(1)]
                value[m.group(1)] = self.build_list(phrase, sub, at_least=int(m.group(2)))
            elif m := re.match(r"^`([^`]+)` must have at most (\d+) items?$", piece):
                value[m.group(1)] = value[m.group(1)][:int(m.group(2))]
            elif m := re.match(r"^`([^`]+)` must have `([^`]+)` exactly `(.*)` in every item$", piece):
                for item in value[m.group(1)]:
                    item[m.group(2)] = json.loads(m.group(3))
            elif m := re.match(r"^`([^`]+)` must be (.*)$", piece):
                value[m.group(1)] = self.build(m.group(2), [], seed)
            else:
                raise AssertionError(f"the literal agent cannot read the consequence {piece!r}")


def current_step(guidance: str) -> str | None:
    """The Tier 1 wrapper's "step to do now", if any."""
    match = re.search(r"^## The step to do now: `([^`]+)`", guidance, re.M)
    return match.group(1) if match else None


def actor_for(agent: LiteralAgent, step: str, roles: dict[str, Any]) -> str:
    """Someone the guidance's `Who may do it` line allows (members from tiers/roles.yaml)."""
    who = agent.who(step)
    kinds = [k for k, words in (("agent", "an agent"), ("human", "a person")) if words in who]
    named = re.findall(r"`([^`]+)`", who.split(", other than")[0])
    excluded = None
    if m := re.search(r"other than whoever completed `([^`]+)`", who):
        excluded = agent.done_by(m.group(1))
    candidates = sorted({member for role in named for member in roles[role]["members"]}) if named else \
        [f"{kind}:literal" for kind in kinds]
    allowed = [c for c in candidates if c.split(":")[0] in kinds and c != excluded]
    allowed.sort(key=lambda c: c.startswith("human:"))  # prefer agents
    assert allowed, who
    return allowed[0]
