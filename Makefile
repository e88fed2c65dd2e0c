# The user-facing verbs. Heavy outputs (QEMU, kernel, images) live in
# ~/.cache/vgpu-dev, keyed by what they are built from; scripts/ does the work.

SHELL := /bin/bash
CARGO ?= cargo
SHELL_FILES := scripts/*.sh scripts/lib/*.sh guest-tests/*.sh .ci/run

# Every target that needs host packages depends on `setup` (idempotent:
# scripts/setup-host.sh), which make runs once per invocation; the scripts
# skip their own setup when make has done it.
export VGPU_SETUP_DONE := 1

.PHONY: help run-nested run-l1 test lint test-model test-l1 test-host test-sriov-pf test-sriov test-nested test-migration test-libvirt test-trace bench fuzz fuzz-qemu setup qemu images shell-l1 clean

help:
	@echo "make run-nested  the whole stack: L0 QEMU with vgpu-pci -> L1 host driver + vGPUs -> two L2 guests"
	@echo "                 (MODE=sriov: the vGPUs are VFs, assigned with vfio-pci,host=)"
	@echo "make run-l1 PROG=path [ARGS=...] [KMOD=m.ko] [TRACE=1]"
	@echo "                 your own program (and module) in L1 on the GPU; output shown, dmesg on failure"
	@echo "make test        everything: lint, model tests, the L1, host-driver and nested tiers with snapshots"
	@echo "make test-model  the vdevice model's tests (no QEMU needed)"
	@echo "make test-l1     build QEMU + images, boot L1, run the bare-metal driver test"
	@echo "make test-host   build the host driver, boot L1, run the mdev/VFIO tier"
	@echo "make test-sriov-pf  boot L1 on q35 with an SR-IOV vgpu-pci: the RM as PF driver (VFs, per-VF types)"
	@echo "make test-sriov  L1 with intel-iommu: two VFs through VFIO (IOMMU DMA, refused DMA, FLR), then"
	@echo "                 two L2 guests on VFs (run-nested MODE=sriov), snapshots"
	@echo "make test-nested the whole stack with two L2 guests, with snapshots"
	@echo "make test-migration  live migration of an L2 with a vGPU in L1: ping-pong under a checked"
	@echo "                 workload, failure paths, a snapshot to a file, downtime figures"
	@echo "make test-libvirt  a Debian 12 L1 on a disk: libvirt, mdevctl and Debian's QEMU drive"
	@echo "                 the vGPUs (nodedev, a domain, a reboot), with snapshots"
	@echo "make test-trace  the MMIO tracer: decoded trace of the RM's probe and a vGPU, snapshot"
	@echo "                 (make run-nested TRACE=1 or make shell-l1 TRACE=1 trace any run)"
	@echo "make bench       model benchmarks (copy engine vs memcpy, register dispatch, reset and fence latency under a hog)"
	@echo "make fuzz        cargo fuzz on the model (FUZZ_SECONDS=60)"
	@echo "make fuzz-qemu   QEMU's generic-fuzz on -device vgpu-pci, clang + ASan/UBSan (FUZZ_SECONDS=60;"
	@echo "                 the first run builds QEMU with clang: long; not part of make test)"
	@echo "make setup | qemu | images | shell-l1 | clean"

run-nested: setup
	scripts/run-nested.sh

run-l1: setup
	scripts/run-prog.sh

test: lint test-model test-l1 test-host test-sriov-pf test-sriov test-nested test-migration test-libvirt test-trace

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	shellcheck $(SHELL_FILES)

test-model: setup
	$(CARGO) test --workspace

test-l1: setup
	scripts/test-l1.sh

test-host: setup
	scripts/test-host.sh

test-sriov-pf: setup
	scripts/test-sriov-pf.sh

test-sriov: setup
	scripts/test-sriov.sh

test-nested: setup
	scripts/test-nested.sh

test-migration: setup
	scripts/test-migration.sh

test-libvirt: setup
	scripts/test-libvirt.sh

test-trace: setup
	scripts/test-trace.sh

bench: setup
	$(CARGO) bench -p vdevice --bench model

fuzz: setup
	scripts/fuzz.sh

fuzz-qemu: setup
	scripts/fuzz-qemu.sh

setup:
	scripts/setup-host.sh

qemu: setup
	scripts/build-qemu.sh

images: setup
	scripts/build-images.sh

shell-l1: qemu images
	RUN=shell scripts/run-l1.sh -device vgpu-pci

clean:
	$(CARGO) clean
