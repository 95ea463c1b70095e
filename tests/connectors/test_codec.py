from __future__ import annotations

from datetime import date

import pytest

from connectors import codec
from connectors.models import Posting, PostingType, SystemName
from connectors.money import Money
from connectors.sandbox.seed import generate


def test_every_seeded_record_round_trips_exactly() -> None:
    world = generate(customers=12, seed=7, as_of=date(2026, 11, 1))
    records = [r for rs in world.records.values() for r in rs]
    assert len(records) == 192
    assert [codec.from_json(codec.to_json(r)) for r in records] == records


def test_the_json_form_is_plain_and_exact() -> None:
    posting = Posting(
        system=SystemName.ERP, id="5001", type=PostingType.CREDIT_MEMO, customer_id="1001",
        external_id=None, subsidiary="Opsgraph Gulf W.L.L.", amount=Money(1234, "KWD"),
        tax=Money(0, "KWD"), tran_date=date(2026, 11, 3), status="open",
    )  # fmt: skip
    assert codec.to_json(posting) == {
        "@type": "Posting",
        "system": "erp",
        "id": "5001",
        "type": "credit_memo",
        "customer_id": "1001",
        "external_id": None,
        "subsidiary": "Opsgraph Gulf W.L.L.",
        "amount": {"amount_minor": 1234, "currency": "KWD"},
        "tax": {"amount_minor": 0, "currency": "KWD"},
        "tran_date": "2026-11-03",
        "status": "open",
        "memo": None,
    }


def test_an_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown record type 'Spaceship'"):
        codec.from_json({"@type": "Spaceship"})
