"""Extract every request example (and its cost) from the Runware model pages in shared/seeds.

Writes tests/data/seed_examples.json, which the tests read so that they need no
file outside this repository. Run it again whenever the seed pages change; a
test compares the stored file with the pages when they are present.

    python scripts/extract_seed_examples.py [SEEDS_DIR]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SEEDS = ROOT.parent / "shared" / "seeds"
OUT = ROOT / "tests" / "data" / "seed_examples.json"


def _objects(text: str):
    decoder = json.JSONDecoder()
    pos, last_end = 0, 0
    while (start := text.find("{", pos)) != -1:
        try:
            obj, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            pos = start + 1
            continue
        if isinstance(obj, dict) and obj.get("taskType") == "videoInference":
            yield text[last_end:start], obj
            pos = last_end = end
        else:
            pos = start + 1


def _title(preceding: str) -> str:
    lines = [ln.strip() for ln in preceding.replace("}", "\n").splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("**", "```", "[Watch", "---"))]
    return re.sub(r"^#+\s*", "", lines[-1]) if lines else ""


def extract(seeds: Path) -> list[dict]:
    examples = []
    for page in sorted(seeds.glob("*.txt")):
        text = page.read_text(encoding="utf-8")
        pending: dict | None = None
        for preceding, obj in _objects(text):
            if "model" in obj:
                pending = {"seed_file": page.name, "title": _title(preceding), "request": obj}
                examples.append(pending)
            elif pending and obj.get("taskUUID") == pending["request"]["taskUUID"]:
                pending["cost"] = obj.get("cost")
                pending = None
    return examples


def main() -> None:
    seeds = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SEEDS
    examples = extract(seeds)
    OUT.write_text(json.dumps(examples, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(examples)} examples from {seeds} -> {OUT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
