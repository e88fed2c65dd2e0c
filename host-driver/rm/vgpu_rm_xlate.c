// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * System-memory translation of a partition (SPEC 8): a
 * directory and lazily allocated page tables in coherent DMA memory, filled
 * on replayable translation faults with guest pages the frontend pins.
 */
#include <linux/bitfield.h>
#include <linux/dma-mapping.h>
#include <linux/io.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/slab.h>

#include "vgpu_rm.h"

#define VGPU_RM_DIR_BYTES	(VGPU_RM_DIR_ENTRIES * sizeof(__le64))
#define VGPU_RM_IOVA_LIMIT	((u64)VGPU_RM_DIR_ENTRIES * VGPU_XLATE_DIR_ENTRY_SPAN)

static struct device *vgpu_rm_dev(struct vgpu_rm_vgpu *vgpu)
{
	return &vgpu->gpu->pdev->dev;
}

/*
 * A write that resets a partition (CTRL.ENABLE cleared, RESET) drops its
 * queued translation fault from the middle of the queue; the fault thread
 * reads the head and pops it under the same lock so it never pops an entry
 * it has not seen.
 */
void vgpu_rm_reset_write(struct vgpu_rm_gpu *gpu, u32 val,
			 void __iomem *addr)
{
	mutex_lock(&gpu->xlate_queue_lock);
	writel(val, addr);
	mutex_unlock(&gpu->xlate_queue_lock);
}

int vgpu_rm_xlate_init(struct vgpu_rm_vgpu *vgpu)
{
	vgpu->dir = dma_alloc_coherent(vgpu_rm_dev(vgpu), VGPU_RM_DIR_BYTES,
				       &vgpu->dir_dma, GFP_KERNEL);
	if (!vgpu->dir)
		return -ENOMEM;
	vgpu->pts = kvcalloc(VGPU_RM_DIR_ENTRIES, sizeof(*vgpu->pts),
			     GFP_KERNEL);
	if (!vgpu->pts) {
		dma_free_coherent(vgpu_rm_dev(vgpu), VGPU_RM_DIR_BYTES,
				  vgpu->dir, vgpu->dir_dma);
		vgpu->dir = NULL;
		return -ENOMEM;
	}
	return 0;
}

static __le64 *vgpu_rm_pte(struct vgpu_rm_vgpu *vgpu, u64 iova)
{
	struct vgpu_rm_pt *pt = &vgpu->pts[iova / VGPU_XLATE_DIR_ENTRY_SPAN];

	if (!pt->cpu)
		return NULL;
	return &pt->cpu[(iova / VGPU_XLATE_PAGE_SIZE) %
			VGPU_XLATE_PTES_PER_TABLE];
}

static void vgpu_rm_invalidate(struct vgpu_rm_vgpu *vgpu)
{
	/* A vGPU that failed creation has no partition to invalidate. */
	if (!vgpu->placed)
		return;
	writel(1, vgpu_rm_pt_reg(vgpu->gpu, vgpu->partition,
				 VGPU_PT_XLATE_INVALIDATE));
}

/* Give a page back: no PTE may point at it any more. */
static void vgpu_rm_unpin(struct vgpu_rm_vgpu *vgpu, unsigned long idx,
			  struct vgpu_rm_pin *pin)
{
	dma_unmap_page(vgpu_rm_dev(vgpu), pin->dma, PAGE_SIZE,
		       DMA_BIDIRECTIONAL);
	if (!vgpu->cb)
		__free_page(pin->page);
	else if (vgpu->cb->unpin_page)
		vgpu->cb->unpin_page(vgpu->frontend_priv,
				     (u64)idx << PAGE_SHIFT);
	kfree(pin);
	vgpu->nr_pins--;
}

