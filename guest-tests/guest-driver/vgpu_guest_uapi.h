/* SPDX-License-Identifier: GPL-2.0-or-later WITH Linux-syscall-note */
/*
 * vgpu_guest_uapi.h - the /dev/vgpuN interface of the reference vGPU guest
 * driver (vgpu_guest.ko). guest-tests/src/uapi.rs mirrors it, and its test
 * compiles this header to check that they agree.
 *
 * Commands are the 64-byte commands of vdevice/SPEC.md section 6, passed to
 * the hardware unchecked: the device validates them and faults the
 * partition on a bad one, which is what the tests want to see. System-memory
 * addresses in commands are this guest's bus addresses (buf_bus_addr for
 * the buffer mmap'ed at offset 0). /dev/vgpuN is root-only.
 */
#ifndef VGPU_GUEST_UAPI_H
#define VGPU_GUEST_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define VGPU_GUEST_RINGS	2	/* ring 0 and 1 run concurrently */
#define VGPU_GUEST_MAX_SUBMIT	64	/* commands per SUBMIT */
#define VGPU_GUEST_MAX_WAIT_MS	60000

/* One command, SPEC.md section 6 (little endian). */
struct vgpu_guest_cmd {
	__u8 opcode;		/* VGPU_OP_* */
	__u8 flags;		/* VGPU_CMD_* */
	__u8 reserved0[6];
	__le64 dst;
	__le64 src;
	__le64 len;
	__le64 value;
	__le64 reserved1[3];
};

/* irq_mode */
#define VGPU_GUEST_IRQ_INTX	0
#define VGPU_GUEST_IRQ_MSI	1
#define VGPU_GUEST_IRQ_MSIX	2	/* vector 0 engine, vector 1 fault */

struct vgpu_guest_info {
	__u64 vram_size;	/* the partition's VRAM (window VRAM_SIZE) */
	__u64 vram_bus_addr;	/* BAR2 */
	__u64 buf_size;		/* the DMA buffer, mmap offset 0 */
	__u64 buf_bus_addr;	/* its bus address for *_SYSMEM addresses */
	__u64 engine_irqs;	/* interrupts handled for fences */
	__u64 fault_irqs;	/* interrupts handled for faults */
	__u32 partition;	/* window INDEX */
	__u32 irq_mode;		/* VGPU_GUEST_IRQ_* */
	__u32 ring_entries;	/* per ring */
	__u32 caps;		/* window CAPS */
};

/*
 * Copy count commands into ring `ring`, append a FENCE with INTR, ring the
 * doorbell. fence (out) is the value that FENCE signals; fences of a ring
 * count up from 1. -EIO while the partition is faulted (RESET first).
 */
struct vgpu_guest_submit {
	__u64 cmds;		/* user pointer to count struct vgpu_guest_cmd */
	__u32 count;		/* 1 .. VGPU_GUEST_MAX_SUBMIT */
	__u32 ring;		/* 0 .. VGPU_GUEST_RINGS - 1 */
	__u64 fence;		/* out */
};

/*
 * Wait until ring `ring` has signalled `fence`: 0; -ETIMEDOUT; -EIO if the
 * partition faulted first, with FAULT_STATUS and FAULT_ADDR filled in.
 */
struct vgpu_guest_wait {
	__u64 fence;
	__u32 ring;
	__u32 timeout_ms;	/* up to VGPU_GUEST_MAX_WAIT_MS */
	__u32 fault_status;	/* out, with -EIO */
	__u32 reserved;		/* 0 */
	__u64 fault_addr;	/* out, with -EIO */
};

#define VGPU_GUEST_IOC_MAGIC	'V'
#define VGPU_GUEST_IOC_INFO	_IOR(VGPU_GUEST_IOC_MAGIC, 0x40, struct vgpu_guest_info)
#define VGPU_GUEST_IOC_SUBMIT	_IOWR(VGPU_GUEST_IOC_MAGIC, 0x41, struct vgpu_guest_submit)
#define VGPU_GUEST_IOC_WAIT_FENCE _IOWR(VGPU_GUEST_IOC_MAGIC, 0x42, struct vgpu_guest_wait)
/*
 * Partition reset through the window's RESET, then both rings re-initialised.
 * Submitted work is abandoned: every fence handed out so far counts as
 * signalled.
 */
#define VGPU_GUEST_IOC_RESET	_IO(VGPU_GUEST_IOC_MAGIC, 0x43)

#endif /* VGPU_GUEST_UAPI_H */
