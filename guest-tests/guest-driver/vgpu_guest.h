/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vgpu_guest.h - what the reference guest driver's two halves share: the
 * device (engine, interrupts, ioctls: vgpu_guest_drv.c) and its display head
 * under KMS (vgpu_guest_kms.c).
 *
 * Locks: vg->lock (mutex) before vg->irq_lock (spinlock) before
 * drm->event_lock.
 */
#ifndef VGPU_GUEST_H
#define VGPU_GUEST_H

#include <linux/io.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include <drm/drm_connector.h>
#include <drm/drm_crtc.h>
#include <drm/drm_device.h>
#include <drm/drm_encoder.h>
#include <drm/drm_plane.h>

#include "vgpu_regs.h"
#include "vgpu_drm.h"

/*
 * TEMPORARY (issue 14): the display head's registers and the rectangle
 * opcodes (/work/display-contract.md) until host-driver/include/vgpu_regs.h
 * is regenerated with them; then this block goes.
 */
#ifndef VGPU_W_DISP_CTRL
#define VGPU_W_DISP_CTRL			0x200ULL
#define VGPU_W_DISP_CTRL_ENABLE			0x1ULL
#define VGPU_W_DISP_FORMAT			0x204ULL
#define VGPU_W_DISP_MODE			0x208ULL
#define VGPU_W_DISP_MODE_WIDTH			0xffffULL
#define VGPU_W_DISP_MODE_HEIGHT			0xffff0000ULL
#define VGPU_W_DISP_STRIDE			0x20cULL
#define VGPU_W_DISP_BASE			0x210ULL
#define VGPU_W_DISP_COMMIT			0x218ULL
#define VGPU_W_DISP_STATUS			0x21cULL
#define VGPU_W_DISP_STATUS_ACTIVE		0x1ULL
#define VGPU_W_DISP_STATUS_FLIP_PENDING		0x2ULL
#define VGPU_W_DISP_STATUS_CONNECTED		0x4ULL
#define VGPU_W_DISP_VBLANK_COUNT		0x238ULL
#define VGPU_W_DISP_MAX_MODE			0x244ULL
#define VGPU_W_DISP_MAX_MODE_WIDTH		0xffffULL
#define VGPU_W_DISP_MAX_MODE_HEIGHT		0xffff0000ULL
#define VGPU_W_DISP_EDID(n)			(0x300ULL + (n) * 0x4ULL)
#define VGPU_W_INTR_STATUS_VBLANK		0x8ULL
#define VGPU_W_INTR_STATUS_FLIP_DONE		0x10ULL
#define VGPU_W_INTR_STATUS_HOTPLUG		0x20ULL
#define VGPU_W_INTR_MASK_VBLANK			0x8ULL
#define VGPU_W_INTR_MASK_FLIP_DONE		0x10ULL
#define VGPU_W_INTR_MASK_HOTPLUG		0x20ULL
#define VGPU_OP_FILL_RECT			7
#define VGPU_OP_BLIT				8
#endif

#define VGPU_GUEST_RING_ENTRIES	256	/* 16 KiB of commands per ring */
#define VGPU_GUEST_EDID_BYTES	256	/* DISP_EDID */

struct vgpu_guest_ring {
	struct drm_vgpu_cmd *cmds;	/* coherent, RING_ENTRIES long */
	dma_addr_t cmds_dma;
	u32 tail;			/* the last doorbell value */
	u64 submitted;			/* last fence value appended */
	u64 completed;			/* last fence value signalled */
};

/* The head's pending registers as KMS last programmed them. */
struct vgpu_guest_disp {
	u32 ctrl;
	u32 mode;
	u32 stride;
	u64 base;
};

struct vgpu_guest {
	struct drm_device drm;
	struct pci_dev *pdev;
	void __iomem *regs;		/* BAR0, the partition window */
	u64 vram_size;
	u32 partition;
	u32 caps;

	struct mutex lock;		/* rings, reset, display registers */
	struct vgpu_guest_ring ring[DRM_VGPU_RINGS];
	/*
	 * The FENCE each submission ends with writes the ring's fence value
	 * here. The window's FENCE_VALUE is the last fence of any ring, which
	 * cannot say which of ring 0's fences are done while ring 0 waits on
	 * a semaphore and ring 1 runs; reading memory also saves a trapped
	 * register read per interrupt.
	 */
	__le64 *fences;
	dma_addr_t fences_dma;
	void *buf;			/* user space's DMA buffer */
	dma_addr_t buf_dma;
	size_t buf_size;
	struct vgpu_guest_disp disp;	/* under lock */

	spinlock_t irq_lock;		/* what the handlers record, below */
	wait_queue_head_t wait;
	bool gone;			/* removed: ioctls leave the hardware alone */
	bool faulted;
	u32 intr_mask;			/* INTR_MASK as written */
	u32 fault_status;
	u64 fault_addr;
	u64 engine_irqs;
	u64 fault_irqs;
	u64 vblank_irqs;
	u64 flip_irqs;
	u64 hotplug_irqs;
	u32 irq_mode;

	/* KMS: one head, one plane, one connector */
	struct drm_plane plane;
	struct drm_crtc crtc;
	struct drm_encoder encoder;
	struct drm_connector connector;
	struct drm_pending_vblank_event *flip_event;	/* under event_lock */
	struct work_struct hotplug_work;
};

static inline struct vgpu_guest *to_vgpu_guest(struct drm_device *drm)
{
	return container_of(drm, struct vgpu_guest, drm);
}

static inline u32 vgpu_rd32(struct vgpu_guest *vg, u64 off)
{
	return readl(vg->regs + off);
}

static inline u64 vgpu_rd64(struct vgpu_guest *vg, u64 off)
{
	return readq(vg->regs + off);
}

static inline void vgpu_wr32(struct vgpu_guest *vg, u64 off, u32 val)
{
	writel(val, vg->regs + off);
}

static inline void vgpu_wr64(struct vgpu_guest *vg, u64 off, u64 val)
{
	writeq(val, vg->regs + off);
}

/* vgpu_guest_drv.c */
int vgpu_guest_run(struct vgpu_guest *vg, unsigned int ring,
		   const struct drm_vgpu_cmd *cmds, u32 count);
void vgpu_guest_set_intr(struct vgpu_guest *vg, u32 bits, bool on);

/* vgpu_guest_kms.c */
int vgpu_guest_kms_init(struct vgpu_guest *vg);
void vgpu_guest_disp_restore(struct vgpu_guest *vg);
void vgpu_guest_disp_irq(struct vgpu_guest *vg, u32 status);
int vgpu_guest_dumb_create(struct drm_file *file, struct drm_device *drm,
			   struct drm_mode_create_dumb *args);

#endif /* VGPU_GUEST_H */
