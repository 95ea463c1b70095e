"""Which connector speaks for which system of record: an explicit map, so that a reader
(and mypy) can follow ``SystemName.ERP`` to the code that answers for it."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from connectors import billing, crm, erp, support
from connectors.base import Connector
from connectors.models import ConnectorConfig, SystemName

CONNECTORS: Mapping[SystemName, Callable[[ConnectorConfig], Connector]] = {
    SystemName.BILLING: billing.connect,
    SystemName.ERP: erp.connect,
    SystemName.ERP_SHADOW: erp.connect_shadow,
    SystemName.CRM: crm.connect,
    SystemName.SUPPORT: support.connect,
}


def connect(system: SystemName, config: ConnectorConfig) -> Connector:
    """The connector for ``system``; KeyError for a system opsgraph has none for (its own)."""
    return CONNECTORS[system](config)
