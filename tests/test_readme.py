"""The README's quick start, run as written: install, start a run, carry it to `completed`.

The commands run in a copy of the repository with a virtual environment's `python3` and
`tiergate` first on PATH, exactly as the README spells them (a venv that sees the test
environment's packages, so `pip install .` builds tiergate and installs nothing else).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import BACKEND, REPO

BLOCKS = re.findall(r"```sh\n(.*?)\n```", (REPO / "README.md").read_text(encoding="utf-8"), re.S)


def _copy_of_the_repository(target: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.mark.slow
def test_the_quick_start_runs_as_written_from_start_to_completed(tmp_path: Path, db_url: str) -> None:
    install_and_start, walk = BLOCKS[0], BLOCKS[1]
    assert install_and_start.startswith("python3 -m pip install . && tiergate start support-triage --actor ")
    repo = _copy_of_the_repository(tmp_path / "tiergate")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # The venv sees the packages of the environment running the tests (which may itself be a
    # venv), so `pip install .` finds every dependency installed and builds only tiergate.
    purelib = subprocess.run([str(venv / "bin" / "python3"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    parents = [p for p in sys.path if p.endswith("-packages") and Path(p).is_dir()]
    (Path(purelib) / "_tests_parent_environment.pth").write_text("\n".join(parents) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERGATE_") and k != "PYTHONPATH"}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", NO_COLOR="1", COLUMNS="200",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    if BACKEND == "postgresql":
        env["TIERGATE_DATABASE_URL"] = db_url  # the embedded SQLite default otherwise, as the README says

    def shell(script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=900)

    first = shell(install_and_start)
    assert first.returncode == 0, first.stderr[-3000:]
    assert re.search(r"^run [0-9a-f]{12}  Support ticket triage \(support-triage, tier 2\)  status: active$",
                     first.stdout, re.M), first.stdout
    assert "who may do it: an agent or a person with the role `support-engineer`" in first.stdout
    assert "- `next_pay_date` (required): a date written YYYY-MM-DD" in first.stdout  # the gate in words
    if BACKEND == "sqlite":
        assert (repo / ".tiergate" / "tiergate.db").is_file()

    second = shell(walk)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert re.search(r"status: completed$", second.stdout, re.M)
    assert "ok: 18 entries in 1 runs" not in second.stdout  # two runs: the one above and this one
    assert re.search(r"^ok: \d+ entries in 2 runs; every hash chain is intact$", second.stdout, re.M)
    # One of the two runs completed, clean; the legend explains every column.
    assert re.search(r"^support-triage\s+2\s+2\s+100% \(1/1\)\s+50%\s+100%\s+0\.0", second.stdout, re.M), \
        second.stdout
    assert re.search(r"^done/all\s+completed runs of all runs", second.stdout, re.M)
    assert second.stderr == ""
