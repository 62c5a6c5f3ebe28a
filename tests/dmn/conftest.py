"""Fixtures of the DMN tests."""

from __future__ import annotations

import pytest

from dmn_helpers import definitions, input_data, literal, table


@pytest.fixture
def dmn():
    """The helpers, as one object: dmn.definitions, dmn.table, dmn.literal, dmn.input_data."""

    class Helpers:
        pass

    h = Helpers()
    h.definitions, h.table, h.literal, h.input_data = definitions, table, literal, input_data
    return h
