// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * System-memory translation of a partition (SPEC 8): a directory and
 * lazily allocated page tables in coherent DMA memory, filled on
 * replayable translation faults with guest pages the frontend pins, with
 * the access each fault asked for.
 *
 * Faults are serviced per vGPU: the GPU's fault thread only drains the
 * device's queue and hands each entry to its vGPU's fault_work on an
 * unbound workqueue, so a pin that takes long (a hostile VMM's memory)
 * holds up that vGPU alone.
 *
 * Lock order: vgpu->xlate_lock, gpu->xlate_queue_lock, gpu->irq_lock.
 */
#include <linux/bitfield.h>
#include <linux/delay.h>
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
 * queued translation fault from the middle of the queue, as XLATE_RESUME
 * does (vgpu_rm_xlate_resume()); the fault thread reads the head and pops
 * it under the same lock so it never pops an entry it has not seen.
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

/*
 * Drop the partition's cached translations and wait for the device:
 * XLATE_INVALIDATE completes only once no command of the partition can
 * still use a translation made before it (an in-flight one is stopped at
 * a chunk boundary and translates afresh when it goes on, SPEC 8), and
 * the read flushes the posted write. After this, entries cleared before
 * it are used by nobody.
 */
static void vgpu_rm_invalidate(struct vgpu_rm_vgpu *vgpu)
{
	struct vgpu_rm_gpu *gpu = vgpu->gpu;

	/* A vGPU that failed creation has no partition to invalidate. */
	if (!vgpu->placed)
		return;
	writel(1, vgpu_rm_pt_reg(gpu, vgpu->partition,
				 VGPU_PT_XLATE_INVALIDATE));
	readl(vgpu_rm_pt_reg(gpu, vgpu->partition, VGPU_PT_STATE));
}

/* The GPU never writes a read-only pin: nothing to sync back from it. */
static enum dma_data_direction vgpu_rm_pin_dir(const struct vgpu_rm_pin *pin)
{
	return pin->writable ? DMA_BIDIRECTIONAL : DMA_TO_DEVICE;
}

/* A page back to its owner: the frontend's is unpinned, ours freed. */
static void vgpu_rm_put_page(struct vgpu_rm_vgpu *vgpu, u64 iova,
			     struct page *page)
{
	if (!vgpu->cb)
		__free_page(page);
	else if (vgpu->cb->unpin_page)
		vgpu->cb->unpin_page(vgpu->frontend_priv, iova);
}

/* Give a page back: no PTE may point at it any more. */
static void vgpu_rm_unpin(struct vgpu_rm_vgpu *vgpu, unsigned long idx,
			  struct vgpu_rm_pin *pin)
{
	dma_unmap_page(vgpu_rm_dev(vgpu), pin->dma, PAGE_SIZE,
		       vgpu_rm_pin_dir(pin));
	vgpu_rm_put_page(vgpu, (u64)idx << PAGE_SHIFT, pin->page);
	kfree(pin);
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
		vgpu->nr_pins--;
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
	/*
	 * Only pages of the range that are pinned can be in a PTE or in the
	 * TLB (every removal is followed by an invalidate under this lock),
	 * so an unmap of memory the GPU never used costs the partition
	 * nothing. Otherwise the GPU must be done with them before they go
	 * back: a command that then needs one faults, finds it unmapped and
	 * is cancelled, which faults only this partition.
	 */
	if (found) {
		vgpu_rm_invalidate(vgpu);
		xa_for_each_range(&vgpu->pins, idx, pin, first, last) {
			xa_erase(&vgpu->pins, idx);
			vgpu_rm_unpin(vgpu, idx, pin);
			vgpu->nr_pins--;
		}
	}
	mutex_unlock(&vgpu->xlate_lock);
}

/*
 * Pin the page at @iova for reads, and writes if @write, and map it for
 * the GPU. A debugfs vGPU, which has no guest, gets a fresh zeroed page
 * as its "system memory", always writable.
 */
static struct vgpu_rm_pin *vgpu_rm_pin(struct vgpu_rm_vgpu *vgpu, u64 iova,
				       bool write)
{
	struct device *dev = vgpu_rm_dev(vgpu);
	struct vgpu_rm_pin *pin;
	int ret;

	pin = kzalloc(sizeof(*pin), GFP_KERNEL);
	if (!pin)
		return ERR_PTR(-ENOMEM);
	if (vgpu->cb) {
		ret = vgpu->cb->pin_page(vgpu->frontend_priv, iova, write,
					 &pin->page);
		pin->writable = write;
	} else {
		pin->page = alloc_page(GFP_KERNEL | __GFP_ZERO);
		ret = pin->page ? 0 : -ENOMEM;
		pin->writable = true;
	}
	if (ret)
		goto err_free;
	pin->dma = dma_map_page(dev, pin->page, 0, PAGE_SIZE,
				vgpu_rm_pin_dir(pin));
	ret = dma_mapping_error(dev, pin->dma);
	if (ret)
		goto err_put;
	return pin;

err_put:
	vgpu_rm_put_page(vgpu, iova, pin->page);
err_free:
	kfree(pin);
	return ERR_PTR(ret);
}

/*
 * Pin, map and enter the page at @iova, writable if the guest mapped it
 * so, whichever access faulted: the device faults a write to a read-only
 * entry outright (SYSMEM_READ_ONLY, not replayable; SPEC 8), so a
 * read-only entry for a page the guest may write would fault the tenant's
 * next write to it (a semaphore it waited on, then releases). A page
 * mapped read-only is entered read-only, so that a write to it faults
 * with SYSMEM_READ_ONLY, which says what the guest did, where the write
 * pin alone would be cancelled. Caller holds xlate_lock.
 */
static int vgpu_rm_xlate_map(struct vgpu_rm_vgpu *vgpu, u64 iova)
{
	unsigned long idx = iova >> PAGE_SHIFT;
	unsigned int d = iova / VGPU_XLATE_DIR_ENTRY_SPAN;
	struct vgpu_rm_pt *pt = &vgpu->pts[d];
	struct vgpu_rm_pin *pin;
	u64 entry;
	int ret;

	if (xa_load(&vgpu->pins, idx))
		return 0;	/* entered meanwhile: just replay */
	if (vgpu->cb && !vgpu->cb->pin_page)
		return -EOPNOTSUPP;

	if (!pt->cpu) {
		pt->cpu = dma_alloc_coherent(vgpu_rm_dev(vgpu),
					     VGPU_XLATE_PAGE_SIZE, &pt->dma,
					     GFP_KERNEL);
		if (!pt->cpu)
			return -ENOMEM;
		/* The table is zeroed before the directory points at it. */
		dma_wmb();
		WRITE_ONCE(vgpu->dir[d], cpu_to_le64(pt->dma | VGPU_XLATE_VALID));
	}

	pin = vgpu_rm_pin(vgpu, iova, true);
	if (pin == ERR_PTR(-EPERM))
		pin = vgpu_rm_pin(vgpu, iova, false);
	if (IS_ERR(pin))
		return PTR_ERR(pin);
	ret = xa_err(xa_store(&vgpu->pins, idx, pin, GFP_KERNEL));
	if (ret) {
		vgpu_rm_unpin(vgpu, idx, pin);
		return ret;
	}
	vgpu->nr_pins++;

	entry = pin->dma | VGPU_XLATE_VALID;
	if (pin->writable)
		entry |= VGPU_XLATE_WRITABLE;
	/* A miss is not cached: a new entry needs no invalidate. */
	WRITE_ONCE(*vgpu_rm_pte(vgpu, iova), cpu_to_le64(entry));
	return 0;
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
					vgpu_rm_pin_dir(pin));
		*val = *(u64 *)(page_address(pin->page) + offset_in_page(iova));
		ret = 0;
	}
	mutex_unlock(&vgpu->xlate_lock);
	return ret;
}

