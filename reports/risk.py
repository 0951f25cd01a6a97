"""The risk score (0 = nothing to worry about, 100 = act now) and the top risks.

Weights (also printed in the methodology appendix):

====================  ======  ==============================================================
area                  weight  points
====================  ======  ==============================================================
availability            30    weight x share of the error budget used (capped at 1)
backup                  30    weight x the worse of failed-run share and time outside RPO
patching                25    weight x twice the non-compliant share of the fleet (capped)
Microsoft 365           15    weight x mean of Secure Score shortfall and users without MFA
====================  ======  ==============================================================

An area without data scores half its weight: not knowing is a risk too.

    >>> [c.points for c in components(0.5, 1.0, 1.0, 0.9, 0.6, 0.8)]
    [15.0, 0.0, 5.0, 4.5]
"""

from __future__ import annotations

from mspwatch.reports.model import RiskComponent

WEIGHTS = {"availability": 30, "backup": 30, "patching": 25, "microsoft365": 15}


def _points(weight: int, share: float | None) -> float:
    if share is None:
        return weight / 2
    return round(weight * min(1.0, max(0.0, share)), 2)


def components(
    budget_used: float,
    backup_success: float | None,
    rpo_compliance: float | None,
    patch_compliance: float | None,
    secure_score: float | None,
    mfa: float | None,
) -> list[RiskComponent]:
    backup = None
    if backup_success is not None and rpo_compliance is not None:
        backup = max(1 - backup_success, 1 - rpo_compliance)
    patch = None if patch_compliance is None else 2 * (1 - patch_compliance)
    m365 = None
    if secure_score is not None and mfa is not None:
        m365 = ((1 - secure_score) + (1 - mfa)) / 2
    return [
        RiskComponent(
            "availability",
            WEIGHTS["availability"],
            _points(30, budget_used),
            f"{budget_used:.0%} of the error budget used",
        ),
        RiskComponent(
            "backup",
            WEIGHTS["backup"],
            _points(30, backup),
            "no backup data" if backup is None else "failed runs / time outside RPO",
        ),
        RiskComponent(
            "patching",
            WEIGHTS["patching"],
            _points(25, patch),
            "no patch data" if patch is None else "non-compliant devices",
        ),
        RiskComponent(
            "microsoft365",
            WEIGHTS["microsoft365"],
            _points(15, m365),
            "no tenant data" if m365 is None else "Secure Score and MFA gaps",
        ),
    ]


def score(parts: list[RiskComponent]) -> int:
    return round(sum(p.points for p in parts))
