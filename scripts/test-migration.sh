#!/usr/bin/env bash
# test-migration.sh - `make test-migration`: live migration of an L2 guest
# with a vGPU, in L1 (scripts/l1-migration.sh): ping-pong between two
# vGPUs of one type while vgpu-l2-work runs, the failure paths, a snapshot
# to a file, and the same L2 without a vGPU for the plain downtime. QEMU's
# default enable-migration=auto: the vGPU's DMA logging makes it
# migratable. Then the figures, as "name value" lines in
# target/migration/figures.txt:
#   mig_downtime_ms        QEMU's downtime of a hop, the median of the hops
#   mig_downtime_vs_plain  that median / the plain L2's median downtime
#   mig_total_s            a hop's total time, the median
#   mig_vgpu_state_bytes   the vGPU's bytes sent in STOP_COPY (the median;
#                          QEMU's vfio_save_block trace), and
#                          mig_vgpu_state_vs_slice that / the VRAM slice;
#                          mig_vgpu_precopy_bytes what pre-copy sent
#   mig_hops               hops done (two per round trip)
# and the insta snapshot of the transcript (VFIO state transitions of a
# hop, the checks).
# Environment: ROUND_TRIPS=N (default 3); the run-l1.sh variables pass
# through (TIMEOUT=SECS for the whole L1 run).
set -euo pipefail
# shellcheck source=scripts/lib/tier.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/tier.sh"

tier_begin migration "vgpu-pci,vram_size=256M,partitions=8"
modules=$(scripts/build-modules.sh)
IMAGES=$(scripts/build-l2-images.sh "$modules" "scripts/l1-migration.sh:/bin/l1-migration.sh")

tier_boot_l1 console.log /bin/l1-migration.sh MEM=2G SMP=1 TIMEOUT="${TIMEOUT:-2400}" \
    APPEND="vgpu.round_trips=${ROUND_TRIPS:-3}"
tier_sections console.log MIG-TRANSCRIPT=transcript.txt
tr -d '\r' <"$OUT/console.log" | grep -E '^(ok|FAIL) |VGPU-MIG ' >"$OUT/checks.txt" || true
cat "$OUT/checks.txt"
tier_check_run "L1 run" console.log

# --- figures ---------------------------------------------------------------------
# median: of the numbers on stdin, one per line.
median() {
    sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "%.10g\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
field() { # KIND KEY: the values of KEY= in "VGPU-MIG KIND ..." lines
    sed -n "s/^VGPU-MIG $1 .*\\b$2=\\([0-9.]*\\).*/\\1/p" "$OUT/checks.txt"
}
down=$(field hop downtime_ms | median)
plain=$(field plain downtime_ms | median)
{
    echo "mig_downtime_ms $down"
    echo "mig_downtime_vs_plain $(awk -v a="$down" -v b="$plain" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }')"
    echo "mig_plain_downtime_ms $plain"
    echo "mig_total_s $(field hop total_ms | median | awk '{ printf "%.2f", $1 / 1000 }')"
    state=$(field hop vgpu_stopcopy_bytes | median)
    slice=$(field hop slice_bytes | median)
    echo "mig_vgpu_state_bytes $state"
    echo "mig_vgpu_state_vs_slice $(awk -v a="$state" -v b="$slice" 'BEGIN { if (b > 0) printf "%.6f", a / b; else print "nan" }')"
    echo "mig_vgpu_precopy_bytes $(field hop vgpu_precopy_bytes | median)"
    echo "mig_hops $(field hop downtime_ms | wc -l)"
    sed -n 's/^VGPU-MIG bench \([a-z_0-9]*\) \(.*\)/\1 \2/p' "$OUT/checks.txt"
} | tee "$OUT/figures.txt"

tier_snapshots vgpu-guest-tests migration_snapshots \
    VGPU_MIG_TRANSCRIPT=transcript.txt VGPU_MIG_CHECKS=checks.txt
