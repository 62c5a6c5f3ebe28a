"""The DMN TCK (levels 2 and 3, and the non-compliant folder), run against tiergate's DMN engine.

The runner is ``tests/dmn/tck.py`` (parsing, comparison, scoring as the TCK scores). Level 2 runs
as one pytest test per test case (id ``<model folder>/<case id>``); every level has a summary that
asserts the exact pass count and the exact set of known failures of ``tck_known_failures.tsv``,
so any regression or improvement shows. After an improvement, rewrite the known failures, the
report docs/dmn-tck.md and docs/tck_results.csv with ``python tests/dmn/tck.py --write`` and
update ``EXPECTED`` below.
"""

from __future__ import annotations

import pytest

import tck

#: level -> (result nodes, result nodes that pass)
EXPECTED = {
    "compliance-level-2": (126, 126),
    "compliance-level-3": (3369, 3351),
    "non-compliant": (50, 50),
}

LEVEL2 = tck.cases("compliance-level-2")


def test_corpus_present():
    for level, (total, _) in EXPECTED.items():
        assert (tck.TCK / level).is_dir(), f"the DMN TCK corpus is missing: expected {tck.TCK / level}"
        assert sum(len(c.results) for c in tck.cases(level)) == total


@pytest.mark.parametrize("case", LEVEL2, ids=[f"{c.folder}/{c.id}" for c in LEVEL2])
def test_level2_case(case):
    failures = [(key, why) for key, ok, why in tck.run(case).nodes if not ok]
    assert not failures, failures


@pytest.mark.parametrize("level", list(EXPECTED))
def test_tck_summary(level, capsys):
    nodes = [n for o in tck.outcomes(level) for n in o.nodes]
    failed = {key: why for key, ok, why in nodes if not ok}
    known = {k: v for k, v in tck.known_failures().items() if k.startswith(level + "/")}
    with capsys.disabled():
        print(f"\nDMN TCK {level}: {len(nodes) - len(failed)} of {len(nodes)} results pass")
    assert len(nodes) == EXPECTED[level][0]
    newly_failing = sorted(set(failed) - set(known))
    newly_passing = sorted(set(known) - set(failed))
    assert not newly_failing, [(k, failed[k]) for k in newly_failing[:20]]
    assert not newly_passing, ("these now pass: run `python tests/dmn/tck.py --write` and update "
                               f"EXPECTED: {newly_passing[:20]}")
    assert len(nodes) - len(failed) == EXPECTED[level][1]
