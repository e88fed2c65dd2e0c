// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vgpu_vfio_region.c - the VFIO regions of a vGPU: region info (with sparse
 * mmap for the doorbell page), read()/write() of config space and BARs, and
 * mmap of the VRAM slice and doorbell page. BAR0 and VRAM accesses go to the
 * backend untouched: the frontend never interprets a register and never
 * touches the GPU itself; it only mmaps what the backend hands out.
 */
#include <linux/bits.h>
#include <linux/log2.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/sched/signal.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vfio_pci_core.h>

#include "vgpu_vfio.h"

/* the display engine numbers its regions' offsets as vfio-pci-core does */
static_assert(VGPU_VFIO_OFFSET_SHIFT == VFIO_PCI_OFFSET_SHIFT);

/* Largest BAR we can express in a region (the offset window). */
#define VGPU_VFIO_MAX_BAR_SIZE	BIT_ULL(VGPU_VFIO_OFFSET_SHIFT)
#define VGPU_VFIO_BOUNCE_SIZE	PAGE_SIZE

static bool vgpu_vfio_area_valid(const struct vgpu_sparse_area *area,
				 u64 bar_size)
{
	return area->size && PAGE_ALIGNED(area->offset) &&
	       PAGE_ALIGNED(area->size) && area->offset < bar_size &&
	       area->size <= bar_size - area->offset;
}

/* The mmap-able areas of BAR @bar: the backend's sparse list, or all VRAM. */
static void vgpu_vfio_bar_areas(struct vgpu_vfio_state *s, unsigned int bar)
{
	struct vgpu_vfio_bar *b = &s->bars[bar];
	struct vgpu_sparse_area areas[VGPU_VFIO_MAX_AREAS];
	int i, n = 0;

	b->nr_areas = 0;
	if (!(b->info.flags & VGPU_BAR_F_MMAP) || !b->info.phys ||
	    !PAGE_ALIGNED(b->info.phys))
		return;

	if (vgpu_vfio_rm.get_sparse_mmap)
		n = vgpu_vfio_rm.get_sparse_mmap(s->vgpu, bar, areas,
						 VGPU_VFIO_MAX_AREAS);
	if (n > VGPU_VFIO_MAX_AREAS)
		n = VGPU_VFIO_MAX_AREAS;

	for (i = 0; i < n; i++) {
		if (!vgpu_vfio_area_valid(&areas[i], b->info.size)) {
			dev_warn(s->vdev.dev,
				 "BAR%u: ignoring bad mmap area %#llx+%#llx\n",
				 bar, areas[i].offset, areas[i].size);
			continue;
		}
		b->areas[b->nr_areas++] = areas[i];
	}

	/* VRAM without a sparse list is mmap-able as a whole */
	if (n <= 0 && bar == VGPU_VBAR_VRAM &&
	    b->info.size >= PAGE_SIZE) {
		b->areas[0].offset = 0;
		b->areas[0].size = PAGE_ALIGN_DOWN(b->info.size);
		b->nr_areas = 1;
	}
}

/*
 * Query the backend for the BARs once, at creation: a vGPU's slice and
 * window do not move while it exists. BAR4 (MSI-X) belongs to the frontend,
 * which owns the MSI-X capability; the VMM emulates its contents.
 */
int vgpu_vfio_bars_init(struct vgpu_vfio_state *s)
{
	unsigned int bar;
	int ret;

	memset(s->bars, 0, sizeof(s->bars));

	for (bar = 0; bar < VGPU_VFIO_NUM_BARS; bar++) {
		struct vgpu_vfio_bar *b = &s->bars[bar];

		if (bar == VGPU_VBAR_MSIX) {
			b->info.size = VGPU_VFIO_MSIX_BAR_SIZE;
			b->region_size = VGPU_VFIO_MSIX_BAR_SIZE;
			continue;
		}
		if (bar != VGPU_VBAR_REGS && bar != VGPU_VBAR_VRAM)
			continue;

		ret = vgpu_vfio_rm.vgpu_bar_info(s->vgpu, bar, &b->info);
		if (ret)
			return ret;
		if (!b->info.size)
			continue;

		/* what a vGPU looks like is the frontend's business (SPEC 2) */
		if (bar == VGPU_VBAR_VRAM)
			b->info.flags |= VGPU_BAR_F_64BIT | VGPU_BAR_F_PREFETCH;
		else
			b->info.flags &= ~(VGPU_BAR_F_64BIT |
					   VGPU_BAR_F_PREFETCH);

		if (b->info.size > VGPU_VFIO_MAX_BAR_SIZE / 2 ||
		    (!(b->info.flags & VGPU_BAR_F_64BIT) &&
		     b->info.size > SZ_2G)) {
			dev_err(s->vdev.dev, "BAR%u: size %#llx too large\n",
				bar, b->info.size);
			return -EINVAL;
		}
		/* PCI BARs are powers of two; the tail beyond size reads ~0 */
		b->region_size = max_t(u64, roundup_pow_of_two(b->info.size),
				       16);
		vgpu_vfio_bar_areas(s, bar);
	}
	return 0;
}

