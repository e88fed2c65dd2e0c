/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vgpu_display.h - the frontends' one display engine (a vGPU's display
 * head as VFIO shows it, host-driver/vfio/vgpu_display.c), shared by the
 * mdev frontend and the SR-IOV variant driver as vgpu_mig.h is: it lives
 * in vgpu_vfio.ko, exported in the VGPU_DISPLAY namespace, and reaches the
 * hardware only through the struct vgpu_rm_ops its frontend gives it.
 *
 * It gives a VMM (QEMU's hw/vfio/display.c, display=on) three things:
 *   VFIO_DEVICE_QUERY_GFX_PLANE - the primary plane as the head shows it
 *       (VFIO_GFX_PLANE_TYPE_REGION only; size 0 while the head is off);
 *   the display region - a read-only, mmap-able view of the framebuffer
 *       the head shows: page i is page base/PAGE_SIZE + i of the slice.
 *       QEMU maps it once and ignores plane.offset, so after a flip the
 *       view moves and the old mappings are zapped at the next query;
 *   the EDID region - VFIO_REGION_TYPE_GFX / SUBTYPE_GFX_EDID: the VMM's
 *       EDID and link state for the head, applied on link_state writes.
 *
 * A frontend embeds a struct vgpu_display next to its vfio_device and
 * calls vgpu_display_init() at init, vgpu_display_open() once the vGPU is
 * started for a user (with the region indexes it gives the two regions
 * and the slice's host physical address), vgpu_display_close() before the
 * vGPU stops (zaps the VMM's mappings; its faults then get SIGBUS), and
 * vgpu_display_exit() at release; it routes the ioctl, the regions'
 * read/write and mmap here.
 */
#ifndef VGPU_DISPLAY_H
#define VGPU_DISPLAY_H

#include <linux/mutex.h>
#include <linux/vfio.h>

#include "vgpu_ops.h"

struct vm_area_struct;

/* The two regions, in the order a frontend numbers them. */
enum vgpu_display_region {
	VGPU_DISPLAY_REGION_FB,		/* the scanout view */
	VGPU_DISPLAY_REGION_EDID,	/* struct vfio_region_gfx_edid + blob */
	VGPU_DISPLAY_NR_REGIONS,
};

/* The display region's type capability: vendor-specific, vgpu-pci's */
#define VGPU_DISPLAY_FB_SUBTYPE		1

/* The EDID region: the registers, then the blob at this offset. */
#define VGPU_DISPLAY_EDID_OFFSET	0x100
#define VGPU_DISPLAY_EDID_REGION_SIZE	\
	(VGPU_DISPLAY_EDID_OFFSET + VGPU_EDID_MAX_BYTES)

struct vgpu_display {
	struct vfio_device *vdev;
	const struct vgpu_rm_ops *rm;
	/*
	 * Under lock: the vGPU from open to close (NULL while nobody has
	 * it), the view the display region shows and the EDID region.
	 * Taken in the region's fault handler (under mmap_lock), so
	 * nothing under it touches user memory.
	 */
	struct mutex lock;
	struct vgpu_rm_vgpu *vgpu;
	u32 index[VGPU_DISPLAY_NR_REGIONS];	/* VFIO region indexes */
	phys_addr_t slice_phys;
	u64 slice_size;
	u64 fb_size;			/* the display region, page aligned */
	/*
	 * The view: the slice offset the display region starts at, as the
	 * last QUERY_GFX_PLANE with the head on found it. A head turned off
	 * keeps it (QEMU keeps drawing its old surface from the mapping,
	 * the vGPU's own memory); none (SIGBUS) until the head was seen on.
	 */
	bool view_valid;
	u64 view_base;
	struct vfio_region_gfx_edid edid_regs;
	u8 edid[VGPU_EDID_MAX_BYTES];
};

void vgpu_display_init(struct vgpu_display *d, struct vfio_device *vdev,
		       const struct vgpu_rm_ops *rm);
void vgpu_display_open(struct vgpu_display *d, struct vgpu_rm_vgpu *vgpu,
		       const u32 index[VGPU_DISPLAY_NR_REGIONS],
		       phys_addr_t slice_phys, u64 slice_size);
void vgpu_display_close(struct vgpu_display *d);
void vgpu_display_exit(struct vgpu_display *d);

/* Whether the RM's ops give this frontend a display at all. */
bool vgpu_display_supported(const struct vgpu_rm_ops *rm);
long vgpu_display_query_plane(struct vgpu_display *d, void __user *arg);
/* size and flags of region @which, as GET_REGION_INFO reports them */
u64 vgpu_display_region_size(struct vgpu_display *d,
			     enum vgpu_display_region which);
u32 vgpu_display_region_flags(enum vgpu_display_region which);
/* its VFIO_REGION_INFO_CAP_TYPE */
void vgpu_display_region_type(enum vgpu_display_region which, u32 *type,
			      u32 *subtype);
ssize_t vgpu_display_region_rw(struct vgpu_display *d,
			       enum vgpu_display_region which,
			       char __user *buf, size_t count, u64 off,
			       bool write);
/* @vma's offset inside the region is @off */
int vgpu_display_region_mmap(struct vgpu_display *d,
			     enum vgpu_display_region which,
			     struct vm_area_struct *vma, u64 off);

#endif /* VGPU_DISPLAY_H */
