from __future__ import annotations

import strawberry

from connectors.models import SystemName

SystemNameEnum = strawberry.enum(SystemName, name="SystemName")