static int vgpu_vfio_add_sparse_cap(const struct vgpu_vfio_bar *b,
				    struct vfio_info_cap *caps)
{
	struct vfio_region_info_cap_sparse_mmap *sparse;
	size_t size = struct_size(sparse, areas, b->nr_areas);
	int i, ret;

	sparse = kzalloc(size, GFP_KERNEL);
	if (!sparse)
		return -ENOMEM;

	sparse->header.id = VFIO_REGION_INFO_CAP_SPARSE_MMAP;
	sparse->header.version = 1;
	sparse->nr_areas = b->nr_areas;
	for (i = 0; i < b->nr_areas; i++) {
		sparse->areas[i].offset = b->areas[i].offset;
		sparse->areas[i].size = b->areas[i].size;
	}
	ret = vfio_info_add_capability(caps, &sparse->header, size);
	kfree(sparse);
	return ret;
}

/* The display engine's regions: @index - VFIO_PCI_NUM_REGIONS, or -1. */
static int vgpu_vfio_display_region(unsigned int index)
{
	if (!vgpu_display_supported(&vgpu_vfio_rm) ||
	    index < VFIO_PCI_NUM_REGIONS ||
	    index >= VGPU_VFIO_DISPLAY_REGION(VGPU_DISPLAY_NR_REGIONS))
		return -1;
	return index - VFIO_PCI_NUM_REGIONS;
}

static int vgpu_vfio_display_region_info(struct vgpu_vfio_state *s,
					 enum vgpu_display_region which,
					 struct vfio_region_info *info,
					 struct vfio_info_cap *caps)
{
	struct vfio_region_info_cap_type cap = {
		.header.id = VFIO_REGION_INFO_CAP_TYPE,
		.header.version = 1,
	};

	info->size = vgpu_display_region_size(&s->display, which);
	info->flags = vgpu_display_region_flags(which);
	vgpu_display_region_type(which, &cap.type, &cap.subtype);
	return vfio_info_add_capability(caps, &cap.header, sizeof(cap));
}

long vgpu_vfio_ioctl_region_info(struct vgpu_vfio_state *s, void __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_region_info, offset);
	struct vfio_info_cap caps = { .buf = NULL, .size = 0 };
	struct vfio_region_info info;
	const struct vgpu_vfio_bar *b;
	int ret = 0;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz || (info.index >= VFIO_PCI_NUM_REGIONS &&
				   vgpu_vfio_display_region(info.index) < 0))
		return -EINVAL;

	info.offset = VGPU_VFIO_INDEX_TO_OFFSET(info.index);
	info.size = 0;
	info.flags = 0;
	info.cap_offset = 0;

	switch (info.index) {
	case VFIO_PCI_CONFIG_REGION_INDEX:
		info.size = VGPU_VFIO_CONFIG_SIZE;
		info.flags = VFIO_REGION_INFO_FLAG_READ |
			     VFIO_REGION_INFO_FLAG_WRITE;
		break;
	case VFIO_PCI_BAR0_REGION_INDEX ... VFIO_PCI_BAR5_REGION_INDEX:
		b = &s->bars[info.index];
		if (!b->region_size)
			break;
		info.size = b->region_size;
		info.flags = VFIO_REGION_INFO_FLAG_READ |
			     VFIO_REGION_INFO_FLAG_WRITE;
		if (!b->nr_areas)
			break;
		info.flags |= VFIO_REGION_INFO_FLAG_MMAP;
		if (b->nr_areas == 1 && b->areas[0].offset == 0 &&
		    b->areas[0].size == b->region_size)
			break;
		ret = vgpu_vfio_add_sparse_cap(b, &caps);
		if (ret)
			return ret;
		break;
	case VFIO_PCI_ROM_REGION_INDEX:
	case VFIO_PCI_VGA_REGION_INDEX:
		/* not implemented, size 0 */
		break;
	default:
		ret = vgpu_vfio_display_region_info(s,
						    vgpu_vfio_display_region(info.index),
						    &info, &caps);
		if (ret)
			return ret;
		break;
	}

	if (caps.size) {
		info.flags |= VFIO_REGION_INFO_FLAG_CAPS;
		if (info.argsz < sizeof(info) + caps.size) {
			/* tell the caller how much room the chain needs */
			info.argsz = sizeof(info) + caps.size;
			info.cap_offset = 0;
		} else {
			vfio_info_cap_shift(&caps, sizeof(info));
			if (copy_to_user(arg + sizeof(info), caps.buf,
					 caps.size))
				ret = -EFAULT;
			info.cap_offset = sizeof(info);
		}
		kfree(caps.buf);
		if (ret)
			return ret;
	}

	return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
}

