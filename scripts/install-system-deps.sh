#!/usr/bin/env bash
# Install the Debian/Ubuntu packages mspwatch's demo and tests run for real.
# Idempotent: only missing packages are installed; uses sudo when not root.
set -euo pipefail
packages=(
  prometheus                    # prometheus + promtool
  prometheus-alertmanager       # alertmanager + amtool
  prometheus-snmp-exporter      # the peer for the differential test and benchmark
  prometheus-blackbox-exporter
  snmp snmpd                    # net-snmp tools and agent (benchmark)
  poppler-utils                 # pdftotext / pdftoppm / pdfdetach for report tests
  libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core  # weasyprint (report PDFs)
  victoria-metrics              # the report's second backend (tests)
  iproute2
  make
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -q
# Packaged services must not start on install; our tests start their own instances.
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
