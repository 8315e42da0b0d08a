"""docs/reliability.md names the tests behind each case: each one it names exists."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cited_tests() -> set[tuple[str, str]]:
    cited = set()
    for line in (ROOT / "docs" / "reliability.md").read_text().splitlines():
        path = None
        for match in re.finditer(r"`(?:([\w/]+\.py))?::(\w+)`", line):
            path = match.group(1) or path
            if path:
                cited.add((path, match.group(2)))
    return cited


def test_every_test_the_reliability_page_cites_exists():
    cited = cited_tests()
    assert len(cited) > 100
    missing = sorted(
        (path, name)
        for path, name in cited
        if not (ROOT / path).exists() or not re.search(rf"def {name}\(", (ROOT / path).read_text())
    )
    assert missing == []
