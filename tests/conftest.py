"""Every process a test starts (``ptw`` commands, runner children) imports this checkout's own code."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