/* Drop every translation and pinned page. Caller holds xlate_lock. */
void vgpu_rm_xlate_clear(struct vgpu_rm_vgpu *vgpu)
{
	struct vgpu_rm_pin *pin;
	unsigned long idx;
	unsigned int i;

	lockdep_assert_held(&vgpu->xlate_lock);
	if (!vgpu->pts)
		return;
	memset(vgpu->dir, 0, VGPU_RM_DIR_BYTES);
	vgpu_rm_invalidate(vgpu);

	xa_for_each(&vgpu->pins, idx, pin) {
		xa_erase(&vgpu->pins, idx);
		vgpu_rm_unpin(vgpu, idx, pin);
	}
	for (i = 0; i < VGPU_RM_DIR_ENTRIES; i++) {
		if (!vgpu->pts[i].cpu)
			continue;
		dma_free_coherent(vgpu_rm_dev(vgpu), VGPU_XLATE_PAGE_SIZE,
				  vgpu->pts[i].cpu, vgpu->pts[i].dma);
		vgpu->pts[i].cpu = NULL;
	}
}

void vgpu_rm_xlate_destroy(struct vgpu_rm_vgpu *vgpu)
{
	mutex_lock(&vgpu->xlate_lock);
	vgpu_rm_xlate_clear(vgpu);
	mutex_unlock(&vgpu->xlate_lock);
	xa_destroy(&vgpu->pins);
	kvfree(vgpu->pts);
	vgpu->pts = NULL;
	if (vgpu->dir)
		dma_free_coherent(vgpu_rm_dev(vgpu), VGPU_RM_DIR_BYTES,
				  vgpu->dir, vgpu->dir_dma);
	vgpu->dir = NULL;
}

static unsigned int vgpu_rm_partition_state(struct vgpu_rm_vgpu *vgpu)
{
	return FIELD_GET(VGPU_PT_STATE_STATE,
			 readl(vgpu_rm_pt_reg(vgpu->gpu, vgpu->partition,
					      VGPU_PT_STATE)));
}

void vgpu_rm_dma_unmap(struct vgpu_rm_vgpu *vgpu, u64 iova, u64 size)
{
	unsigned long first, last, idx;
	struct vgpu_rm_pin *pin;
	bool found = false;
	__le64 *pte;

	if (!size)
		return;
	first = iova >> PAGE_SHIFT;
	last = iova + size - 1 < iova ? ULONG_MAX : (iova + size - 1) >> PAGE_SHIFT;

	mutex_lock(&vgpu->xlate_lock);
	xa_for_each_range(&vgpu->pins, idx, pin, first, last) {
		pte = vgpu_rm_pte(vgpu, (u64)idx << PAGE_SHIFT);
		if (pte)
			WRITE_ONCE(*pte, 0);
		found = true;
	}
	if (found) {
		/* The GPU must not use the pages once they are unpinned. */
		vgpu_rm_invalidate(vgpu);
		/*
		 * A command translates its whole range before it moves data,
		 * so one running now may still write pages of this range
		 * through translations it made before the invalidate. Stop it
		 * (partition reset) before the pages go back to the kernel:
		 * the guest unmapped memory under its own DMA. A command that
		 * starts after the invalidate sees the cleared entries.
		 */
		if (vgpu_rm_partition_state(vgpu) == VGPU_STATE_BUSY) {
			dev_warn_ratelimited(vgpu_rm_dev(vgpu),
					     "partition %u: DMA unmap of pages in use by a running command: partition reset\n",
					     vgpu->partition);
			vgpu_rm_reset_write(vgpu->gpu, 1,
					    vgpu_rm_pt_reg(vgpu->gpu, vgpu->partition,
							   VGPU_PT_RESET));
		}
		xa_for_each_range(&vgpu->pins, idx, pin, first, last) {
			xa_erase(&vgpu->pins, idx);
			vgpu_rm_unpin(vgpu, idx, pin);
		}
	}
	mutex_unlock(&vgpu->xlate_lock);
}

/*
 * A frontend's vGPU gets the guest's page; a debugfs vGPU, which has no
 * guest, gets a fresh zeroed page as its "system memory".
 */
static int vgpu_rm_pin_page(struct vgpu_rm_vgpu *vgpu, u64 iova,
			    struct page **page)
{
	if (vgpu->cb)
		return vgpu->cb->pin_page(vgpu->frontend_priv, iova, true, page);
	*page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	return *page ? 0 : -ENOMEM;
}