static void vgpu_rm_resume_locked(struct vgpu_rm_gpu *gpu, unsigned int p,
				  unsigned int action)
{
	lockdep_assert_held(&gpu->xlate_queue_lock);
	writel(FIELD_PREP(VGPU_G_XLATE_RESUME_PARTITION, p) |
	       FIELD_PREP(VGPU_G_XLATE_RESUME_ACTION, action),
	       gpu->regs + VGPU_G_XLATE_RESUME);
}

/* XLATE_RESUME drops p's queued entries: see vgpu_rm_reset_write(). */
static void vgpu_rm_xlate_resume(struct vgpu_rm_gpu *gpu, unsigned int p,
				 unsigned int action)
{
	mutex_lock(&gpu->xlate_queue_lock);
	vgpu_rm_resume_locked(gpu, p, action);
	mutex_unlock(&gpu->xlate_queue_lock);
}

/*
 * A vGPU's translation fault, on gpu->xlate_wq: pin and enter the page,
 * then replay; or cancel, which faults the partition. Only this vGPU
 * waits for the pin.
 */
void vgpu_rm_xlate_work(struct work_struct *work)
{
	struct vgpu_rm_vgpu *vgpu =
		container_of(work, struct vgpu_rm_vgpu, fault_work);
	struct vgpu_rm_gpu *gpu = vgpu->gpu;
	unsigned int p = vgpu->partition;
	unsigned int state, delay_ms;
	bool pending, write;
	u64 addr, iova;
	int ret;

	mutex_lock(&vgpu->xlate_lock);
	spin_lock_irq(&gpu->irq_lock);
	pending = vgpu->fault_pending;
	addr = vgpu->fault_addr;
	write = vgpu->fault_write;
	vgpu->fault_pending = false;
	spin_unlock_irq(&gpu->irq_lock);

	/*
	 * Stale: the partition was stopped or reset since it faulted. Resets
	 * take xlate_lock, so the wait seen here lasts until the resume. It
	 * may be for a later fault not drained yet (a reset came between):
	 * then the replay faults again, and that fault comes here too.
	 */
	state = FIELD_GET(VGPU_PT_STATE_STATE,
			  readl(vgpu_rm_pt_reg(gpu, p, VGPU_PT_STATE)));
	if (!pending || !vgpu->started || state != VGPU_STATE_XLATE_WAIT)
		goto out;

	/* debugfs: stand in for a pin that takes long (tests) */
	delay_ms = READ_ONCE(vgpu->xlate_delay_ms);
	if (delay_ms)
		msleep(delay_ms);

	atomic64_inc(&vgpu->xlate_faults);
	iova = addr & ~(VGPU_XLATE_PAGE_SIZE - 1);
	if (iova >= VGPU_RM_IOVA_LIMIT)
		ret = -ERANGE;
	else
		ret = vgpu_rm_xlate_map(vgpu, iova);
	if (ret) {
		atomic64_inc(&vgpu->xlate_cancels);
		dev_warn_ratelimited(&gpu->pdev->dev, "partition %u: cannot map %s address 0x%llx (%d): fault cancelled\n",
				     p, write ? "write" : "read", addr, ret);
		vgpu_rm_xlate_resume(gpu, p, VGPU_XLATE_RESUME_CANCEL);
	} else {
		vgpu_rm_xlate_resume(gpu, p, VGPU_XLATE_RESUME_RETRY);
	}
out:
	mutex_unlock(&vgpu->xlate_lock);
}

