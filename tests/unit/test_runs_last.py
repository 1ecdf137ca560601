"""The ``runs_last`` marker: tests/conftest.py's collection hook moves the marked tests to the end."""
from __future__ import annotations

import pytest

from tests.conftest import pytest_collection_modifyitems


class _Item:
    def __init__(self, name: str, last: bool = False):
        self.name = name
        self._marks = {"runs_last": pytest.mark.runs_last.mark} if last else {}

    def get_closest_marker(self, name: str):
        return self._marks.get(name)


def _order(items) -> list[str]:
    pytest_collection_modifyitems(None, items)
    return [i.name for i in items]


def test_marked_tests_move_to_the_end_in_their_order():
    items = [_Item("a"), _Item("secrets", last=True), _Item("b"), _Item("other-last", last=True), _Item("c")]
    assert _order(items) == ["a", "b", "c", "secrets", "other-last"]


def test_order_is_kept_without_marked_tests():
    assert _order([_Item("b"), _Item("a")]) == ["b", "a"]


def test_the_secrets_check_is_marked_and_the_marker_registered(pytestconfig):
    from tests.integration import test_no_secrets_in_logs
    assert "runs_last" in [m.name for m in test_no_secrets_in_logs.pytestmark]
    assert any(m.startswith("runs_last:") for m in pytestconfig.getini("markers"))
