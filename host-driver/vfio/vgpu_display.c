// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vgpu_display.c - the frontends' one display engine (vgpu_display.h):
 * QUERY_GFX_PLANE, the display region (a view of the scanout buffer that
 * follows page flips) and the EDID region, for the mdev frontend and the
 * SR-IOV variant driver alike. The head's registers are the RM's business
 * (the ops' display_*); this file only maps what the RM says is shown.
 *
 * Lock order: mmap_lock (a fault) -> display lock -> the RM's locks.
 */
#include <drm/drm_fourcc.h>
#include <drm/drm_plane.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vfio_pci_core.h>

#include "vgpu_display.h"
#include "vgpu_regs.h"

/* The regions' pages as an mmap's pgoff has them (index in the top bits). */
#define VGPU_DISPLAY_PGOFF_MASK \
	((1UL << (VFIO_PCI_OFFSET_SHIFT - PAGE_SHIFT)) - 1)

bool vgpu_display_supported(const struct vgpu_rm_ops *rm)
{
	return rm && rm->display_plane && rm->display_set_edid &&
	       rm->display_max_mode && rm->vgpu_vram_rw;
}
EXPORT_SYMBOL_NS_GPL(vgpu_display_supported, VGPU_DISPLAY);

/* Drop the VMM's mappings of the display region: its next access faults. */
static void vgpu_display_zap(struct vgpu_display *d)
{
	lockdep_assert_held(&d->lock);
	if (!d->fb_size)
		return;
	unmap_mapping_range(d->vdev->inode->i_mapping,
			    VFIO_PCI_INDEX_TO_OFFSET(d->index[VGPU_DISPLAY_REGION_FB]),
			    d->fb_size, true);
}

void vgpu_display_init(struct vgpu_display *d, struct vfio_device *vdev,
		       const struct vgpu_rm_ops *rm)
{
	memset(d, 0, sizeof(*d));
	d->vdev = vdev;
	d->rm = rm;
	mutex_init(&d->lock);
}
EXPORT_SYMBOL_NS_GPL(vgpu_display_init, VGPU_DISPLAY);

/*
 * The region shows one framebuffer of the type's largest mode, never more
 * than the slice; a plane that does not fit in it is reported as off.
 */
void vgpu_display_open(struct vgpu_display *d, struct vgpu_rm_vgpu *vgpu,
		       const u32 index[VGPU_DISPLAY_NR_REGIONS],
		       phys_addr_t slice_phys, u64 slice_size)
{
	u32 w = 0, h = 0;
	u64 fb;

	if (!vgpu_display_supported(d->rm))
		return;
	d->rm->display_max_mode(vgpu, &w, &h);
	fb = PAGE_ALIGN((u64)w * h * 4);
	slice_size = PAGE_ALIGN_DOWN(slice_size);
	if (!fb || fb > slice_size)
		fb = slice_size;

	mutex_lock(&d->lock);
	d->vgpu = vgpu;
	memcpy(d->index, index, sizeof(d->index));
	d->slice_phys = slice_phys;
	d->slice_size = slice_size;
	d->fb_size = fb;
	d->view_valid = false;
	d->view_base = 0;
	memset(&d->edid_regs, 0, sizeof(d->edid_regs));
	d->edid_regs.edid_offset = VGPU_DISPLAY_EDID_OFFSET;
	d->edid_regs.edid_max_size = VGPU_EDID_MAX_BYTES;
	d->edid_regs.max_xres = w;
	d->edid_regs.max_yres = h;
	/* the RM starts every vGPU connected, with its own EDID */
	d->edid_regs.link_state = VFIO_DEVICE_GFX_LINK_STATE_UP;
	memset(d->edid, 0, sizeof(d->edid));
	mutex_unlock(&d->lock);
}
EXPORT_SYMBOL_NS_GPL(vgpu_display_open, VGPU_DISPLAY);

/* Before the vGPU stops: nothing maps its slice any more. */
void vgpu_display_close(struct vgpu_display *d)
{
	mutex_lock(&d->lock);
	if (d->vgpu)
		vgpu_display_zap(d);
	d->vgpu = NULL;
	d->view_valid = false;
	d->fb_size = 0;
	mutex_unlock(&d->lock);
}
EXPORT_SYMBOL_NS_GPL(vgpu_display_close, VGPU_DISPLAY);

void vgpu_display_exit(struct vgpu_display *d)
{
	mutex_destroy(&d->lock);
}
EXPORT_SYMBOL_NS_GPL(vgpu_display_exit, VGPU_DISPLAY);

/*
 * The plane as the head shows it; the view moves to its buffer (a flip
 * zaps the old mappings here, so QEMU's next read faults in the new one).
 */
static void vgpu_display_fill_plane(struct vgpu_display *d,
				    struct vfio_device_gfx_plane_info *info)
{
	struct vgpu_display_plane p;
	u64 extent, size;

	lockdep_assert_held(&d->lock);
	if (d->rm->display_plane(d->vgpu, &p) || !p.drm_format)
		return;
	if (p.drm_format != DRM_FORMAT_XRGB8888 || !p.width || !p.height)
		return;
	extent = (u64)p.stride * (p.height - 1) + (u64)p.width * 4;
	if (extent > d->fb_size) {
		dev_dbg_ratelimited(d->vdev->dev,
				    "plane %ux%u stride %u does not fit the %llu KiB display region: not shown\n",
				    p.width, p.height, p.stride,
				    d->fb_size >> 10);
		return;
	}
	if (!d->view_valid || d->view_base != p.base) {
		d->view_base = p.base;
		d->view_valid = true;
		vgpu_display_zap(d);
	}
	size = min_t(u64, PAGE_ALIGN((u64)p.stride * p.height), d->fb_size);
	info->drm_format = p.drm_format;
	info->width = p.width;
	info->height = p.height;
	info->stride = p.stride;
	info->size = size;
}

long vgpu_display_query_plane(struct vgpu_display *d, void __user *arg)
{
	unsigned long minsz =
		offsetofend(struct vfio_device_gfx_plane_info, region_index);
	struct vfio_device_gfx_plane_info info;
	long ret = 0;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;
	/* region planes only: no dma-buf */
	if (info.flags & VFIO_GFX_PLANE_TYPE_PROBE)
		return info.flags == (VFIO_GFX_PLANE_TYPE_PROBE |
				      VFIO_GFX_PLANE_TYPE_REGION) ? 0 : -EINVAL;
	if (info.flags != VFIO_GFX_PLANE_TYPE_REGION)
		return -EINVAL;
	/*
	 * QEMU's region display asks without a plane type (0): a region
	 * device has one plane, the primary (as in the kernel's mdpy).
	 */
	if (info.drm_plane_type > DRM_PLANE_TYPE_CURSOR)
		return -EINVAL;

	info.drm_format = 0;
	info.drm_format_mod = 0;
	info.width = 0;
	info.height = 0;
	info.stride = 0;
	info.size = 0;
	info.x_pos = 0;
	info.y_pos = 0;
	info.x_hot = 0;
	info.y_hot = 0;

	mutex_lock(&d->lock);
	if (!d->vgpu) {
		ret = -ENODEV;
	} else {
		info.region_index = d->index[VGPU_DISPLAY_REGION_FB];
		/* the head has no cursor plane: the cursor is in the image */
		if (info.drm_plane_type != DRM_PLANE_TYPE_CURSOR)
			vgpu_display_fill_plane(d, &info);
	}
	mutex_unlock(&d->lock);
	if (ret)
		return ret;
	return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
}
EXPORT_SYMBOL_NS_GPL(vgpu_display_query_plane, VGPU_DISPLAY);

u64 vgpu_display_region_size(struct vgpu_display *d,
			     enum vgpu_display_region which)
{
	u64 size;

	if (which == VGPU_DISPLAY_REGION_EDID)
		return VGPU_DISPLAY_EDID_REGION_SIZE;
	mutex_lock(&d->lock);
	size = d->fb_size;
	mutex_unlock(&d->lock);
	return size;
}
EXPORT_SYMBOL_NS_GPL(vgpu_display_region_size, VGPU_DISPLAY);

u32 vgpu_display_region_flags(enum vgpu_display_region which)
{
	if (which == VGPU_DISPLAY_REGION_EDID)
		return VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
	return VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP;
}
EXPORT_SYMBOL_NS_GPL(vgpu_display_region_flags, VGPU_DISPLAY);

void vgpu_display_region_type(enum vgpu_display_region which, u32 *type,
			      u32 *subtype)
{
	if (which == VGPU_DISPLAY_REGION_EDID) {
		*type = VFIO_REGION_TYPE_GFX;
		*subtype = VFIO_REGION_SUBTYPE_GFX_EDID;
	} else {
		*type = VFIO_REGION_TYPE_PCI_VENDOR_TYPE |
			(u32)VGPU_PCI_VENDOR_ID;
		*subtype = VGPU_DISPLAY_FB_SUBTYPE;
	}
}
EXPORT_SYMBOL_NS_GPL(vgpu_display_region_type, VGPU_DISPLAY);

/* ---- the display region ---------------------------------------------- */

/* Page @page of the view in the slice, or -1 if it shows none there. */
static s64 vgpu_display_view_offset(struct vgpu_display *d, u64 page)
{
	u64 off;

	lockdep_assert_held(&d->lock);
	if (!d->vgpu || !d->view_valid || page >= d->fb_size >> PAGE_SHIFT)
		return -1;
	off = d->view_base + (page << PAGE_SHIFT);
	if (off >= d->slice_size || d->slice_size - off < PAGE_SIZE)
		return -1;
	return off;
}

static vm_fault_t vgpu_display_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct vgpu_display *d = vma->vm_private_data;
	vm_fault_t ret = VM_FAULT_SIGBUS;
	s64 off;

	mutex_lock(&d->lock);
	off = vgpu_display_view_offset(d, vmf->pgoff & VGPU_DISPLAY_PGOFF_MASK);
	if (off >= 0)
		ret = vmf_insert_pfn(vma, vmf->address,
				     PHYS_PFN(d->slice_phys + off));
	mutex_unlock(&d->lock);
	return ret;
}

