"""The SLA contract a customer's availability is measured against.

Example (per customer; every field optional)::

    contract:
      availability_target: 99.9        # percent
      hours: business                  # 24x7 (default) | business
      business_hours: {days: [mon, tue, wed, thu, fri], start: "08:00", end: "18:00"}
      blip_threshold: 2m               # outages shorter than this are not counted
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from mspwatch.common.config import Duration, StrictModel

from .localtime import Clock, Weekday, minutes, weekly_spans


class BusinessHours(StrictModel):
    days: list[Weekday] = Field(min_length=1)
    """Weekdays the contract measures (`mon` .. `sun`)."""
    start: Clock = Field(description='"HH:MM", local time')
    end: Clock = Field(description='"HH:MM", after start')

    @field_validator("days")
    @classmethod
    def _unique(cls, days: list[Weekday]) -> list[Weekday]:
        if len(set(days)) != len(days):
            raise ValueError("a day is listed twice")
        return days

    @model_validator(mode="after")
    def _order(self) -> BusinessHours:
        if minutes(self.end) <= minutes(self.start):
            raise ValueError("end must be after start")
        return self


class Contract(StrictModel):
    availability_target: float = Field(default=99.9, gt=0, lt=100, description="percent")
    hours: Literal["24x7", "business"] = "24x7"
    """Measure availability around the clock (`24x7`) or in `business_hours` only."""
    business_hours: BusinessHours | None = Field(default=None, description="required iff hours: business")
    blip_threshold: Duration = Field(default=120.0, description="the report ignores shorter outages")

    @model_validator(mode="after")
    def _hours(self) -> Contract:
        if self.hours == "business" and self.business_hours is None:
            raise ValueError("hours: business needs business_hours")
        if self.hours == "24x7" and self.business_hours is not None:
            raise ValueError("business_hours is only read with hours: business")
        return self

    def measured_minutes(self, zone: ZoneInfo, start: datetime, end: datetime) -> float:
        """Minutes of ``[start, end)`` in which availability is measured.

        >>> from datetime import UTC
        >>> week = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00"}
        >>> nov, dec = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
        >>> london = ZoneInfo("Europe/London")
        >>> Contract(hours="business", business_hours=week).measured_minutes(london, nov, dec)
        12600.0
        >>> Contract().measured_minutes(ZoneInfo("UTC"), nov, dec)
        43200.0
        """
        if self.business_hours is None:
            return (end - start).total_seconds() / 60
        b = self.business_hours
        spans = weekly_spans(b.days, b.start, b.end, zone, start, end)
        return sum((hi - lo).total_seconds() for lo, hi in spans) / 60