static ssize_t vgpu_vfio_config_rw(struct vgpu_vfio_state *s, char __user *ubuf,
				   size_t count, u64 off, bool write)
{
	u8 buf[VGPU_VFIO_CONFIG_SIZE];

	if (write) {
		if (copy_from_user(buf, ubuf, count))
			return -EFAULT;
		mutex_lock(&s->lock);
		vgpu_vfio_config_write(s, off, buf, count);
		mutex_unlock(&s->lock);
		return count;
	}

	mutex_lock(&s->lock);
	vgpu_vfio_config_read(s, off, buf, count);
	mutex_unlock(&s->lock);
	return copy_to_user(ubuf, buf, count) ? -EFAULT : count;
}

/*
 * One access of 1, 2, 4 or 8 bytes goes to the backend as it is, aligned or
 * not (the device defines what a misaligned access does); anything else is
 * split into naturally aligned pieces, as a CPU would issue them.
 */
static unsigned int vgpu_vfio_access_size(u64 off, size_t count)
{
	if (count == 1 || count == 2 || count == 4 || count == 8)
		return count;
	if (count >= 8 && IS_ALIGNED(off, 8))
		return 8;
	if (count >= 4 && IS_ALIGNED(off, 4))
		return 4;
	if (count >= 2 && IS_ALIGNED(off, 2))
		return 2;
	return 1;
}

/* BAR0: every access is forwarded to the backend's partition window. */
static ssize_t vgpu_vfio_regs_rw(struct vgpu_vfio_state *s, char __user *ubuf,
				 size_t count, u64 off, bool write)
{
	u64 bar_size = s->bars[VGPU_VBAR_REGS].info.size;
	size_t done = 0;
	int ret = 0;

	while (done < count) {
		unsigned int size = vgpu_vfio_access_size(off, count - done);
		u64 val = 0;

		if (write) {
			if (copy_from_user(&val, ubuf + done, size)) {
				ret = -EFAULT;
				break;
			}
			val = le64_to_cpu((__force __le64)val);
			/* the power-of-two tail past the window drops writes */
			if (off < bar_size)
				ret = vgpu_vfio_rm.vgpu_reg_write(s->vgpu, off,
								  val, size);
		} else {
			if (off < bar_size)
				ret = vgpu_vfio_rm.vgpu_reg_read(s->vgpu, off,
								 &val, size);
			else
				val = ~0ULL;
			val = (__force u64)cpu_to_le64(val);
			if (!ret && copy_to_user(ubuf + done, &val, size))
				ret = -EFAULT;
		}
		if (ret)
			break;
		done += size;
		off += size;
	}
	return done ? done : ret;
}

/*
 * BAR2 through read()/write(): the slow path, mmap is the main one. The
 * backend copies to and from the slice a page at a time; the
 * power-of-two tail past the slice reads ~0 and drops writes.
 */
