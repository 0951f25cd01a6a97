"""``python -m mspwatch.simulators.history --days 35 --out DIR [--backfill DATA_DIR]``

Writes the demo estate's past as OpenMetrics day files into DIR and, with ``--backfill``,
turns them into TSDB blocks inside a Prometheus data dir, then evaluates the recording rules
of alertrules/availability.yml over that past into more blocks (start Prometheus on it
afterwards with a retention longer than ``--days``)::

    $ python -m mspwatch.simulators.history --days 35 --out /tmp/h --backfill /tmp/prom-data
    wrote 36 day files (1,934,560 samples) in 6.1 s; 72 blocks in /tmp/prom-data in 21.0 s; \
    rules: 72 blocks in 30.2 s
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mspwatch.simulators.history.demo import ESTATE, estate_history, load_estate
from mspwatch.simulators.history.write import AVAILABILITY_RULES, backfill, backfill_rules, write_openmetrics

# Backfilled samples must stay out of the head block's range: the newest 3 hours are left
# to live scraping (REFERENCE section 8).
HEAD_MARGIN = 3 * 3600


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m mspwatch.simulators.history", description=__doc__.split("\n")[0]
    )
    p.add_argument("--days", type=int, default=35)
    p.add_argument("--end", default="now", help="Unix seconds or 'now' (default); the last 3 h are left out")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--inventory", type=Path, default=ESTATE)
    p.add_argument("--out", type=Path, required=True, help="directory for the OpenMetrics day files")
    p.add_argument("--backfill", type=Path, metavar="DATA_DIR", help="Prometheus --storage.tsdb.path to fill")
    p.add_argument(
        "--rules",
        type=Path,
        action="append",
        help="recording rules to backfill after the samples (repeatable; default: availability.yml)",
    )
    p.add_argument("--no-rules", action="store_true", help="backfill the samples only")
    args = p.parse_args(argv)
    end = int(time.time()) if args.end == "now" else int(args.end)
    t0 = time.monotonic()
    history = estate_history(load_estate(args.inventory), end - HEAD_MARGIN, args.days, args.seed)
    files = write_openmetrics(history, args.out)
    samples = sum(sum(1 for line in f.open() if not line.startswith("#")) for f in files)
    msg = f"wrote {len(files)} day files ({samples:,} samples) in {time.monotonic() - t0:.1f} s"
    if args.backfill:
        t1 = time.monotonic()
        blocks = backfill(files, args.backfill)
        msg += f"; {blocks} blocks in {args.backfill} in {time.monotonic() - t1:.1f} s"
        if not args.no_rules:
            t2 = time.monotonic()
            rules = backfill_rules(
                args.backfill, history.start, history.end, args.rules or [AVAILABILITY_RULES]
            )
            msg += f"; rules: {rules} blocks in {time.monotonic() - t2:.1f} s"
    print(msg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
