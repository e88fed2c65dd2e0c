/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vgpu_vfio.h - private state of the mdev/VFIO frontend (vgpu_vfio.ko),
 * shared by its config-space, region and interrupt files.
 */
#ifndef VGPU_VFIO_H
#define VGPU_VFIO_H

#include <linux/mdev.h>
#include <linux/mutex.h>
#include <linux/pci_regs.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/vfio.h>
#include <linux/xarray.h>

#include "vgpu_display.h"
#include "vgpu_mig.h"
#include "vgpu_ops.h"

/* VFIO region offsets: the region index in the top bits, as vfio-pci does. */
#define VGPU_VFIO_OFFSET_SHIFT	40
#define VGPU_VFIO_OFFSET_MASK	((1ULL << VGPU_VFIO_OFFSET_SHIFT) - 1)
#define VGPU_VFIO_INDEX_TO_OFFSET(index) \
	((u64)(index) << VGPU_VFIO_OFFSET_SHIFT)

#define VGPU_VFIO_NUM_BARS	(PCI_STD_NUM_BARS)
/* the display engine's regions follow vfio-pci's, in its order */
#define VGPU_VFIO_DISPLAY_REGION(which)	(VFIO_PCI_NUM_REGIONS + (which))
#define VGPU_VFIO_CONFIG_SIZE	256
#define VGPU_VFIO_MSIX_BAR_SIZE	4096
#define VGPU_VFIO_MSIX_PBA	0x800
#define VGPU_VFIO_MAX_AREAS	4
#define VGPU_VFIO_IRQ_NONE	(-1)

/* One vGPU type of a GPU; the mdev core knows it by the embedded type. */
struct vgpu_vfio_type {
	struct mdev_type type;
	struct vgpu_vfio_gpu *gpu;
	unsigned int index;
	char sysfs_name[VGPU_TYPE_NAME_LEN];
	char pretty_name[VGPU_TYPE_DESC_LEN];
};

/* One physical GPU the backend handed us: an mdev parent. */
struct vgpu_vfio_gpu {
	struct mdev_parent parent;
	struct vgpu_rm_gpu *rm_gpu;
	struct device *dev;
	struct list_head node;
	unsigned int nr_types;
	struct vgpu_vfio_type *types;
	struct mdev_type **type_ptrs;
	/*
	 * Under lock: the vGPUs (mdevs) of this GPU, and whether its type
	 * list is being changed (the parent is registered again for that,
	 * which the mdev core allows only without mdevs) or could not be
	 * registered again.
	 */
	struct mutex lock;
	unsigned int nr_vgpus;
	bool retyping;
	bool registered;
};

/* A BAR as the VFIO user sees it. */
struct vgpu_vfio_bar {
	struct vgpu_bar_info info;	/* from the backend; size is the real size */
	u64 region_size;		/* power of two >= info.size, 0: no BAR */
	int nr_areas;			/* mmap-able areas, 0: no mmap */
	struct vgpu_sparse_area areas[VGPU_VFIO_MAX_AREAS];
};

/* One vGPU: the VFIO device of an mdev. */
struct vgpu_vfio_state {
	struct vfio_device vdev;
	struct mdev_device *mdev;
	struct vgpu_vfio_type *type;
	struct vgpu_rm_vgpu *vgpu;

	/* serialises open/close, config space and irq setup */
	struct mutex lock;
	/* readers: pin/unpin callbacks; writer: flips @open */
	struct rw_semaphore pin_sem;
	bool open;
	/* pins the backend holds, by IOVA page: a count per page */
	struct mutex pin_lock;
	struct xarray pins;
	/*
	 * IOVA pages [unmap_first, unmap_last] being unmapped (one unmap at a
	 * time, under unmap_lock): no new pins there
	 */
	struct mutex unmap_lock;
	bool unmapping;
	unsigned long unmap_first, unmap_last;

	struct vgpu_vfio_bar bars[VGPU_VFIO_NUM_BARS];

	u8 config[VGPU_VFIO_CONFIG_SIZE];
	u8 config_wmask[VGPU_VFIO_CONFIG_SIZE];

	/* interrupt state; irq_lock is taken from hard-irq context */
	spinlock_t irq_lock;
	int irq_type;			/* VFIO_PCI_*_IRQ_INDEX or NONE */
	struct eventfd_ctx *msix_trigger[VGPU_VGPU_VECTORS];
	struct eventfd_ctx *msi_trigger;
	struct eventfd_ctx *intx_trigger;
	struct eventfd_ctx *req_trigger;
	bool intx_masked;
	bool intx_pending;
	struct virqfd *intx_unmask;

	/* migration and DMA logging (the shared engine, vgpu_mig.c) */
	struct vgpu_mig mig;
	/* the display head: plane, display and EDID regions (vgpu_display.c) */
	struct vgpu_display display;
};

extern struct vgpu_rm_ops vgpu_vfio_rm;

static inline struct vgpu_vfio_state *
vgpu_vfio_state_of(struct vfio_device *vdev)
{
	return container_of(vdev, struct vgpu_vfio_state, vdev);
}

/* vgpu_vfio_config.c */
void vgpu_vfio_config_init(struct vgpu_vfio_state *s);
void vgpu_vfio_config_read(struct vgpu_vfio_state *s, unsigned int offset,
			   u8 *buf, unsigned int count);
void vgpu_vfio_config_write(struct vgpu_vfio_state *s, unsigned int offset,
			    const u8 *buf, unsigned int count);

/* vgpu_vfio_region.c */
int vgpu_vfio_bars_init(struct vgpu_vfio_state *s);
long vgpu_vfio_ioctl_region_info(struct vgpu_vfio_state *s,
				 void __user *arg);
ssize_t vgpu_vfio_read(struct vfio_device *vdev, char __user *buf,
		       size_t count, loff_t *ppos);
ssize_t vgpu_vfio_write(struct vfio_device *vdev, const char __user *buf,
			size_t count, loff_t *ppos);
int vgpu_vfio_mmap(struct vfio_device *vdev, struct vm_area_struct *vma);

/* vgpu_vfio_irq.c */
void vgpu_vfio_irq_init(struct vgpu_vfio_state *s);
void vgpu_vfio_irq_release_all(struct vgpu_vfio_state *s);
void vgpu_vfio_irq_reset(struct vgpu_vfio_state *s);
long vgpu_vfio_ioctl_irq_info(struct vgpu_vfio_state *s, void __user *arg);
long vgpu_vfio_ioctl_set_irqs(struct vgpu_vfio_state *s, void __user *arg);
void vgpu_vfio_inject_interrupt(void *frontend_priv, unsigned int vector);
void vgpu_vfio_request(struct vfio_device *vdev, unsigned int count);

#endif /* VGPU_VFIO_H */
