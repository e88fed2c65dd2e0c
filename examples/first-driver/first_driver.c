// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * first_driver.c - the smallest complete driver of vgpu-pci, written from
 * vdevice/SPEC.md section 14 ("Your first driver") and the generated
 * register header alone. It runs in L1 as root, from user space: the BARs
 * are mapped through sysfs, as a bare-metal driver would map them.
 *
 * It brings partition 0 up, runs FILL + FENCE from a ring in VRAM, checks
 * the result through the VRAM BAR, provokes a VRAM_OOB fault, recovers with
 * a partition reset (and programs the ring again: a reset turns rings off),
 * and runs again. Exit status 0 when every step worked.
 *
 * With --forget-ring it makes the newcomer's mistake on purpose: after the
 * reset it rings the doorbell without programming the ring again. The
 * device refuses the doorbell (ACCESS_ERROR_INFO says why, and so does a
 * trace: make run-l1 PROG=first-driver ARGS=--forget-ring TRACE=1) and the
 * fence never arrives; then it fixes the mistake and runs again.
 *
 * Build: gcc -static -O2 -I host-driver/include -o first-driver first_driver.c
 * Run:   make run-l1 PROG=first-driver
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vgpu_regs.h"

#define RING_OFFSET 0x0	     /* ring at the start of the slice */
#define RING_ENTRIES 64
#define FENCE_OFFSET 0x8000  /* where FENCE writes its value */
#define DATA_OFFSET 0x10000  /* what FILL fills */
#define DATA_BYTES 0x10000
#define SLICE_BYTES (16u << 20)

static volatile uint8_t *regs, *vram;
static unsigned int tail;

static uint32_t rd32(uint64_t off) { return *(volatile uint32_t *)(regs + off); }
static uint64_t rd64(uint64_t off) { return *(volatile uint64_t *)(regs + off); }
static void wr32(uint64_t off, uint32_t v) { *(volatile uint32_t *)(regs + off) = v; }
static void wr64(uint64_t off, uint64_t v) { *(volatile uint64_t *)(regs + off) = v; }

/* Partition 0's table entry and window (SPEC 2). */
#define PT(reg) (VGPU_PTABLE_BASE + (reg))
#define W(reg) (VGPU_WINDOW_BASE + (reg))

static int fail(const char *what)
{
	printf("FAIL %s\n", what);
	return 1;
}

static volatile uint8_t *map_bar(const char *dev, int bar, size_t *len)
{
	char path[320];
	int fd;
	void *p;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource%d", dev, bar);
	fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0)
		return NULL;
	*len = (size_t)lseek(fd, 0, SEEK_END);
	p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

/* A hex sysfs attribute of a PCI function (vendor, device), 0 if absent. */
static unsigned int pci_attr(const char *dev, const char *attr)
{
	unsigned int v = 0;
	char path[320];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", dev, attr);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%x", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

/* Step 1: the first function with the GPU's vendor and device ID. */
static int find_gpu(char *name, size_t size)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;

	while (d && (e = readdir(d))) {
		if (pci_attr(e->d_name, "vendor") == VGPU_PCI_VENDOR_ID &&
		    pci_attr(e->d_name, "device") == VGPU_PCI_DEVICE_ID) {
			snprintf(name, size, "%s", e->d_name);
			closedir(d);
			return 0;
		}
	}
	if (d)
		closedir(d);
	return -1;
}

/* Step 7: one 64-byte command at TAIL, through the VRAM BAR. */
static void put_command(uint8_t opcode, uint8_t flags, uint64_t dst,
			uint64_t len, uint64_t value)
{
	uint8_t cmd[VGPU_COMMAND_BYTES] = { 0 };

	cmd[VGPU_CMD_OPCODE_OFFSET] = opcode;
	cmd[VGPU_CMD_FLAGS_OFFSET] = flags;
	memcpy(cmd + VGPU_CMD_DST_OFFSET, &dst, sizeof(dst));
	memcpy(cmd + VGPU_CMD_LEN_OFFSET, &len, sizeof(len));
	memcpy(cmd + VGPU_CMD_VALUE_OFFSET, &value, sizeof(value));
	memcpy((void *)(vram + RING_OFFSET + tail * VGPU_COMMAND_BYTES), cmd, sizeof(cmd));
	tail = (tail + 1) % RING_ENTRIES; /* at most RING_ENTRIES - 1 in flight */
}

static void doorbell(void)
{
	__sync_synchronize(); /* the commands are visible before the doorbell */
	wr32(W(VGPU_W_DOORBELL(0)), tail);
}

/* Step 6: ring 0 in VRAM; also after every partition reset. */
static void program_ring(void)
{
	wr32(W(VGPU_W_RING_CTRL(0)), 0);
	wr64(W(VGPU_W_RING_BASE(0)), RING_OFFSET);
	wr32(W(VGPU_W_RING_SIZE(0)), RING_ENTRIES);
	tail = 0;
}

/* Step 8: poll FENCE_VALUE (never assume the engines were fast). */
static int wait_fence(uint64_t value)
{
	for (int i = 0; i < 20000; i++) {
		if (rd64(W(VGPU_W_FENCE_VALUE)) >= value)
			return 0;
		if ((rd32(W(VGPU_W_STATUS)) & VGPU_W_STATUS_STATE) == VGPU_STATE_FAULTED)
			return -1;
		usleep(100);
	}
	return -1;
}

