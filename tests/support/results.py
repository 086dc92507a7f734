"""The figures a long suite reports (``RESULT {json}``): printed, and carried on the test's
report to the end of the run (through pytest-xdist's workers), where the summary lists
them, so a CI log shows the fuzz, kill -9 and soak figures of a passing run too."""

from __future__ import annotations

import json
from typing import Any

#: Results recorded by the test now running on this process (attached to its report).
pending: list[str] = []


def record(result: dict[str, Any]) -> None:
    line = "RESULT " + json.dumps(result, ensure_ascii=False)
    print(line, flush=True)
    pending.append(line)
