"""Store short-lived OAuth state in Redis: authorization codes, refresh families, counters."""

from __future__ import annotations

from jwtauth.store.codes import CodeCheck, CodeRecord, CodeStore, TakeResult, TakeStatus
from jwtauth.store.limits import FailureLimiter
from jwtauth.store.refresh import RefreshStore
from jwtauth.store.refresh_records import (
    CodeAhead,
    FamilyRecord,
    FamilySpec,
    FamilyStart,
    IssuedRefresh,
    Rotation,
    RotationStatus,
)

__all__ = [
    "CodeAhead",
    "CodeCheck",
    "CodeRecord",
    "CodeStore",
    "FailureLimiter",
    "FamilyRecord",
    "FamilySpec",
    "FamilyStart",
    "IssuedRefresh",
    "RefreshStore",
    "Rotation",
    "RotationStatus",
    "TakeResult",
    "TakeStatus",
]
