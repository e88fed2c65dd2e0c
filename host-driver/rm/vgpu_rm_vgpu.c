// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The vGPU lifecycle and the ops table handed to the
 * frontend: a vGPU is a partition with a VRAM slice, a weight and a
 * translation directory; its BAR0 is the partition's register window.
 */
#include <linux/bitfield.h>
#include <linux/io.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/sizes.h>
#include <linux/slab.h>

#include "vgpu_rm.h"

/*
 * The ops address types by table index: the frontend lists the table as it
 * is when it registers, and the table changes only while the frontend has
 * no vGPU and lists no type (vgpu_rm_types_change_begin()).
 */
static unsigned int vgpu_rm_get_types(struct vgpu_rm_gpu *gpu)
{
	return gpu->nr_types;
}

static const char *vgpu_rm_get_name(struct vgpu_rm_gpu *gpu,
				    unsigned int type)
{
	struct vgpu_rm_type *t = vgpu_rm_type_at(gpu, type);

	return t ? t->name : NULL;
}

static const char *vgpu_rm_get_human_name(struct vgpu_rm_gpu *gpu,
					  unsigned int type)
{
	struct vgpu_rm_type *t = vgpu_rm_type_at(gpu, type);

	return t ? t->human_name : NULL;
}

static int vgpu_rm_get_description(struct vgpu_rm_gpu *gpu,
				   unsigned int type, char *buf, size_t len)
{
	struct vgpu_rm_type *t;
	int ret = -EINVAL;

	mutex_lock(&gpu->lock);
	t = vgpu_rm_type_at(gpu, type);
	if (t)
		ret = scnprintf(buf, len, "framebuffer=%s, max_instances=%u, weight=%u",
				t->fb_str, t->max_instances, t->weight);
	mutex_unlock(&gpu->lock);
	return ret;
}

static unsigned int vgpu_rm_get_instances(struct vgpu_rm_gpu *gpu,
					  unsigned int type)
{
	unsigned int n;

	mutex_lock(&gpu->lock);
	n = vgpu_rm_available(gpu, vgpu_rm_type_at(gpu, type));
	mutex_unlock(&gpu->lock);
	return n;
}

/* Partition table entry back to its reset values, except what is RO. */
static void vgpu_rm_partition_clear(struct vgpu_rm_gpu *gpu, unsigned int p)
{
	vgpu_rm_reset_write(gpu, 0, vgpu_rm_pt_reg(gpu, p, VGPU_PT_CTRL));
	writel(VGPU_INJECT_NONE, vgpu_rm_pt_reg(gpu, p, VGPU_PT_INJECT));
	writeq(0, vgpu_rm_pt_reg(gpu, p, VGPU_PT_XLATE_ROOT));
	writel(0, vgpu_rm_pt_reg(gpu, p, VGPU_PT_XLATE_DIR_ENTRIES));
	writeq(0, vgpu_rm_pt_reg(gpu, p, VGPU_PT_VRAM_BASE));
	writeq(0, vgpu_rm_pt_reg(gpu, p, VGPU_PT_VRAM_SIZE));
	writel(VGPU_PT_WEIGHT_RESET, vgpu_rm_pt_reg(gpu, p, VGPU_PT_WEIGHT));
}

/*
 * A vGPU of the type with ID @type_id: on any free partition that is no
 * VF's (mdev mode), or on VF @partition's own (SR-IOV mode), which takes
 * no device-side translation (SPEC 15). -EINVAL: no such type; -ENOSPC: no partition or
 * VRAM left, or max_instances reached; -EBUSY: the GPU is in the other
 * mode or the VF's partition is taken.
 */
int vgpu_rm_create(struct vgpu_rm_gpu *gpu, unsigned int type_id,
		   int partition, const guid_t *uuid, void *frontend_priv,
		   const struct vgpu_vfio_callbacks *cb,
		   struct vgpu_rm_vgpu **out)
{
	enum vgpu_rm_mode want = partition < 0 ? VGPU_RM_MODE_MDEV :
						 VGPU_RM_MODE_SRIOV;
	struct vgpu_rm_vgpu *vgpu;
	struct vgpu_rm_type *t;
	unsigned int p;
	int ret;

