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

	/* KMS: one head, one plane, one connector (when the window has a head) */
	bool has_display;
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
