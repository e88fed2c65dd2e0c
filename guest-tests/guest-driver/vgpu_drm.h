/* SPDX-License-Identifier: GPL-2.0-or-later WITH Linux-syscall-note */
/*
 * vgpu_drm.h - the driver ioctls of the reference vGPU guest driver
 * (vgpu_guest.ko, DRM driver "vgpu"), on its DRM primary and render nodes.
 * guest-tests/src/uapi.rs mirrors it, and its test compiles this header to
 * check that they agree.
 *
 * Commands are the 64-byte commands of vdevice/SPEC.md section 6, passed to
 * the hardware unchecked: the device validates them and faults the
 * partition on a bad one, which is what the tests want to see. System-memory
 * addresses in commands are this guest's bus addresses (buf_bus_addr for
 * the DMA buffer, which mmap at offset DRM_VGPU_BUF_MMAP_OFFSET of the DRM
 * file maps). Because commands carry raw bus addresses, every ioctl here and
 * that mmap are for CAP_SYS_ADMIN only, on either node.
 */
#ifndef VGPU_DRM_H
#define VGPU_DRM_H

#include <drm/drm.h>

#define DRM_VGPU_RINGS		2	/* ring 0 and 1 run concurrently */
#define DRM_VGPU_MAX_SUBMIT	64	/* commands per SUBMIT */
#define DRM_VGPU_MAX_WAIT_MS	60000
/* The DMA buffer's mmap offset; GEM objects' offsets lie far above it. */
#define DRM_VGPU_BUF_MMAP_OFFSET 0

/* One command, SPEC.md section 6 (little endian). */
struct drm_vgpu_cmd {
	__u8 opcode;		/* VGPU_OP_* */
	__u8 flags;		/* VGPU_CMD_* */
	__u8 reserved0[6];
	__le64 dst;
	__le64 src;
	__le64 len;
	__le64 value;
	/* FILL_RECT and BLIT (VRAM only, len 0): the rectangle */
	__le32 width;		/* bytes per row, a multiple of 4 */
	__le32 height;		/* rows */
	__le32 dst_pitch;	/* bytes between rows */
	__le32 src_pitch;	/* BLIT */
	__le64 reserved1;
};

/* irq_mode */
#define DRM_VGPU_IRQ_INTX	0
#define DRM_VGPU_IRQ_MSI	1
#define DRM_VGPU_IRQ_MSIX	2	/* vector 0 engine and display, vector 1 fault */

struct drm_vgpu_info {
	__u64 vram_size;	/* the partition's VRAM (window VRAM_SIZE) */
	__u64 vram_bus_addr;	/* BAR2 */
	__u64 buf_size;		/* the DMA buffer */
	__u64 buf_bus_addr;	/* its bus address for *_SYSMEM addresses */
	__u64 engine_irqs;	/* interrupts handled for fences */
	__u64 fault_irqs;	/* interrupts handled for faults */
	__u64 vblank_irqs;	/* display interrupts: VBLANK, */
	__u64 flip_irqs;	/* FLIP_DONE */
	__u64 hotplug_irqs;	/* and HOTPLUG */
	__u32 partition;	/* window INDEX */
	__u32 irq_mode;		/* DRM_VGPU_IRQ_* */
	__u32 ring_entries;	/* per ring */
	__u32 caps;		/* window CAPS */
};

/*
 * Copy count commands into ring `ring`, append a FENCE with INTR, ring the
 * doorbell. fence (out) is the value that FENCE signals; fences of a ring
 * count up from 1 (the driver's own work, e.g. clearing new dumb buffers
 * with FILL_RECT, takes fences too). -EIO while the partition is faulted
 * (RESET first).
 */
struct drm_vgpu_submit {
	__u64 cmds;		/* user pointer to count struct drm_vgpu_cmd */
	__u32 count;		/* 1 .. DRM_VGPU_MAX_SUBMIT */
	__u32 ring;		/* 0 .. DRM_VGPU_RINGS - 1 */
	__u64 fence;		/* out */
};

/*
 * Wait until ring `ring` has signalled `fence`: 0; -ETIMEDOUT; -EIO if the
 * partition faulted first, with FAULT_STATUS and FAULT_ADDR filled in.
 */
struct drm_vgpu_wait {
	__u64 fence;
	__u32 ring;
	__u32 timeout_ms;	/* up to DRM_VGPU_MAX_WAIT_MS */
	__u32 fault_status;	/* out, with -EIO */
	__u32 reserved;		/* 0 */
	__u64 fault_addr;	/* out, with -EIO */
};

/*
 * Pin a GEM object (a dumb buffer) in VRAM and get its offset there, for
 * the VRAM addresses of commands (FILL_RECT, BLIT: user space drawing with
 * the engine); or unpin it. A file pins an object once (pinning it again
 * returns the offset again); closing the file drops its pins.
 */
struct drm_vgpu_gem_vram {
	__u32 handle;
	__u32 flags;		/* DRM_VGPU_GEM_VRAM_PIN, or 0: unpin */
	__u64 offset;		/* out, with PIN: offset in the partition's VRAM */
};

#define DRM_VGPU_GEM_VRAM_PIN	1

#define DRM_VGPU_INFO		0x00
#define DRM_VGPU_SUBMIT		0x01
#define DRM_VGPU_WAIT_FENCE	0x02
/*
 * Partition reset through the window's RESET, then both rings re-initialised
 * and the display head programmed again as KMS last set it. Submitted work
 * is abandoned: every fence handed out so far counts as signalled.
 */
#define DRM_VGPU_RESET		0x03
#define DRM_VGPU_GEM_VRAM	0x04

#define DRM_IOCTL_VGPU_INFO \
	DRM_IOR(DRM_COMMAND_BASE + DRM_VGPU_INFO, struct drm_vgpu_info)
#define DRM_IOCTL_VGPU_SUBMIT \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_VGPU_SUBMIT, struct drm_vgpu_submit)
#define DRM_IOCTL_VGPU_WAIT_FENCE \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_VGPU_WAIT_FENCE, struct drm_vgpu_wait)
#define DRM_IOCTL_VGPU_RESET \
	DRM_IO(DRM_COMMAND_BASE + DRM_VGPU_RESET)
#define DRM_IOCTL_VGPU_GEM_VRAM \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_VGPU_GEM_VRAM, struct drm_vgpu_gem_vram)

#endif /* VGPU_DRM_H */
