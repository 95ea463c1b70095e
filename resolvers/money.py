from __future__ import annotations

import strawberry

from connectors.money import Money


@strawberry.type(name="Money", description="An exact amount: never a float.")
class MoneyType:
    amount: str = strawberry.field(description='Major units as a decimal string, e.g. "12.34".')
    currency: str = strawberry.field(description="ISO 4217 code.")
    minor_units: str = strawberry.field(
        description="Integer minor units as a string (cents for USD, yen for JPY, fils for KWD)."
    )

    @classmethod
    def of(cls, money: Money) -> MoneyType:
        return cls(
            amount=money.amount_str(), currency=money.currency, minor_units=str(money.amount_minor)
        )
