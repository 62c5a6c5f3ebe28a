"""The vendored diagram viewers (scripts/vendor_web.sh): present, described and shipped in the wheel."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from support import REPO

VENDOR = REPO / "src" / "tiergate" / "web" / "static" / "vendor"


def test_each_viewer_has_its_licence_readme_and_the_files_it_lists() -> None:
    folders = sorted(p.name for p in VENDOR.iterdir())
    assert [re.sub(r"-\d.*", "", name) for name in folders] == ["bpmn-js", "dmn-js"]
    for folder in (VENDOR / name for name in folders):
        package, version = folder.name.rsplit("-", 1)
        readme = (folder / "README.md").read_text()
        assert f"https://registry.npmjs.org/{package}/-/{package}-{version}.tgz" in readme
        assert re.search(r"`sha512-[A-Za-z0-9+/=]{80,}`", readme)
        assert "MIT" in (folder / "LICENSE").read_text() or "bpmn.io" in (folder / "LICENSE").read_text()
        listed = re.findall(r"- `dist/([^`]+)`", readme)
        assert listed and all((folder / relative).is_file() for relative in listed), listed
    # what the run page loads
    assert (VENDOR / folders[0] / "bpmn-navigated-viewer.production.min.js").is_file()
    assert (VENDOR / folders[1] / "dmn-viewer.production.min.js").is_file()


def test_the_wheel_takes_the_vendored_files() -> None:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["tiergate"]
    package = REPO / "src" / "tiergate"
    shipped = {path for pattern in data for path in package.glob(pattern) if path.is_file()}
    assert {p for p in VENDOR.rglob("*") if p.is_file()} <= shipped


def test_the_run_page_names_the_vendored_versions() -> None:
    from_page = (REPO / "src" / "tiergate" / "web" / "runs.py").read_text()
    for folder in VENDOR.iterdir():
        assert f'"vendor/{folder.name}"' in from_page