/* Pin, map and enter the page at @iova. Caller holds xlate_lock. */
static int vgpu_rm_xlate_map(struct vgpu_rm_vgpu *vgpu, u64 iova)
{
	struct device *dev = vgpu_rm_dev(vgpu);
	unsigned long idx = iova >> PAGE_SHIFT;
	unsigned int d = iova / VGPU_XLATE_DIR_ENTRY_SPAN;
	struct vgpu_rm_pt *pt = &vgpu->pts[d];
	struct vgpu_rm_pin *pin;
	struct page *page;
	__le64 *pte;
	int ret;

	if (xa_load(&vgpu->pins, idx))
		return 0;	/* entered meanwhile: just replay */
	if (vgpu->cb && !vgpu->cb->pin_page)
		return -EOPNOTSUPP;

	if (!pt->cpu) {
		pt->cpu = dma_alloc_coherent(dev, VGPU_XLATE_PAGE_SIZE,
					     &pt->dma, GFP_KERNEL);
		if (!pt->cpu)
			return -ENOMEM;
		/* The table is zeroed before the directory points at it. */
		dma_wmb();
		WRITE_ONCE(vgpu->dir[d], cpu_to_le64(pt->dma | VGPU_XLATE_VALID));
	}

	pin = kzalloc(sizeof(*pin), GFP_KERNEL);
	if (!pin)
		return -ENOMEM;
	ret = vgpu_rm_pin_page(vgpu, iova, &page);
	if (ret)
		goto err_free;
	pin->page = page;
	pin->dma = dma_map_page(dev, page, 0, PAGE_SIZE, DMA_BIDIRECTIONAL);
	ret = dma_mapping_error(dev, pin->dma);
	if (ret)
		goto err_unpin;
	ret = xa_err(xa_store(&vgpu->pins, idx, pin, GFP_KERNEL));
	if (ret)
		goto err_unmap;
	vgpu->nr_pins++;

	pte = vgpu_rm_pte(vgpu, iova);
	/* A miss is not cached: a new entry needs no invalidate. */
	WRITE_ONCE(*pte, cpu_to_le64(pin->dma | VGPU_XLATE_VALID |
				     VGPU_XLATE_WRITABLE));
	return 0;

err_unmap:
	dma_unmap_page(dev, pin->dma, PAGE_SIZE, DMA_BIDIRECTIONAL);
err_unpin:
	if (!vgpu->cb)
		__free_page(page);
	else if (vgpu->cb->unpin_page)
		vgpu->cb->unpin_page(vgpu->frontend_priv, iova);
err_free:
	kfree(pin);
	return ret;
}

/* The 64-bit word at @iova of a debugfs vGPU's memory, for testing. */
int vgpu_rm_xlate_peek(struct vgpu_rm_vgpu *vgpu, u64 iova, u64 *val)
{
	struct vgpu_rm_pin *pin;
	int ret = -ENOENT;

	if (vgpu->cb || !IS_ALIGNED(iova, sizeof(u64)))
		return -EINVAL;
	mutex_lock(&vgpu->xlate_lock);
	pin = xa_load(&vgpu->pins, iova >> PAGE_SHIFT);
	if (pin) {
		dma_sync_single_for_cpu(vgpu_rm_dev(vgpu), pin->dma, PAGE_SIZE,
					DMA_BIDIRECTIONAL);
		*val = *(u64 *)(page_address(pin->page) + offset_in_page(iova));
		ret = 0;
	}
	mutex_unlock(&vgpu->xlate_lock);
	return ret;
}

static void vgpu_rm_xlate_resume(struct vgpu_rm_gpu *gpu, unsigned int p,
				 unsigned int action)
{
	writel(FIELD_PREP(VGPU_G_XLATE_RESUME_PARTITION, p) |
	       FIELD_PREP(VGPU_G_XLATE_RESUME_ACTION, action),
	       gpu->regs + VGPU_G_XLATE_RESUME);
}

