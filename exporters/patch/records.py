"""Plain per-device records every patch client returns; they know nothing of Prometheus.

A source (one NinjaOne organisation, one Intune tenant) yields a :class:`SourceData`: the
devices with their pending and failed updates, recent install attempts, reboot state and
antivirus state, as the source reports them. Judging them is :mod:`.policy`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from mspwatch.exporters.core.probe import SourceError as CoreSourceError


class Classification(StrEnum):
    """What kind of update; NinjaOne's ``type`` and Intune's classifications map onto it."""

    SECURITY = "security"
    CRITICAL = "critical"
    ROLLUP = "rollup"
    DEFINITION = "definition"
    FEATURE = "feature"
    DRIVER = "driver"
    REGULAR = "regular"
    OTHER = "other"  # a value the source documents no meaning for, or an unknown one


# Classifications held to the security deadline (``security_days``). A monthly rollup carries
# that month's security fixes; antivirus definition updates are judged by the AV checks.
SECURITY_CLASSES = frozenset({Classification.SECURITY, Classification.CRITICAL, Classification.ROLLUP})
JUDGED_CLASSES = frozenset(Classification) - {Classification.DEFINITION}


class Severity(StrEnum):
    CRITICAL = "critical"
    IMPORTANT = "important"
    MODERATE = "moderate"
    LOW = "low"
    OPTIONAL = "optional"
    UNKNOWN = "unknown"  # none given, or a value we do not know


class OsFamily(StrEnum):
    WINDOWS = "windows"
    MAC = "mac"
    LINUX = "linux"
    OTHER = "other"


class Role(StrEnum):
    SERVER = "server"
    WORKSTATION = "workstation"
    OTHER = "other"


class SourceReason(StrEnum):
    """Why a source could not be read (``patch_scrape_error{reason}``): the shared HTTP
    client's failures (:class:`mspwatch.exporters.core.http.Failure`) plus ``not_found``."""

    UNREACHABLE = "unreachable"  # connection refused, no route, name does not resolve
    TIMEOUT = "timeout"  # one request got no answer within request_timeout
    DEADLINE = "deadline"  # the scrape deadline was reached first
    TLS = "tls"  # TLS handshake or certificate verification failed
    THROTTLED = "throttled"  # 429 whose Retry-After lies beyond the deadline
    UNAVAILABLE = "unavailable"  # 5xx after the retries
    AUTH = "auth"  # the token endpoint or the API refused the credentials
    FORBIDDEN = "forbidden"  # the app lacks a permission or scope
    PROTOCOL = "protocol"  # another unexpected HTTP status
    MALFORMED = "malformed"  # the answer was not the documented JSON
    NOT_FOUND = "not_found"  # the configured organisation does not exist in the RMM
    INTERNAL = "internal"  # the scrape crashed (a bug): see the exporter's log


class SourceError(CoreSourceError):
    """A source could not be read; ``detail`` is for logs and never holds credentials."""

    def __init__(self, reason: SourceReason, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason: SourceReason = reason


@dataclass(frozen=True)
class Update:
    """One update a device lacks (pending) or failed to install (failed)."""

    classification: Classification
    severity: Severity
    failed: bool  # the last install attempt failed
    # When the source first listed it for this device (NinjaOne's row ``timestamp``); the
    # policy anchors the deadline on the Patch Tuesday at or before it.
    detected: float | None


@dataclass(frozen=True)
class InstallAttempt:
    classification: Classification
    at: float  # Unix seconds
    ok: bool


@dataclass(frozen=True)
class Antivirus:
    enabled: bool | None  # product on / malware protection enabled
    realtime: bool | None  # real-time protection on (None: the source does not say)
    signatures_current: bool | None  # False: the source calls the definitions out of date
    # When definitions were last updated. Neither source read today reports it (NinjaOne's
    # antivirus-status and Graph's windowsProtectionState carry a flag, not a date), so the
    # signature age limit applies to a source that does; av_outdated follows the flag.
    signature_time: float | None = None
    last_scan: float | None = None  # newest antivirus scan, quick or full (Defender)


@dataclass(frozen=True)
class DeviceRecord:
    id: str
    name: str
    os_family: OsFamily
    role: Role
    os_name: str  # "Windows Server 2022 Standard"; "" when unknown
    os_version: str  # "10.0.20348.2966"; "" when unknown
    last_contact: float | None
    last_scan: float | None = None  # last time updates were checked (None: not reported)
    # The source looked for update scans back to this time and found none for the device
    # (NinjaOne's activity log): not scanned since at least then.
    no_scan_since: float | None = None
    last_boot: float | None = None
    reboot_pending: bool = False
    reboot_pending_since: float | None = None
    updates: tuple[Update, ...] = ()
    installs: tuple[InstallAttempt, ...] = ()  # within the install lookback
    antivirus: Antivirus | None = None  # None: the source reports no AV for this device


@dataclass
class SourceData:
    """Everything one scrape of one source found."""

    devices: list[DeviceRecord] = field(default_factory=list)
    # Intune: the hand-kept quality-update table it judged against, build -> the release
    # (Unix seconds) of its newest listed cumulative update; None for other sources.
    update_table: dict[str, float] | None = None
