"""monitoring/runbooks.md and the alert rules agree both ways, and every runbook section is complete.

Also docs/operations/troubleshooting.md: each entry has its symptom, check, fix and the commit it comes from.

- every alert of the rule files links (``runbook_url``) to a section of the runbooks;
- every section is named after an existing alert (no runbook for an alert that was renamed or removed);
- every section has its five parts, in order: what it means, how to confirm (a shell block of exact commands),
  how to fix, how to verify (a command or query), when to escalate (a severity level of the escalation policy).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULE_DIRS = [ROOT / "roles" / "prometheus" / "files" / "rules", ROOT / "monitoring"]
RUNBOOKS = ROOT / "monitoring" / "runbooks.md"
PARTS = ["What it means", "Confirm", "Fix", "Verify", "Escalate"]
PART_RE = re.compile(r"^\*\*(" + "|".join(PARTS) + r"):\*\*", re.MULTILINE)


def rule_files() -> list[Path]:
    """Prometheus rule files (a top-level ``groups`` list) under the prometheus role and monitoring/."""
    found = []
    for directory in RULE_DIRS:
        for path in sorted(directory.rglob("*.yml")):
            doc = yaml.safe_load(path.read_text())
            if isinstance(doc, dict) and isinstance(doc.get("groups"), list):
                found.append(path)
    return found


def alerts() -> list[dict]:
    return [
        rule
        for path in rule_files()
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def sections() -> dict[str, str]:
    """Second-level heading -> its body."""
    text = RUNBOOKS.read_text()
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


ALERTS = alerts()
ALERT_NAMES = sorted({rule["alert"] for rule in ALERTS})
SECTIONS = sections()


def test_rule_files_are_found():
    assert len(rule_files()) >= 9 and len(ALERT_NAMES) >= 30


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_every_alert_links_to_a_section(rule):
    url = rule["annotations"].get("runbook_url", "")
    assert url.startswith("monitoring/runbooks.md#"), f"{rule['alert']}: runbook_url {url!r}"
    target = url.split("#", 1)[1]
    assert target in {anchor(h) for h in SECTIONS}, f"{rule['alert']}: no section with anchor #{target}"


def test_every_section_names_an_existing_alert():
    unknown = sorted(set(SECTIONS) - set(ALERT_NAMES))
    assert not unknown, f"runbook sections without an alert of that name: {unknown}"


def test_every_section_is_linked_by_an_alert():
    linked = {rule["annotations"]["runbook_url"].split("#", 1)[1] for rule in ALERTS}
    orphans = sorted(h for h in SECTIONS if anchor(h) not in linked)
    assert not orphans, f"sections no alert links to: {orphans}"


def section_problems(name: str, body: str) -> list[str]:
    """What a runbook section lacks."""
    found = PART_RE.findall(body)
    if found != PARTS:
        return [f"{name}: parts {found}, expected {PARTS}"]
    chunks = dict(zip(found, PART_RE.split(body)[2::2], strict=True))
    problems = [f"{name}: '{part}' is empty" for part, text in chunks.items() if len(text.strip()) <= 20]
    if not re.search(r"^```sh\n.+?\n```", chunks["Confirm"], flags=re.MULTILINE | re.DOTALL):
        problems.append(f"{name}: 'Confirm' has no ```sh block of commands")
    if "`" not in chunks["Verify"]:
        problems.append(f"{name}: 'Verify' names no command or query")
    if not re.search(r"\b(critical|warning|info)\b", chunks["Escalate"]):
        problems.append(f"{name}: 'Escalate' names no severity level of docs/operations/escalation.md")
    return problems


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_section_has_its_parts_in_order(name):
    assert not section_problems(name, SECTIONS[name])


GOOD = """
**What it means:** The thing is down and nothing works.

**Confirm:**
```sh
q 'up == 0'
```

**Fix:** Start the thing again after reading its journal.

**Verify:** `q 'up'` returns 1 and the alert resolves.

**Escalate:** critical: call the next level after 15 minutes.
"""


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (GOOD.replace("**Fix:**", "**Repair:**"), "parts"),
        (GOOD.replace("```sh", "```"), "no ```sh block"),
        (GOOD.replace("`q 'up'`", "the query"), "names no command"),
        (GOOD.replace("critical:", "soon:"), "names no severity"),
        (GOOD.replace("Start the thing again after reading its journal.", "Restart."), "'Fix' is empty"),
    ],
)
def test_the_check_catches_an_incomplete_section(body, problem):
    assert not section_problems("Good", GOOD)
    assert any(problem in p for p in section_problems("Bad", body)), section_problems("Bad", body)


def test_no_postgres_major_version_is_hard_coded():
    """Paths and units that depend on the PostgreSQL major version are written for every release (15 and 17)."""
    text = RUNBOOKS.read_text()
    assert not re.search(r"postgresql/1[0-9]/|postgresql@1[0-9]-|postgresql-1[0-9]", text)


TROUBLESHOOTING = ROOT / "docs" / "operations" / "troubleshooting.md"


def troubleshooting_entries() -> dict[str, str]:
    parts = re.split(r"^### (.+)$", TROUBLESHOOTING.read_text(), flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def test_troubleshooting_entries_have_symptom_check_fix_and_source():
    entries = troubleshooting_entries()
    assert len(entries) >= 15
    for title, body in entries.items():
        found = re.findall(r"^- \*\*(Symptom|Check|Fix|Source):\*\*", body, flags=re.MULTILINE)
        assert found == ["Symptom", "Check", "Fix", "Source"], f"{title}: {found}"
        assert re.search(r"^- \*\*Source:\*\* [0-9a-f]{7}(, [0-9a-f]{7})*$", body, flags=re.MULTILINE), title


def test_troubleshooting_sources_are_commits_of_this_repository():
    git = shutil.which("git")
    if not git or not (ROOT / ".git").exists():
        pytest.skip("no git history here")
    shallow = subprocess.run([git, "rev-parse", "--is-shallow-repository"], cwd=ROOT, capture_output=True, text=True)
    if shallow.stdout.strip() != "false":
        pytest.skip("shallow clone: the cited commits may be missing")
    cited = re.findall(r"[0-9a-f]{7}", " ".join(re.findall(r"\*\*Source:\*\* (.+)", TROUBLESHOOTING.read_text())))
    for commit in cited:
        result = subprocess.run([git, "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT, capture_output=True)
        assert result.returncode == 0, f"{commit} is not a commit of this repository"