	if (partition >= (int)gpu->partitions)
		return -EINVAL;
	vgpu = kzalloc(sizeof(*vgpu), GFP_KERNEL);
	if (!vgpu)
		return -ENOMEM;
	vgpu->gpu = gpu;
	vgpu->vf = partition >= 0;
	vgpu->frontend_priv = frontend_priv;
	vgpu->cb = cb;
	if (uuid)
		guid_copy(&vgpu->uuid, uuid);
	mutex_init(&vgpu->xlate_lock);
	mutex_init(&vgpu->vram_lock);
	INIT_WORK(&vgpu->fault_work, vgpu_rm_xlate_work);
	xa_init(&vgpu->pins);
	if (!vgpu->vf) {
		ret = vgpu_rm_xlate_init(vgpu);
		if (ret)
			goto err_free;
	}

	mutex_lock(&gpu->lock);
	ret = -EBUSY;
	if (gpu->mode != want)
		goto err_unlock;
	ret = -EINVAL;
	t = vgpu_rm_type_by_id(gpu, type_id);
	if (!t)
		goto err_unlock;
	ret = -ENOSPC;
	if (t->created >= t->max_instances)
		goto err_unlock;
	if (vgpu->vf) {
		p = partition;
		ret = -EBUSY;
		if (test_bit(p, gpu->part_map))
			goto err_unlock;
		ret = -ENOSPC;
	} else {
		p = find_next_zero_bit(gpu->part_map, gpu->partitions,
				       gpu->vf_partitions);
		if (p >= gpu->partitions)
			goto err_unlock;
	}
	ret = vgpu_rm_vram_alloc(gpu, gpu->vram_map, t->framebuffer_bytes,
				 &vgpu->vram_base);
	if (ret)
		goto err_unlock;
	vgpu->vram_size = t->framebuffer_bytes;
	vgpu->type = t;
	vgpu->partition = p;
	vgpu->placed = true;
	set_bit(p, gpu->part_map);
	t->created++;

	/* SPEC 4, "Bringing a partition up": slice, translation, weight. */
	vgpu_rm_partition_clear(gpu, p);
	writeq(vgpu->vram_base, vgpu_rm_pt_reg(gpu, p, VGPU_PT_VRAM_BASE));
	writeq(vgpu->vram_size, vgpu_rm_pt_reg(gpu, p, VGPU_PT_VRAM_SIZE));
	if (!vgpu->vf) {
		writeq(vgpu->dir_dma, vgpu_rm_pt_reg(gpu, p, VGPU_PT_XLATE_ROOT));
		writel(VGPU_RM_DIR_ENTRIES,
		       vgpu_rm_pt_reg(gpu, p, VGPU_PT_XLATE_DIR_ENTRIES));
	}
	writel(t->weight, vgpu_rm_pt_reg(gpu, p, VGPU_PT_WEIGHT));
	/* a guest always has a mode to show */
	vgpu_rm_display_default(vgpu);

	spin_lock_irq(&gpu->irq_lock);
	gpu->parts[p].vgpu = vgpu;
	spin_unlock_irq(&gpu->irq_lock);
	mutex_unlock(&gpu->lock);

	dev_dbg(&gpu->pdev->dev, "vGPU %pUl: %s on partition %u, VRAM 0x%llx+0x%llx\n",
		&vgpu->uuid, t->name, p, vgpu->vram_base, vgpu->vram_size);
	*out = vgpu;
	return 0;

err_unlock:
	mutex_unlock(&gpu->lock);
	vgpu_rm_xlate_destroy(vgpu);
err_free:
	mutex_destroy(&vgpu->vram_lock);
	mutex_destroy(&vgpu->xlate_lock);
	kfree(vgpu);
	return ret;
}

/*
 * Cannot fail (vgpu_ops.h): once it returns, nothing refers to the vGPU or
 * its frontend_priv. Nothing may start the vGPU meanwhile.
 */
