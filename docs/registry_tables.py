"""Regenerate the method tables of docs/guide/*.md from the engines' registries.

`python docs/registry_tables.py` rewrites them; `--check` only reports stale pages
(exit status 1), as tests/test_registry.py does.
"""

import sys
from pathlib import Path

from camtrack._registry_docs import sync_guides

if __name__ == "__main__":
    check = "--check" in sys.argv[1:]
    stale = sync_guides(Path(__file__).parent / "guide", check=check)
    print(("stale: " if check else "rewritten: ") + (", ".join(stale) or "none"))
    sys.exit(1 if check and stale else 0)
