"""The customer inventory, the bottom layer every exporter, report and generator reads.

It imports only ``mspwatch.common``. Modules by area: ``devices`` (sites, devices),
``backup``, ``m365``, ``patch``, ``contract`` (SLA), ``maintenance`` (windows),
``model`` (customers, the inventory), ``load``, ``file_sd`` (Prometheus target files).
"""

from __future__ import annotations

from .backup import BackupSource, FolderSource, ResticSource, RpoConfig, RpoRule, VeeamSource, resolve
from .contract import BusinessHours, Contract
from .devices import Device, Role, Site
from .file_sd import TARGET_FILES, TargetGroup, render_targets, write_targets
from .load import load_inventory
from .m365 import SIGNALS, M365Tenant, Signal
from .maintenance import MaintenanceWindow, OnceTimes, WeeklyTimes, is_in_maintenance, maintenance_spans
from .model import Alerting, Customer, Inventory
from .names import Slug, SourceName
from .patch import IntuneSource, NinjaOneSource, PatchPolicy, PatchSource

__all__ = [
    "SIGNALS",
    "TARGET_FILES",
    "Alerting",
    "BackupSource",
    "BusinessHours",
    "Contract",
    "Customer",
    "Device",
    "FolderSource",
    "IntuneSource",
    "Inventory",
    "M365Tenant",
    "MaintenanceWindow",
    "NinjaOneSource",
    "OnceTimes",
    "PatchPolicy",
    "PatchSource",
    "ResticSource",
    "Role",
    "RpoConfig",
    "RpoRule",
    "Signal",
    "Site",
    "Slug",
    "SourceName",
    "TargetGroup",
    "VeeamSource",
    "WeeklyTimes",
    "is_in_maintenance",
    "load_inventory",
    "maintenance_spans",
    "render_targets",
    "resolve",
    "write_targets",
]
