"""Mapping: backup records -> metric families. Pure: no I/O, the clock is an argument.

For one job (abridged)::

    backup_job_last_result{job_name="SQL nightly",result="failed"} 1
    backup_job_last_result{job_name="SQL nightly",result="success"} 0
    backup_job_last_success_timestamp_seconds{job_name="SQL nightly"} 1.7684e+09
    backup_job_last_restore_point_timestamp_seconds{job_name="SQL nightly"} 1.7684e+09
    backup_job_rpo_seconds{job_name="SQL nightly"} 14400
    backup_job_within_rpo{job_name="SQL nightly"} 0

RPO is judged from the last restore point (a run that ended in success or warning), not
from the last success: a Veeam run that warns still writes a restore point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from mspwatch.inventory import RpoConfig

from .records import RESULTS, JobRecord, RequestStats, RestoreTest, SourceData


@dataclass
class SourceScrape:
    """One scrape of one source, as the scrape saw it."""

    data: SourceData | None  # None when the source could not be read
    now: float
    rpo: RpoConfig
    stats: RequestStats = field(default_factory=RequestStats)
    api_errors: Mapping[str, int] | None = None  # None: the source has no API
    logged_tests: Sequence[RestoreTest] = ()


def _g(name: str, doc: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


def _unique_jobs(jobs: Sequence[JobRecord]) -> list[JobRecord]:
    seen: set[str] = set()
    out = []
    for job in jobs:
        if job.name not in seen:
            seen.add(job.name)
            out.append(job)
    return sorted(out, key=lambda j: j.name)


def newest_tests(*groups: Sequence[RestoreTest]) -> dict[str, RestoreTest]:
    """The newest restore test per job name across SureBackup and the log."""
    out: dict[str, RestoreTest] = {}
    for group in groups:
        for test in group:
            if test.job_name not in out or test.timestamp > out[test.job_name].timestamp:
                out[test.job_name] = test
    return out


def map_source(s: SourceScrape) -> list[Metric]:
    """Every family of one scrape, in a fixed order; a failed source yields only health.

    (``backup_up``, ``backup_scrape_error`` and the duration are the probe core's.)
    """
    families: list[Metric] = []
    req = _g(
        "backup_scrape_requests",
        "API requests (or commands) this scrape sent to the source, retries included.",
    )
    req.add_metric([], float(s.stats.requests))
    families.append(req)
    retries = _g(
        "backup_scrape_retries",
        "Requests repeated in this scrape after a 401 (token renewal), 429 or 5xx.",
    )
    retries.add_metric([], float(s.stats.retries))
    families.append(retries)
    if s.api_errors is not None:
        errors = CounterMetricFamily(
            "backup_api_errors",
            "HTTP error answers from the source's API since the exporter started, by status.",
            labels=["status"],
        )
        for status, count in s.api_errors.items():
            errors.add_metric([status], float(count))
        families.append(errors)
    if s.data is None:
        return families
    families += _job_families(s.data, s.rpo, s.now)
    families += _test_families(s.data, s.logged_tests)
    families += _repository_families(s.data)
    if s.data.file_errors is not None:
        files = _g(
            "backup_drop_file_malformed_records",
            "Malformed records in a drop-folder file, skipped (the log names the line).",
            ["file"],
        )
        for name in sorted(s.data.file_errors):
            files.add_metric([name], float(s.data.file_errors[name]))
        families.append(files)
    return families


def _job_families(data: SourceData, rpo: RpoConfig, now: float) -> list[Metric]:
    jobs = _unique_jobs(data.jobs)
    count = _g("backup_jobs", "Backup jobs (policies, snapshot groups) the source reports.")
    count.add_metric([], float(len(jobs)))
    info = _g(
        "backup_job_info",
        "Job metadata, value 1 (Veeam jobs/states: type, workload, repositoryName).",
        ["job_name", "job_type", "workload", "repository"],
    )
    result = _g(
        "backup_job_last_result",
        "1 for the result of the job's last finished run, 0 for the others "
        "(Veeam: newest session result, else jobs/states lastResult; none = never ran).",
        ["job_name", "result"],
    )
    L = ["job_name"]
    last_run = _g(
        "backup_job_last_run_timestamp_seconds",
        "Start of the job's last run, Unix seconds (Veeam lastRun); 0 if it never ran.",
        L,
    )
    last_success = _g(
        "backup_job_last_success_timestamp_seconds",
        "Start of the job's last successful run (result Success), Unix seconds; 0 if none known.",
        L,
    )
    last_restore_point = _g(
        "backup_job_last_restore_point_timestamp_seconds",
        "Start of the job's last run that left a restore point (result Success or Warning; "
        "every restic snapshot), Unix seconds; 0 if none known.",
        L,
    )
    next_run = _g(
        "backup_job_next_run_timestamp_seconds",
        "Next scheduled run, Unix seconds (Veeam nextRun); 0 if not scheduled.",
        L,
    )
    running = _g("backup_job_running", "1 while the job runs (status running or an open session).", L)
    enabled = _g("backup_job_enabled", "0 if the job is disabled (Veeam status disabled), else 1.", L)
    duration = _g(
        "backup_job_last_duration_seconds",
        "Duration of the job's last finished run (session endTime - creationTime).",
        L,
    )
    transferred = _g(
        "backup_job_last_transferred_bytes",
        "Bytes transferred by the job's last finished run (Veeam taskSessions "
        "progress.transferredSize, restic summary.data_added).",
        L,
    )
    objects = _g(
        "backup_job_protected_objects",
        "Objects (VMs, agents, paths) the job protects (Veeam objectsCount).",
        L,
    )
    rpo_s = _g(
        "backup_job_rpo_seconds",
        "Recovery point objective configured for the job in the inventory.",
        L,
    )
    within = _g(
        "backup_job_within_rpo",
        "1 if the last restore point (success or warning run) started at most the RPO before "
        "the scrape, else 0.",
        L,
    )
    for job in jobs:
        n = [job.name]
        info.add_metric([job.name, job.type, job.workload, job.repository], 1.0)
        for r in RESULTS:
            result.add_metric([job.name, r], 1.0 if r == job.last_result else 0.0)
        last_run.add_metric(n, job.last_run or 0.0)
        last_success.add_metric(n, job.last_success or 0.0)
        restore_point = _restore_point(job)
        last_restore_point.add_metric(n, restore_point or 0.0)
        next_run.add_metric(n, job.next_run or 0.0)
        running.add_metric(n, 1.0 if job.running else 0.0)
        enabled.add_metric(n, 1.0 if job.enabled else 0.0)
        if job.last_duration is not None:
            duration.add_metric(n, job.last_duration)
        if job.transferred_bytes is not None:
            transferred.add_metric(n, job.transferred_bytes)
        if job.protected_objects is not None:
            objects.add_metric(n, float(job.protected_objects))
        job_rpo = rpo.for_job(job.name)
        rpo_s.add_metric(n, job_rpo)
        ok = restore_point is not None and now - restore_point <= job_rpo
        within.add_metric(n, 1.0 if ok else 0.0)
    return [
        count,
        info,
        result,
        last_run,
        last_success,
        last_restore_point,
        next_run,
        running,
        enabled,
        duration,
        transferred,
        objects,
        rpo_s,
        within,
    ]


def _restore_point(job: JobRecord) -> float | None:
    """The newest restore point; a success is one even if a client did not say so."""
    known = [t for t in (job.last_restore_point, job.last_success) if t is not None]
    return max(known) if known else None


def _test_families(data: SourceData, logged: Sequence[RestoreTest]) -> list[Metric]:
    tests = newest_tests(data.restore_tests, logged)
    # Every job gets a series (0 / none: never tested), then tests of other names
    # (a SureBackup job covering several backup jobs is named for itself).
    names = sorted({j.name for j in data.jobs} | set(tests))
    when = _g(
        "backup_restore_test_last_timestamp_seconds",
        "Time of the last restore test (SureBackup session endTime or the restore-test log), "
        "Unix seconds; 0 if never tested.",
        ["job_name"],
    )
    result = _g(
        "backup_restore_test_last_result",
        "1 for the result of the last restore test, 0 for the others; none = never tested.",
        ["job_name", "result"],
    )
    for name in names:
        test = tests.get(name)
        when.add_metric([name], test.timestamp if test else 0.0)
        state = test.result if test else "none"
        for r in RESULTS:
            result.add_metric([name, r], 1.0 if r == state else 0.0)
    return [when, result]


def _repository_families(data: SourceData) -> list[Metric]:
    out: list[Metric] = []
    if data.repositories:
        capacity = _g(
            "backup_repository_capacity_bytes",
            "Repository capacity (Veeam repositories/states capacityGB, as GiB).",
            ["repository"],
        )
        free = _g(
            "backup_repository_free_bytes",
            "Repository free space (Veeam repositories/states freeGB, as GiB).",
            ["repository"],
        )
        seen: set[str] = set()
        for repo in sorted(data.repositories, key=lambda r: r.name):
            if repo.name in seen:
                continue
            seen.add(repo.name)
            if repo.capacity_bytes is not None:
                capacity.add_metric([repo.name], repo.capacity_bytes)
            if repo.free_bytes is not None:
                free.add_metric([repo.name], repo.free_bytes)
        out += [capacity, free]
    if data.checks:
        when = _g(
            "backup_repository_check_last_timestamp_seconds",
            "When the last `restic check` result was written (its file's mtime).",
            ["repository"],
        )
        ok = _g(
            "backup_repository_check_success",
            "1 if the last `restic check` found no errors, else 0.",
            ["repository"],
        )
        for name in sorted(data.checks):
            ts, passed = data.checks[name]
            when.add_metric([name], ts)
            ok.add_metric([name], 1.0 if passed else 0.0)
        out += [when, ok]
    return out