/* The mistake: a doorbell with the ring off. What the device says. */
static int forget_ring(void)
{
	uint32_t errors = rd32(VGPU_G_ACCESS_ERROR_COUNT), info;

	put_command(VGPU_OP_FENCE, 0, FENCE_OFFSET, 0, 2);
	doorbell();
	info = rd32(VGPU_G_ACCESS_ERROR_INFO);
	if (rd32(VGPU_G_ACCESS_ERROR_COUNT) == errors ||
	    (info & VGPU_G_ACCESS_ERROR_INFO_REASON) >> VGPU_G_ACCESS_ERROR_INFO_REASON_SHIFT !=
	    VGPU_ACCESS_ERROR_BAD_VALUE ||
	    rd64(VGPU_G_ACCESS_ERROR_OFFSET) != W(VGPU_W_DOORBELL(0)))
		return fail("the forgotten ring's doorbell was not refused");
	usleep(100000);
	if (rd64(W(VGPU_W_FENCE_VALUE)) >= 2)
		return fail("a fence arrived from a ring that is off");
	printf("ok   forgotten ring: doorbell refused (BAD_VALUE at 0x%llx), no fence\n",
	       (unsigned long long)rd64(VGPU_G_ACCESS_ERROR_OFFSET));
	return 0;
}

static uint64_t now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000 + (uint64_t)t.tv_nsec / 1000;
}

static int fill_and_check(uint32_t pattern, uint64_t fence)
{
	uint64_t start;

	put_command(VGPU_OP_FILL, 0, DATA_OFFSET, DATA_BYTES, pattern);
	put_command(VGPU_OP_FENCE, 0, FENCE_OFFSET, 0, fence);
	start = now_us();
	doorbell();
	if (wait_fence(fence))
		return fail("fence did not arrive");
	__sync_synchronize(); /* results after the fence */
	for (uint64_t off = 0; off < DATA_BYTES; off += 4)
		if (*(volatile uint32_t *)(vram + DATA_OFFSET + off) != pattern)
			return fail("FILL result read back through the VRAM BAR");
	printf("ok   FILL 0x%08x over %u KiB, fence %llu after %llu us\n", pattern,
	       DATA_BYTES >> 10, (unsigned long long)fence,
	       (unsigned long long)(now_us() - start));
	return 0;
}

int main(int argc, char **argv)
{
	int forget = argc > 1 && !strcmp(argv[1], "--forget-ring");
	char dev[256];
	size_t regs_len, vram_len;
	uint32_t code;

	/* Steps 1-2: find, map, identify. */
	if (find_gpu(dev, sizeof(dev)))
		return fail("no vgpu-pci function");
	regs = map_bar(dev, VGPU_REG_BAR, &regs_len);
	vram = map_bar(dev, VGPU_VRAM_BAR, &vram_len);
	if (!regs || !vram)
		return fail("map BAR0 and BAR2");
	if (rd32(VGPU_G_ID) != VGPU_DEVICE_MAGIC)
		return fail("ID");
	printf("ok   %s: ID 0x%08x, VERSION 0x%08x, %llu MiB VRAM\n", dev,
	       rd32(VGPU_G_ID), rd32(VGPU_G_VERSION),
	       (unsigned long long)(rd64(VGPU_G_VRAM_SIZE) >> 20));
	wr32(VGPU_G_DEVICE_RESET, 1);

	/* Step 4: partition 0 gets the first 16 MiB; VRAM offsets in its
	 * commands are offsets into that slice, which starts at BAR2 + 0.
	 */
	wr64(PT(VGPU_PT_VRAM_BASE), 0);
	wr64(PT(VGPU_PT_VRAM_SIZE), SLICE_BYTES);
	wr32(PT(VGPU_PT_WEIGHT), 1);
	wr32(PT(VGPU_PT_CTRL), VGPU_PT_CTRL_ENABLE);
	if ((rd32(PT(VGPU_PT_STATE)) & VGPU_PT_STATE_STATE) != VGPU_STATE_IDLE)
		return fail("enable partition 0");
	printf("ok   partition 0 enabled: %u MiB slice\n", SLICE_BYTES >> 20);

	/* Steps 6-8. */
	program_ring();
	if (fill_and_check(0x5a5a1234, 1))
		return 1;

	/* Step 9: a FILL beyond the slice faults the partition... */
	put_command(VGPU_OP_FILL, 0, SLICE_BYTES, 4096, 0);
	doorbell();
	for (int i = 0; i < 20000; i++) {
		if ((rd32(W(VGPU_W_STATUS)) & VGPU_W_STATUS_STATE) == VGPU_STATE_FAULTED)
			break;
		usleep(100);
	}
	code = rd32(W(VGPU_W_FAULT_STATUS)) & VGPU_W_FAULT_STATUS_CODE;
	if (code != VGPU_FAULT_VRAM_OOB)
		return fail("VRAM_OOB fault");
	printf("ok   fault VRAM_OOB at 0x%llx\n", (unsigned long long)rd64(W(VGPU_W_FAULT_ADDR)));

	/* ...a partition reset recovers it and turns the rings off... */
	wr32(W(VGPU_W_RESET), 1);
	if ((rd32(W(VGPU_W_STATUS)) & VGPU_W_STATUS_STATE) != VGPU_STATE_IDLE)
		return fail("partition reset");
	if (rd32(W(VGPU_W_RING_SIZE(0))) != 0)
		return fail("ring off after reset");

	/* ...so the driver programs its ring again before the next doorbell. */
	if (forget && forget_ring())
		return 1;
	program_ring();
	if (fill_and_check(0x0badcafe, 1))
		return 1;
	printf("ok   all steps\n");
	return 0;
}
