from __future__ import annotations

import pytest

from connectors.models import ObjectKind, SystemName
from gateway.errors import ConfigurationError, OwnershipViolation
from gateway.ownership import OwnershipMap
from gateway.settings import DEFAULT_OWNERSHIP

VALID = DEFAULT_OWNERSHIP.read_text()


def test_the_shipped_map_gives_every_kind_one_owner() -> None:
    ownership = OwnershipMap.load(DEFAULT_OWNERSHIP)
    assert set(ownership.owners) == set(ObjectKind)
    assert ownership.owner(ObjectKind.ACCOUNT) is SystemName.CRM
    assert ownership.owner(ObjectKind.INVOICE) is SystemName.BILLING
    assert ownership.owner(ObjectKind.POSTING) is SystemName.ERP
    assert ownership.owner(ObjectKind.CASE) is SystemName.SUPPORT
    assert ownership.owner(ObjectKind.CREDIT_REQUEST) is SystemName.OPSGRAPH
    assert ownership.kinds_of(SystemName.ERP) == [ObjectKind.POSTING, ObjectKind.BALANCE]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (VALID.replace('crm = ["account"]', 'hubspot = ["account"]'), "unknown system 'hubspot'"),
        (VALID.replace('"balance"', '"balances"'), "unknown object kind 'balances' under erp"),
        (
            VALID.replace('crm = ["account"]', 'crm = ["account", "invoice"]'),
            "invoice is owned by both billing and crm",
        ),
        (VALID.replace(', "sla_breach"', ""), "no owner for sla_breach"),
        ("owners = 3", "needs an [owners] table"),
        ("[owners", "not valid TOML"),
    ],
)
def test_an_invalid_map_fails_with_a_clear_line(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        OwnershipMap.parse(text, source="ownership.toml")
    assert err.value.message.startswith(f"ownership.toml: {message}")


def test_a_write_to_a_non_owner_is_refused() -> None:
    ownership = OwnershipMap.load(DEFAULT_OWNERSHIP)
    ownership.check_write(ObjectKind.POSTING, SystemName.ERP)
    with pytest.raises(OwnershipViolation) as err:
        ownership.check_write(ObjectKind.POSTING, SystemName.BILLING)
    assert err.value.code == "OWNERSHIP_VIOLATION"
    assert err.value.message == "posting is owned by erp; billing may not write it"
