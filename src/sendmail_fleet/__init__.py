"""sendmail-fleet: Ansible roles for sendmail VPS fleets and the Docker lab that proves them."""

from pathlib import Path

__version__ = "0.1.0"


def repo_root() -> Path:
    """The checkout this package was installed from (editable install)."""
    return Path(__file__).resolve().parents[2]