/*
 * Hand a popped fault to its partition's vGPU; cancel one that no vGPU
 * owns (a leftover), while no vGPU can be published on the partition.
 * Caller holds xlate_queue_lock.
 */
static void vgpu_rm_xlate_dispatch(struct vgpu_rm_gpu *gpu, u32 info,
				   u64 addr)
{
	unsigned int p = FIELD_GET(VGPU_G_XLATE_FAULT_INFO_PARTITION, info);
	struct vgpu_rm_vgpu *vgpu;
	unsigned int state;

	if (p >= gpu->partitions) {
		dev_warn_ratelimited(&gpu->pdev->dev, "translation fault names partition %u of %u\n",
				     p, gpu->partitions);
		return;
	}
	/*
	 * Under irq_lock, which delete unpublishes the vGPU under before it
	 * cancels fault_work: no work is queued for a vGPU being deleted.
	 */
	spin_lock_irq(&gpu->irq_lock);
	vgpu = gpu->parts[p].vgpu;
	if (vgpu) {
		vgpu->fault_addr = addr;
		vgpu->fault_write = info & VGPU_G_XLATE_FAULT_INFO_WRITE;
		vgpu->fault_pending = true;
		queue_work(gpu->xlate_wq, &vgpu->fault_work);
	} else {
		state = FIELD_GET(VGPU_PT_STATE_STATE,
				  readl(vgpu_rm_pt_reg(gpu, p, VGPU_PT_STATE)));
		if (state == VGPU_STATE_XLATE_WAIT)
			vgpu_rm_resume_locked(gpu, p, VGPU_XLATE_RESUME_CANCEL);
	}
	spin_unlock_irq(&gpu->irq_lock);
	if (!vgpu)
		dev_warn_ratelimited(&gpu->pdev->dev, "translation fault of partition %u, which has no vGPU\n",
				     p);
}

/* Host vector 1: hand the translation-fault queue to the thread. */
irqreturn_t vgpu_rm_xlate_irq(int irq, void *data)
{
	struct vgpu_rm_gpu *gpu = data;

	writel(VGPU_G_INTR_STATUS_XLATE_FAULT,
	       gpu->regs + VGPU_G_INTR_STATUS);
	return IRQ_WAKE_THREAD;
}

/*
 * Drain the queue: each entry goes to its vGPU's work, so this thread
 * never waits for a pin and one vGPU's faults never wait for another's.
 */
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
		if (!count || !(info & VGPU_G_XLATE_FAULT_INFO_VALID)) {
			mutex_unlock(&gpu->xlate_queue_lock);
			break;
		}
		writel(1, gpu->regs + VGPU_G_XLATE_FAULT_POP);
		vgpu_rm_xlate_dispatch(gpu, info, addr);
		mutex_unlock(&gpu->xlate_queue_lock);
		cond_resched();
	}
	return IRQ_HANDLED;
}