static ssize_t vgpu_vfio_vram_rw(struct vgpu_vfio_state *s, char __user *ubuf,
				 size_t count, u64 off, bool write)
{
	u64 slice_size = s->bars[VGPU_VBAR_VRAM].info.size;
	size_t done = 0;
	ssize_t ret = 0;
	u8 *bounce;

	if (!vgpu_vfio_rm.vgpu_vram_rw)
		return -EIO;

	bounce = kmalloc(min_t(size_t, count, VGPU_VFIO_BOUNCE_SIZE),
			 GFP_KERNEL);
	if (!bounce)
		return -ENOMEM;

	while (done < count) {
		size_t chunk = min_t(size_t, count - done,
				     VGPU_VFIO_BOUNCE_SIZE);
		size_t inside = 0;

		if (off < slice_size)
			inside = min_t(u64, chunk, slice_size - off);

		if (write && copy_from_user(bounce, ubuf + done, chunk)) {
			ret = -EFAULT;
			break;
		}
		if (inside) {
			ret = vgpu_vfio_rm.vgpu_vram_rw(s->vgpu, off, bounce,
							inside, write);
			if (ret)
				break;
		}
		if (!write) {
			memset(bounce + inside, 0xff, chunk - inside);
			if (copy_to_user(ubuf + done, bounce, chunk)) {
				ret = -EFAULT;
				break;
			}
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

static ssize_t vgpu_vfio_rw(struct vfio_device *vdev, char __user *ubuf,
			    size_t count, loff_t *ppos, bool write)
{
	struct vgpu_vfio_state *s = vgpu_vfio_state_of(vdev);
	unsigned int index;
	u64 pos, off, size;
	ssize_t ret;

	if (*ppos < 0)
		return -EINVAL;
	pos = *ppos;
	index = pos >> VGPU_VFIO_OFFSET_SHIFT;
	off = pos & VGPU_VFIO_OFFSET_MASK;

	switch (index) {
	case VFIO_PCI_CONFIG_REGION_INDEX:
		size = VGPU_VFIO_CONFIG_SIZE;
		break;
	case VFIO_PCI_BAR0_REGION_INDEX ... VFIO_PCI_BAR5_REGION_INDEX:
		size = s->bars[index].region_size;
		break;
	default:
		if (vgpu_vfio_display_region(index) < 0)
			return -EINVAL;
		/* the display engine checks its own bounds */
		ret = vgpu_display_region_rw(&s->display,
					     vgpu_vfio_display_region(index),
					     ubuf, count, off, write);
		if (ret > 0)
			*ppos += ret;
		return ret;
	}
	if (!count)
		return 0;
	if (off >= size || count > size - off)
		return -EINVAL;

	switch (index) {
	case VFIO_PCI_CONFIG_REGION_INDEX:
		ret = vgpu_vfio_config_rw(s, ubuf, count, off, write);
		break;
	case VGPU_VBAR_REGS:
		ret = vgpu_vfio_regs_rw(s, ubuf, count, off, write);
		break;
	case VGPU_VBAR_VRAM:
		ret = vgpu_vfio_vram_rw(s, ubuf, count, off, write);
		break;
	case VGPU_VBAR_MSIX:
		/* the VMM emulates the table and PBA: reads 0, writes ignored */
		ret = count;
		if (!write && clear_user(ubuf, count))
			ret = -EFAULT;
		break;
	default:
		ret = -EINVAL;
		break;
	}

	if (ret > 0)
		*ppos += ret;
	return ret;
}

ssize_t vgpu_vfio_read(struct vfio_device *vdev, char __user *buf,
		       size_t count, loff_t *ppos)
{
	return vgpu_vfio_rw(vdev, buf, count, ppos, false);
}

ssize_t vgpu_vfio_write(struct vfio_device *vdev, const char __user *buf,
			size_t count, loff_t *ppos)
{
	return vgpu_vfio_rw(vdev, (char __user *)buf, count, ppos, true);
}

/*
 * mmap: the VRAM slice (write-combining) and, in BAR0, only the backend's
 * sparse areas (the doorbell page, uncached), at the host physical address
 * the backend's vgpu_bar_info gave: where a vGPU's BAR lives is the
 * backend's policy, the frontend only maps it into the VMM. Everything
 * else stays trapped.
 */
int vgpu_vfio_mmap(struct vfio_device *vdev, struct vm_area_struct *vma)
{
	struct vgpu_vfio_state *s = vgpu_vfio_state_of(vdev);
	const unsigned int shift = VGPU_VFIO_OFFSET_SHIFT - PAGE_SHIFT;
	unsigned long index = vma->vm_pgoff >> shift;
	u64 off = (u64)(vma->vm_pgoff & ((1UL << shift) - 1)) << PAGE_SHIFT;
	u64 len = vma->vm_end - vma->vm_start;
	const struct vgpu_vfio_bar *b;
	pgprot_t prot;
	int i;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vgpu_vfio_display_region(index) >= 0)
		return vgpu_display_region_mmap(&s->display,
						vgpu_vfio_display_region(index),
						vma, off);

	switch (index) {
	case VGPU_VBAR_VRAM:
		prot = pgprot_writecombine(vma->vm_page_prot);
		break;
	case VGPU_VBAR_REGS:
		prot = pgprot_noncached(vma->vm_page_prot);
		break;
	default:
		return -EINVAL;
	}

	b = &s->bars[index];
	for (i = 0; i < b->nr_areas; i++) {
		const struct vgpu_sparse_area *a = &b->areas[i];

		if (off >= a->offset && len <= a->size &&
		    off - a->offset <= a->size - len)
			break;
	}
	if (i == b->nr_areas)
		return -EINVAL;

	vm_flags_set(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_page_prot = prot;
	return io_remap_pfn_range(vma, vma->vm_start,
				  PHYS_PFN(b->info.phys + off), len, prot);
}
