"""Developer scripts: `make run` (run_local) and the demo company.

Importing the package puts the project root and the generated protobuf code
(`gen/`, from `make gen`) on `sys.path`, so `python -m scripts.<name>` works
from the project root without setting PYTHONPATH.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
GEN_DIR = PROJECT_ROOT / "gen"

if not (GEN_DIR / "engage").is_dir():
    raise ImportError(f"the generated protobuf code is missing from {GEN_DIR}: run `make gen`")

for _path in (str(PROJECT_ROOT), str(GEN_DIR)):
    if _path not in sys.path:
        sys.path.append(_path)