void vgpu_rm_delete(struct vgpu_rm_vgpu *vgpu)
{
	struct vgpu_rm_gpu *gpu = vgpu->gpu;
	unsigned int p = vgpu->partition;
	bool started;

	mutex_lock(&vgpu->xlate_lock);
	started = vgpu->started;
	mutex_unlock(&vgpu->xlate_lock);
	if (started)
		vgpu_rm_stop(vgpu);

	mutex_lock(&gpu->lock);
	spin_lock_irq(&gpu->irq_lock);
	gpu->parts[p].vgpu = NULL;
	spin_unlock_irq(&gpu->irq_lock);
	/*
	 * The fault thread queues fault_work only for a published vGPU: wait
	 * for this vGPU's own fault service, nobody else's. Stopped, it has
	 * no pin to wait for.
	 */
	cancel_work_sync(&vgpu->fault_work);

	vgpu_rm_reset_write(gpu, 0, vgpu_rm_pt_reg(gpu, p, VGPU_PT_CTRL));
	/* No data crosses tenants (SPEC 4: SCRUB requires disabled). */
	writel(1, vgpu_rm_pt_reg(gpu, p, VGPU_PT_SCRUB));
	vgpu_rm_partition_clear(gpu, p);

	vgpu_rm_xlate_destroy(vgpu);
	/* No vgpu_vram_rw runs: the frontend closed the device first. */
	if (vgpu->vram)
		iounmap(vgpu->vram);
	vgpu->vram = NULL;
	vgpu_rm_vram_free(gpu, vgpu->vram_base, vgpu->vram_size);
	clear_bit(p, gpu->part_map);
	vgpu->type->created--;
	mutex_unlock(&gpu->lock);

	dev_dbg(&gpu->pdev->dev, "vGPU %pUl on partition %u deleted\n",
		&vgpu->uuid, p);
	mutex_destroy(&vgpu->vram_lock);
	mutex_destroy(&vgpu->xlate_lock);
	kfree(vgpu);
}

int vgpu_rm_start(struct vgpu_rm_vgpu *vgpu)
{
	struct vgpu_rm_gpu *gpu = vgpu->gpu;
	unsigned int p = vgpu->partition;
	/* A VF's DMA is translated by the platform IOMMU instead (SPEC 15). */
	u32 want = vgpu->vf ? VGPU_PT_CTRL_ENABLE :
		   VGPU_PT_CTRL_ENABLE | VGPU_PT_CTRL_XLATE |
		   VGPU_PT_CTRL_XLATE_REPLAY;
	u32 ctrl;
	int ret = 0;

	/*
	 * Not under gpu->lock: this vGPU's fault service may hold xlate_lock
	 * for as long as a pin takes, and other vGPUs must not wait for it.
	 */
	mutex_lock(&vgpu->xlate_lock);
	if (vgpu->started)
		goto out;
	writel(want, vgpu_rm_pt_reg(gpu, p, VGPU_PT_CTRL));
	/* The device refuses an invalid or overlapping slice (BAD_VALUE). */
	ctrl = readl(vgpu_rm_pt_reg(gpu, p, VGPU_PT_CTRL));
	if (ctrl != want) {
		dev_err(&gpu->pdev->dev, "partition %u refused enable (CTRL=0x%x, VRAM 0x%llx+0x%llx)\n",
			p, ctrl, vgpu->vram_base, vgpu->vram_size);
		vgpu_rm_reset_write(gpu, 0, vgpu_rm_pt_reg(gpu, p, VGPU_PT_CTRL));
		ret = -EIO;
		goto out;
	}
	vgpu->started = true;
out:
	mutex_unlock(&vgpu->xlate_lock);
	return ret;
}

void vgpu_rm_stop(struct vgpu_rm_vgpu *vgpu)
{
	struct vgpu_rm_gpu *gpu = vgpu->gpu;

	/* Not under gpu->lock, as vgpu_rm_start(). */
	mutex_lock(&vgpu->xlate_lock);
	/* Clearing ENABLE quiesces and resets, dropping a queued fault. */
	vgpu_rm_reset_write(gpu, 0,
			    vgpu_rm_pt_reg(gpu, vgpu->partition, VGPU_PT_CTRL));
	/*
	 * The next user of this vGPU (another VM on the same mdev) starts
	 * from zeroed VRAM, as from a new one: no data crosses tenants.
	 */
	writel(1, vgpu_rm_pt_reg(gpu, vgpu->partition, VGPU_PT_SCRUB));
	vgpu->started = false;
	vgpu->stopped = false;
	vgpu->dirty_users = 0;
	vgpu_rm_xlate_clear(vgpu);
	mutex_unlock(&vgpu->xlate_lock);
	/* the next user finds the RM's EDID, not the last VMM's */
	vgpu_rm_display_default(vgpu);
}

int vgpu_rm_reset(struct vgpu_rm_vgpu *vgpu)
{
	/* Serialised with the fault service: a reset drops a queued fault. */
	mutex_lock(&vgpu->xlate_lock);
	vgpu_rm_reset_write(vgpu->gpu, 1,
			    vgpu_rm_win_reg(vgpu->gpu, vgpu->partition,
					    VGPU_W_RESET));
	mutex_unlock(&vgpu->xlate_lock);
	return 0;
}

