"""Where the tests find the repository, its captures and their own output."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CAPTURES = REPO / "tests" / "data"
ARTIFACTS = REPO / "tests" / "artifacts"