static const struct vm_operations_struct vgpu_display_vm_ops = {
	.fault = vgpu_display_fault,
};

/*
 * Pages are inserted at fault time from the view, so a flip (a zap) or
 * the vGPU going away is seen by the next access.
 */
int vgpu_display_region_mmap(struct vgpu_display *d,
			     enum vgpu_display_region which,
			     struct vm_area_struct *vma, u64 off)
{
	u64 len = vma->vm_end - vma->vm_start;
	u64 size;

	if (which != VGPU_DISPLAY_REGION_FB)
		return -EINVAL;
	if (!(vma->vm_flags & VM_SHARED) || (vma->vm_flags & VM_WRITE))
		return -EINVAL;
	size = vgpu_display_region_size(d, which);
	if (!PAGE_ALIGNED(off) || off >= size || len > size - off)
		return -EINVAL;

	vm_flags_set(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
	vm_flags_clear(vma, VM_MAYWRITE);
	vma->vm_page_prot = pgprot_writecombine(vma->vm_page_prot);
	vma->vm_ops = &vgpu_display_vm_ops;
	vma->vm_private_data = d;
	return 0;
}
EXPORT_SYMBOL_NS_GPL(vgpu_display_region_mmap, VGPU_DISPLAY);

/* read(): what the view shows, a page at a time through the RM. */
static ssize_t vgpu_display_fb_read(struct vgpu_display *d, char __user *ubuf,
				    size_t count, u64 off)
{
	size_t done = 0;
	ssize_t ret = 0;
	u8 *bounce;

	bounce = kmalloc(PAGE_SIZE, GFP_KERNEL);
	if (!bounce)
		return -ENOMEM;
	while (done < count) {
		size_t in = offset_in_page(off);
		size_t chunk = min_t(size_t, count - done, PAGE_SIZE - in);
		s64 at;

		mutex_lock(&d->lock);
		at = vgpu_display_view_offset(d, off >> PAGE_SHIFT);
		if (at < 0)
			ret = -EIO;
		else
			ret = d->rm->vgpu_vram_rw(d->vgpu, at + in, bounce,
						  chunk, false);
		mutex_unlock(&d->lock);
		if (ret)
			break;
		if (copy_to_user(ubuf + done, bounce, chunk)) {
			ret = -EFAULT;
			break;
		}
		done += chunk;
		off += chunk;
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		cond_resched();
	}
	kfree(bounce);
	return done ? done : ret;
}

/* ---- the EDID region ------------------------------------------------- */

/* The VMM's EDID update protocol ends with link_state: apply it. */
static int vgpu_display_edid_link(struct vgpu_display *d, u32 state)
{
	const struct vfio_region_gfx_edid *r = &d->edid_regs;
	bool up = state == VFIO_DEVICE_GFX_LINK_STATE_UP;
	int ret;

	lockdep_assert_held(&d->lock);
	if (!up && state != VFIO_DEVICE_GFX_LINK_STATE_DOWN)
		return -EINVAL;
	/* up without a blob: connected, with the EDID the vGPU has */
	ret = d->rm->display_set_edid(d->vgpu, up && r->edid_size ?
				      d->edid : NULL,
				      up ? r->edid_size : 0, up);
	if (!ret)
		d->edid_regs.link_state = state;
	return ret;
}

static int vgpu_display_edid_reg(struct vgpu_display *d, u64 off, u32 *val,
				 bool write)
{
	struct vfio_region_gfx_edid *r = &d->edid_regs;

	lockdep_assert_held(&d->lock);
	switch (off) {
	case offsetof(struct vfio_region_gfx_edid, edid_offset):
		if (!write)
			*val = r->edid_offset;
		break;
	case offsetof(struct vfio_region_gfx_edid, edid_max_size):
		if (!write)
			*val = r->edid_max_size;
		break;
	case offsetof(struct vfio_region_gfx_edid, edid_size):
		if (!write) {
			*val = r->edid_size;
		} else {
			if (*val > r->edid_max_size)
				return -EINVAL;
			r->edid_size = *val;
			return 0;
		}
		break;
	case offsetof(struct vfio_region_gfx_edid, max_xres):
		if (!write)
			*val = r->max_xres;
		break;
	case offsetof(struct vfio_region_gfx_edid, max_yres):
		if (!write)
			*val = r->max_yres;
		break;
	case offsetof(struct vfio_region_gfx_edid, link_state):
		if (!write)
			*val = r->link_state;
		else
			return vgpu_display_edid_link(d, *val);
		break;
	default:
		return -EINVAL;
	}
	return write ? -EPERM : 0;	/* the rest is read-only */
}

/*
 * The registers take aligned 4-byte accesses; the blob any access inside
 * it. Nothing under the lock touches user memory (see the fault handler).
 */
static ssize_t vgpu_display_edid_rw(struct vgpu_display *d, char __user *ubuf,
				    size_t count, u64 off, bool write)
{
	u8 buf[VGPU_EDID_MAX_BYTES];
	bool blob = off >= VGPU_DISPLAY_EDID_OFFSET;
	u32 val = 0;
	int ret = 0;

	if (blob) {
		off -= VGPU_DISPLAY_EDID_OFFSET;
		if (off >= VGPU_EDID_MAX_BYTES || count > VGPU_EDID_MAX_BYTES - off)
			return -EINVAL;
	} else if (count != sizeof(u32) || !IS_ALIGNED(off, sizeof(u32)) ||
		   off >= sizeof(struct vfio_region_gfx_edid)) {
		return -EINVAL;
	}

	if (write && copy_from_user(blob ? buf : (u8 *)&val, ubuf, count))
		return -EFAULT;

	mutex_lock(&d->lock);
	if (!d->vgpu)
		ret = -ENODEV;
	else if (blob && write)
		memcpy(d->edid + off, buf, count);
	else if (blob)
		memcpy(buf, d->edid + off, count);
	else
		ret = vgpu_display_edid_reg(d, off, &val, write);
	mutex_unlock(&d->lock);
	if (ret)
		return ret;

	if (!write && copy_to_user(ubuf, blob ? buf : (u8 *)&val, count))
		return -EFAULT;
	return count;
}

ssize_t vgpu_display_region_rw(struct vgpu_display *d,
			       enum vgpu_display_region which,
			       char __user *buf, size_t count, u64 off,
			       bool write)
{
	u64 size = vgpu_display_region_size(d, which);

	if (!count)
		return 0;
	if (off >= size || count > size - off)
		return -EINVAL;
	if (which == VGPU_DISPLAY_REGION_EDID)
		return vgpu_display_edid_rw(d, buf, count, off, write);
	if (write)
		return -EINVAL;		/* the view is read-only */
	return vgpu_display_fb_read(d, buf, count, off);
}
EXPORT_SYMBOL_NS_GPL(vgpu_display_region_rw, VGPU_DISPLAY);
