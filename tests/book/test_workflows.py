"""The GitHub Actions workflows (.github/workflows/) are valid and run the README's commands: `make test` on every
push and pull request, `make test-all` nightly and on demand, `make book` deployed to GitHub Pages. They cannot run
here; this checks what can be checked: YAML that parses, actions pinned to a major version, the same commands."""
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def load(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))   # YAML 1.1 reads the key `on` as True
    return data


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def runs(workflow: dict, event: str) -> list[str]:
    """The shell commands of the jobs that run on `event` (a job's `if:` names the events it runs on)."""
    out = []
    for job in workflow["jobs"].values():
        condition = job.get("if", "")
        if not condition or f"'{event}'" in condition:
            out += [step["run"] for step in job["steps"] if "run" in step]
    return out


def readme_block() -> str:
    return re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S).group(1)


@pytest.mark.parametrize("name", ["tests.yml", "book.yml"])
def test_actions_are_pinned_to_a_major_version(name):
    uses = [step["uses"] for step in steps(load(name)) if "uses" in step]
    assert uses and all(re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", u) for u in uses), uses


def test_tests_workflow_runs_the_readmes_test_commands():
    workflow = load("tests.yml")
    block = readme_block()
    assert "make test " in block and "make test-all " in block   # the README names both
    assert {"push", "pull_request", "schedule", "workflow_dispatch"} <= set(workflow["on"])
    assert workflow["on"]["schedule"][0]["cron"]
    for event in ("push", "pull_request"):
        assert runs(workflow, event) == ["make test"], event
    for event in ("schedule", "workflow_dispatch"):
        assert runs(workflow, event) == ["make test-all"], event
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\nmake test-all\n" in ci


def test_book_workflow_builds_with_the_readmes_command_and_deploys_pages():
    workflow = load("book.yml")
    assert "make book " in readme_block()
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    assert [s["run"] for s in build["steps"] if "run" in s] == ["make book"]
    caches = {s["with"]["path"]: s["with"]["key"] for s in build["steps"] if s.get("uses", "").startswith("actions/cache@")}
    assert set(caches) == {".venv", "results"} and all("hashFiles(" in key for key in caches.values())
    upload = [s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert [s["with"]["path"] for s in upload] == ["_build/html"]
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert [s["uses"].split("@")[0] for s in deploy["steps"]] == ["actions/deploy-pages"]
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