static void vgpu_rm_xlate_service(struct vgpu_rm_gpu *gpu, unsigned int p,
				  u64 addr, bool write)
{
	struct device *dev = &gpu->pdev->dev;
	struct vgpu_rm_vgpu *vgpu;
	u64 iova = addr & ~(VGPU_XLATE_PAGE_SIZE - 1);
	unsigned int state;
	int ret;

	if (p >= gpu->partitions) {
		dev_warn_ratelimited(dev, "translation fault names partition %u of %u\n",
				     p, gpu->partitions);
		return;
	}
	/*
	 * The vGPU stays allocated while it is serviced: delete unpublishes it
	 * and then waits for vgpu->servicing to drop to zero (only for this
	 * vGPU: other tenants' faults keep this thread busy, not the delete).
	 */
	spin_lock_irq(&gpu->irq_lock);
	vgpu = gpu->parts[p].vgpu;
	if (vgpu)
		atomic_inc(&vgpu->servicing);
	spin_unlock_irq(&gpu->irq_lock);

	state = FIELD_GET(VGPU_PT_STATE_STATE,
			  readl(vgpu_rm_pt_reg(gpu, p, VGPU_PT_STATE)));
	if (!vgpu) {
		if (state == VGPU_STATE_XLATE_WAIT)
			vgpu_rm_xlate_resume(gpu, p, VGPU_XLATE_RESUME_CANCEL);
		dev_warn_ratelimited(dev, "translation fault of partition %u, which has no vGPU\n",
				     p);
		return;
	}

	mutex_lock(&vgpu->xlate_lock);
	/* Stale: the partition was stopped or reset since it faulted. */
	state = FIELD_GET(VGPU_PT_STATE_STATE,
			  readl(vgpu_rm_pt_reg(gpu, p, VGPU_PT_STATE)));
	if (!vgpu->started || state != VGPU_STATE_XLATE_WAIT)
		goto out;

	atomic64_inc(&vgpu->xlate_faults);
	if (iova >= VGPU_RM_IOVA_LIMIT)
		ret = -ERANGE;
	else
		ret = vgpu_rm_xlate_map(vgpu, iova);
	if (ret) {
		atomic64_inc(&vgpu->xlate_cancels);
		dev_warn_ratelimited(dev, "partition %u: cannot map %s address 0x%llx (%d): fault cancelled\n",
				     p, write ? "write" : "read", addr, ret);
		vgpu_rm_xlate_resume(gpu, p, VGPU_XLATE_RESUME_CANCEL);
	} else {
		vgpu_rm_xlate_resume(gpu, p, VGPU_XLATE_RESUME_RETRY);
	}
out:
	mutex_unlock(&vgpu->xlate_lock);
	/* wake_up_var() only hashes the address: safe if delete frees now. */
	if (atomic_dec_and_test(&vgpu->servicing))
		wake_up_var(&vgpu->servicing);
}

/* Host vector 1: hand the translation-fault queue to the thread. */
irqreturn_t vgpu_rm_xlate_irq(int irq, void *data)
{
	struct vgpu_rm_gpu *gpu = data;

	writel(VGPU_G_INTR_STATUS_XLATE_FAULT,
	       gpu->regs + VGPU_G_INTR_STATUS);
	return IRQ_WAKE_THREAD;
}

/* Process context: pinning a guest page may sleep. */
irqreturn_t vgpu_rm_xlate_thread(int irq, void *data)
{
	struct vgpu_rm_gpu *gpu = data;
	u32 count, info;
	u64 addr;

	for (;;) {
		mutex_lock(&gpu->xlate_queue_lock);
		count = readl(gpu->regs + VGPU_G_XLATE_FAULT_COUNT);
		info = readl(gpu->regs + VGPU_G_XLATE_FAULT_INFO);
		addr = readq(gpu->regs + VGPU_G_XLATE_FAULT_ADDR);
		if (count && (info & VGPU_G_XLATE_FAULT_INFO_VALID))
			writel(1, gpu->regs + VGPU_G_XLATE_FAULT_POP);
		mutex_unlock(&gpu->xlate_queue_lock);
		if (!count || !(info & VGPU_G_XLATE_FAULT_INFO_VALID))
			break;

		vgpu_rm_xlate_service(gpu,
				      FIELD_GET(VGPU_G_XLATE_FAULT_INFO_PARTITION, info),
				      addr, info & VGPU_G_XLATE_FAULT_INFO_WRITE);
		cond_resched();
	}
	return IRQ_HANDLED;
}
