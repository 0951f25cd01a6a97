# One image for every mspwatch process: the exporters, `mspwatch targets`, `mspwatch report`
# and (target `demo`) the simulators. compose/compose.yaml builds it; run as a non-root user
# with configs and secrets mounted read-only.
#
#   docker build -t mspwatch .                 # exporters, targets, report
#   docker build --target demo -t mspwatch:demo .   # plus snmpsim for the demo profile
FROM python:3.11-slim-bookworm AS runtime

# WeasyPrint (the monthly PDFs) needs Pango and HarfBuzz; DejaVu is the report's font.
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/mspwatch
COPY pyproject.toml README.md ./
COPY mspwatch ./mspwatch
COPY exporters ./exporters
COPY simulators ./simulators
COPY reports ./reports
COPY dashboards ./dashboards
# urllib3-future (grafana-client -> niquests) must not replace urllib3 under msal: see Makefile.
ENV URLLIB3_NO_OVERRIDE=1
RUN pip install --no-cache-dir --no-binary urllib3-future . && rm -rf build

# A fixed uid/gid so mounted secret files can be made readable by this user only.
RUN groupadd --system --gid 10001 mspwatch \
 && useradd --system --uid 10001 --gid mspwatch --home-dir /var/lib/mspwatch --create-home mspwatch \
 && install -d -o 10001 -g 10001 /var/lib/mspwatch/backup-files /var/lib/mspwatch/notifications /var/lib/mspwatch/graph-tls
# ^ the compose demo profile's volumes mount there: an empty named volume takes the owner of
#   its mount point in the image, so uid 10001 can write them.
USER 10001:10001
WORKDIR /var/lib/mspwatch
ENTRYPOINT ["mspwatch"]
CMD ["--help"]

FROM runtime AS demo
USER root
RUN pip install --no-cache-dir --no-binary urllib3-future '/opt/mspwatch[demo]' \
 && python -c "from pathlib import Path; from mspwatch.simulators.snmp import prepare_data_dir; prepare_data_dir(Path('/opt/snmpsim-data'))"
USER 10001:10001
