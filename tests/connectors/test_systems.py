"""Every external system has a connector in the explicit map, and it speaks for that system."""

from __future__ import annotations

import pytest

from connectors import systems
from connectors.models import ConnectorConfig, SystemName


@pytest.mark.parametrize("system", [s for s in SystemName if s is not SystemName.OPSGRAPH])
async def test_the_map_connects_each_system_of_record(system: SystemName) -> None:
    connector = systems.connect(system, ConnectorConfig(base_url="http://127.0.0.1:9", secret="s"))
    try:
        assert connector.system is system
        assert connector.calls == 0
    finally:
        await connector.aclose()


def test_opsgraph_itself_has_no_connector() -> None:
    assert SystemName.OPSGRAPH not in systems.CONNECTORS