static int vgpu_rm_bar_info(struct vgpu_rm_vgpu *vgpu, unsigned int bar,
			    struct vgpu_bar_info *info)
{
	struct vgpu_rm_gpu *gpu = vgpu->gpu;

	memset(info, 0, sizeof(*info));
	switch (bar) {
	case VGPU_VBAR_REGS:
		info->size = VGPU_WINDOW_STRIDE;
		info->flags = VGPU_BAR_F_MMAP;	/* the doorbell page only */
		info->phys = gpu->regs_phys + VGPU_WINDOW_BASE +
			     vgpu->partition * VGPU_WINDOW_STRIDE;
		break;
	case VGPU_VBAR_VRAM:
		info->size = vgpu->vram_size;
		info->flags = VGPU_BAR_F_64BIT | VGPU_BAR_F_PREFETCH |
			      VGPU_BAR_F_MMAP;
		info->phys = gpu->vram_phys + vgpu->vram_base;
		break;
	case VGPU_VBAR_MSIX:
		info->size = SZ_4K;
		break;
	default:
		break;
	}
	return 0;
}

static int vgpu_rm_get_sparse_mmap(struct vgpu_rm_vgpu *vgpu,
				   unsigned int bar,
				   struct vgpu_sparse_area *areas, int max)
{
	if (max < 1)
		return 0;
	switch (bar) {
	case VGPU_VBAR_REGS:
		areas[0].offset = VGPU_DOORBELL_PAGE;
		areas[0].size = VGPU_WINDOW_STRIDE - VGPU_DOORBELL_PAGE;
		return 1;
	case VGPU_VBAR_VRAM:
		areas[0].offset = 0;
		areas[0].size = vgpu->vram_size;
		return 1;
	default:
		return 0;
	}
}

static bool vgpu_rm_reg_ok(u64 offset, unsigned int size)
{
	return (size == 1 || size == 2 || size == 4 || size == 8) &&
	       offset < VGPU_WINDOW_STRIDE &&
	       offset + size <= VGPU_WINDOW_STRIDE;
}

/*
 * A misaligned access is rejected by the device anyway (SPEC 2: reads all
 * ones, writes ignored); the RM gives that answer itself rather than
 * issuing unaligned MMIO, which some architectures fault on.
 */
static bool vgpu_rm_reg_misaligned(u64 offset, unsigned int size)
{
	return !IS_ALIGNED(offset, size);
}

/* Every window register is the tenant's own (SPEC 4): forward as is. */
static int vgpu_rm_reg_read(struct vgpu_rm_vgpu *vgpu, u64 offset, u64 *val,
			    unsigned int size)
{
	void __iomem *addr;

	if (!vgpu_rm_reg_ok(offset, size))
		return -EINVAL;
	if (vgpu_rm_reg_misaligned(offset, size)) {
		*val = size == 8 ? U64_MAX : BIT_ULL(size * 8) - 1;
		return 0;
	}
	addr = vgpu_rm_win_reg(vgpu->gpu, vgpu->partition, offset);
	switch (size) {
	case 1:
		*val = readb(addr);
		break;
	case 2:
		*val = readw(addr);
		break;
	case 4:
		*val = readl(addr);
		break;
	default:
		*val = readq(addr);
		break;
	}
	return 0;
}

static int vgpu_rm_reg_write(struct vgpu_rm_vgpu *vgpu, u64 offset, u64 val,
			     unsigned int size)
{
	void __iomem *addr;

	if (!vgpu_rm_reg_ok(offset, size))
		return -EINVAL;
	if (vgpu_rm_reg_misaligned(offset, size))
		return 0;
	addr = vgpu_rm_win_reg(vgpu->gpu, vgpu->partition, offset);
	if (offset == VGPU_W_RESET && size == 4) {
		/* A guest's reset drops its queued fault: as vgpu_rm_reset(). */
		mutex_lock(&vgpu->xlate_lock);
		vgpu_rm_reset_write(vgpu->gpu, val, addr);
		mutex_unlock(&vgpu->xlate_lock);
		return 0;
	}
	switch (size) {
	case 1:
		writeb(val, addr);
		break;
	case 2:
		writew(val, addr);
		break;
	case 4:
		writel(val, addr);
		break;
	default:
		writeq(val, addr);
		break;
	}
	return 0;
}

/*
 * The slice, mapped write-combining as the frontend's mmap maps it, on
 * first use: most vGPUs are only ever reached through mmap.
 */
