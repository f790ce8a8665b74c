"""Third-party distributions here are installed and tested in venvs of their own
(tests/test_third_party.py), never imported from the development venv."""

from __future__ import annotations

collect_ignore = ["fence-virt-backend-example"]