static void __iomem *vgpu_rm_vram_map(struct vgpu_rm_vgpu *vgpu)
{
	void __iomem *vram;

	mutex_lock(&vgpu->vram_lock);
	if (!vgpu->vram)
		vgpu->vram = ioremap_wc(vgpu->gpu->vram_phys + vgpu->vram_base,
					vgpu->vram_size);
	vram = vgpu->vram;
	mutex_unlock(&vgpu->vram_lock);
	return vram;
}

/*
 * The VRAM BAR's read()/write() path. The host reaches VRAM through BAR2
 * unchecked by the device, so this range check is the only thing keeping
 * a VMM inside its own slice.
 */
static int vgpu_rm_vram_rw(struct vgpu_rm_vgpu *vgpu, u64 offset, void *buf,
			   size_t len, bool write)
{
	void __iomem *vram;

	if (!buf || offset > vgpu->vram_size ||
	    len > vgpu->vram_size - offset)
		return -EINVAL;
	if (!len)
		return 0;
	vram = vgpu_rm_vram_map(vgpu);
	if (!vram)
		return -EIO;
	if (write)
		memcpy_toio(vram + offset, buf, len);
	else
		memcpy_fromio(buf, vram + offset, len);
	return 0;
}

static int vgpu_rm_op_create(struct vgpu_rm_gpu *gpu, unsigned int type,
			     const guid_t *uuid, void *frontend_priv,
			     struct vgpu_rm_vgpu **out)
{
	struct vgpu_rm_type *t;
	unsigned int id;

	mutex_lock(&gpu->lock);
	t = vgpu_rm_type_at(gpu, type);
	id = t ? t->id : 0;
	mutex_unlock(&gpu->lock);
	if (!id)
		return -EINVAL;
	return vgpu_rm_create(gpu, id, VGPU_RM_ANY_PARTITION, uuid,
			      frontend_priv, vgpu_rm_frontend_callbacks(), out);
}

const struct vgpu_rm_ops vgpu_rm_ops_table = {
	.get_types = vgpu_rm_get_types,
	.get_name = vgpu_rm_get_name,
	.get_human_name = vgpu_rm_get_human_name,
	.get_description = vgpu_rm_get_description,
	.get_instances = vgpu_rm_get_instances,
	.vgpu_create = vgpu_rm_op_create,
	.vgpu_delete = vgpu_rm_delete,
	.vgpu_start = vgpu_rm_start,
	.vgpu_stop = vgpu_rm_stop,
	.vgpu_reset = vgpu_rm_reset,
	.vgpu_bar_info = vgpu_rm_bar_info,
	.get_sparse_mmap = vgpu_rm_get_sparse_mmap,
	.vgpu_reg_read = vgpu_rm_reg_read,
	.vgpu_reg_write = vgpu_rm_reg_write,
	.vgpu_vram_rw = vgpu_rm_vram_rw,
	.vgpu_dma_unmap = vgpu_rm_dma_unmap,
	.mig_stop = vgpu_rm_mig_stop,
	.mig_resume = vgpu_rm_mig_resume,
	.mig_state_size = vgpu_rm_mig_state_size,
	.mig_save = vgpu_rm_mig_save,
	.mig_restore = vgpu_rm_mig_restore,
	.dirty_start = vgpu_rm_dirty_start,
	.dirty_stop = vgpu_rm_dirty_stop,
	.dirty_read = vgpu_rm_dirty_read,
	.display_plane = vgpu_rm_display_plane,
	.display_set_edid = vgpu_rm_display_set_edid,
	.display_max_mode = vgpu_rm_display_max_mode,
};

/*
 * The ops that apply to a VF's vGPU (SR-IOV mode): its slice and its
 * migration, through the PF. The rest is vfio-pci-core's or the VF ops'.
 */
const struct vgpu_rm_ops vgpu_rm_vf_vgpu_ops = {
	.vgpu_vram_rw = vgpu_rm_vram_rw,
	.mig_stop = vgpu_rm_mig_stop,
	.mig_resume = vgpu_rm_mig_resume,
	.mig_state_size = vgpu_rm_mig_state_size,
	.mig_save = vgpu_rm_mig_save,
	.mig_restore = vgpu_rm_mig_restore,
	.dirty_start = vgpu_rm_dirty_start,
	.dirty_stop = vgpu_rm_dirty_stop,
	.dirty_read = vgpu_rm_dirty_read,
	.display_plane = vgpu_rm_display_plane,
	.display_set_edid = vgpu_rm_display_set_edid,
	.display_max_mode = vgpu_rm_display_max_mode,
};
