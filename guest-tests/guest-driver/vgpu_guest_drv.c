// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vgpu_guest_drv.c - reference guest driver for a vgpu-pci vGPU (PCI
 * 1234:7691), the example to read first: a DRM driver ("vgpu") as real GPU
 * drivers are. BAR0 is one partition window (vdevice/SPEC.md sections 4-6,
 * 9-11), BAR2 the partition's VRAM, BAR4 MSI-X with vector 0 for the engine
 * (fences) and the display head, vector 1 for faults.
 *
 * This file is the device: probe, the command rings, interrupts and the
 * driver ioctls (vgpu_drm.h). vgpu_guest_kms.c drives the display head.
 *
 * Both command rings live in system memory (RING_CTRL.SYSMEM=1): the host
 * RM translates this guest's bus addresses for the device, on demand.
 * User space gets the DRM nodes: KMS and dumb buffers in VRAM on the
 * primary node; on either node (root only) submit commands, wait for
 * fences, reset, and mmap a DMA buffer.
 */
#include <linux/aperture.h>
#include <linux/bitfield.h>
#include <linux/dma-mapping.h>
#include <linux/interrupt.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include <drm/drm_atomic_helper.h>
#include <drm/drm_drv.h>
#include <drm/drm_fbdev_ttm.h>
#include <drm/drm_file.h>
#include <drm/drm_gem.h>
#include <drm/drm_gem_ttm_helper.h>
#include <drm/drm_gem_vram_helper.h>
#include <drm/drm_ioctl.h>
#include <drm/drm_managed.h>
#include <drm/drm_module.h>
#include <drm/drm_vma_manager.h>

#include "vgpu_guest.h"

#define VGPU_GUEST_WINDOW_SIZE	0x2000	/* registers page + doorbell page */
/* The display head's interrupt causes, on the engine vector. */
#define VGPU_GUEST_INTR_DISP	(VGPU_W_INTR_STATUS_VBLANK | \
				 VGPU_W_INTR_STATUS_FLIP_DONE | \
				 VGPU_W_INTR_STATUS_HOTPLUG)

static unsigned int buf_kib = 1024;
module_param(buf_kib, uint, 0444);
MODULE_PARM_DESC(buf_kib, "DMA buffer for user space, KiB (4..65536, default 1024)");

/* Point both rings at their memory and write the interrupt mask. */
static void vgpu_guest_hw_init(struct vgpu_guest *vg)
{
	unsigned int n;

	for (n = 0; n < DRM_VGPU_RINGS; n++) {
		vgpu_wr32(vg, VGPU_W_RING_CTRL(n), VGPU_W_RING_CTRL_SYSMEM);
		vgpu_wr64(vg, VGPU_W_RING_BASE(n), vg->ring[n].cmds_dma);
		/* Writing the size also sets HEAD and TAIL to 0. */
		vgpu_wr32(vg, VGPU_W_RING_SIZE(n), VGPU_GUEST_RING_ENTRIES);
		vg->ring[n].tail = 0;
	}
	spin_lock_irq(&vg->irq_lock);
	vgpu_wr32(vg, VGPU_W_INTR_MASK, vg->intr_mask);
	spin_unlock_irq(&vg->irq_lock);
}

/*
 * Unmask (on) or mask interrupt causes. Called from any context, e.g. by
 * DRM's vblank code with its spinlock held.
 */
void vgpu_guest_set_intr(struct vgpu_guest *vg, u32 bits, bool on)
{
	unsigned long flags;

	spin_lock_irqsave(&vg->irq_lock, flags);
	if (on)
		vg->intr_mask |= bits;
	else
		vg->intr_mask &= ~bits;
	if (!vg->gone)
		vgpu_wr32(vg, VGPU_W_INTR_MASK, vg->intr_mask);
	spin_unlock_irqrestore(&vg->irq_lock, flags);
}

/* Take in the fence values the device wrote. Called with irq_lock held. */
static void vgpu_guest_update_fences(struct vgpu_guest *vg)
{
	unsigned int n;

	for (n = 0; n < DRM_VGPU_RINGS; n++) {
		struct vgpu_guest_ring *r = &vg->ring[n];
		u64 v = le64_to_cpu(READ_ONCE(vg->fences[n]));

		if (v > r->completed && v <= r->submitted)
			r->completed = v;
	}
}

/* Record a fault from FAULT_STATUS/FAULT_ADDR. Called with irq_lock held. */
static void vgpu_guest_record_fault(struct vgpu_guest *vg, u32 status, u64 addr)
{
	if (FIELD_GET(VGPU_W_FAULT_STATUS_CODE, status) == VGPU_FAULT_NONE)
		return;
	vg->faulted = true;
	vg->fault_status = status;
	vg->fault_addr = addr;
}

/* The engine vector's causes in `status`: fences and the display head. */
static void vgpu_guest_engine_events(struct vgpu_guest *vg, u32 status)
{
	/* Ack first: an event after the ack raises the interrupt again. */
	if (status)
		vgpu_wr32(vg, VGPU_W_INTR_STATUS, status);
	spin_lock(&vg->irq_lock);
	if (status & (VGPU_W_INTR_STATUS_FENCE | VGPU_W_INTR_STATUS_IDLE))
		vg->engine_irqs++;
	vg->vblank_irqs += !!(status & VGPU_W_INTR_STATUS_VBLANK);
	vg->flip_irqs += !!(status & VGPU_W_INTR_STATUS_FLIP_DONE);
	vg->hotplug_irqs += !!(status & VGPU_W_INTR_STATUS_HOTPLUG);
	vgpu_guest_update_fences(vg);
	spin_unlock(&vg->irq_lock);
	wake_up_all(&vg->wait);
	if (status & VGPU_GUEST_INTR_DISP)
		vgpu_guest_disp_irq(vg, status);
}

/* MSI-X vector 0: FENCE (and IDLE), VBLANK, FLIP_DONE, HOTPLUG */
static irqreturn_t vgpu_guest_engine_irq(int irq, void *data)
{
	struct vgpu_guest *vg = data;
	u32 status = vgpu_rd32(vg, VGPU_W_INTR_STATUS);

	/* A masked cause may be pending too: leave it to its unmasking. */
	vgpu_guest_engine_events(vg, status & READ_ONCE(vg->intr_mask) &
				 ~VGPU_W_INTR_STATUS_FAULT);
	return IRQ_HANDLED;
}

/* MSI-X vector 1: FAULT. The partition runs nothing until a reset. */
static irqreturn_t vgpu_guest_fault_irq(int irq, void *data)
{
	struct vgpu_guest *vg = data;
	u32 status;
	u64 addr;

	vgpu_wr32(vg, VGPU_W_INTR_STATUS, VGPU_W_INTR_STATUS_FAULT);
	/*
	 * Read the fault under the lock that the RESET ioctl holds around its
	 * reset: a fault read before a reset must not be recorded after it.
	 */
	spin_lock(&vg->irq_lock);
	status = vgpu_rd32(vg, VGPU_W_FAULT_STATUS);
	addr = vgpu_rd64(vg, VGPU_W_FAULT_ADDR);
	vg->fault_irqs++;
	vgpu_guest_record_fault(vg, status, addr);
	spin_unlock(&vg->irq_lock);
	wake_up_all(&vg->wait);
	return IRQ_HANDLED;
}

/* One vector for everything (MSI or INTx, which may be shared). */
static irqreturn_t vgpu_guest_single_irq(int irq, void *data)
{
	struct vgpu_guest *vg = data;
	u32 status = vgpu_rd32(vg, VGPU_W_INTR_STATUS);

	/* On a shared line only our unmasked causes are ours (IDLE is masked). */
	if (status == ~0u)
		return IRQ_NONE;
	status &= READ_ONCE(vg->intr_mask);
	if (!status)
		return IRQ_NONE;
	if (status & ~VGPU_W_INTR_STATUS_FAULT)
		vgpu_guest_engine_events(vg, status & ~VGPU_W_INTR_STATUS_FAULT);
	if (status & VGPU_W_INTR_STATUS_FAULT)
		vgpu_guest_fault_irq(irq, data);
	return IRQ_HANDLED;
}

static int vgpu_guest_setup_irqs(struct vgpu_guest *vg)
{
	struct pci_dev *pdev = vg->pdev;
	struct device *dev = &pdev->dev;
	const char *name = dev_name(dev);
	int nvec, ret;

	nvec = pci_alloc_irq_vectors(pdev, 1, VGPU_VECTORS_PER_PARTITION, PCI_IRQ_ALL_TYPES);
	if (nvec < 0)
		return nvec;
	if (pdev->msix_enabled)
		vg->irq_mode = DRM_VGPU_IRQ_MSIX;
	else if (pdev->msi_enabled)
		vg->irq_mode = DRM_VGPU_IRQ_MSI;
	else
		vg->irq_mode = DRM_VGPU_IRQ_INTX;

	if (nvec == VGPU_VECTORS_PER_PARTITION) {
		ret = devm_request_irq(dev, pci_irq_vector(pdev, VGPU_PART_VECTOR_ENGINE),
				       vgpu_guest_engine_irq, 0, name, vg);
		if (ret)
			return ret;
		return devm_request_irq(dev, pci_irq_vector(pdev, VGPU_PART_VECTOR_FAULT),
					vgpu_guest_fault_irq, 0, name, vg);
	}
	return devm_request_irq(dev, pci_irq_vector(pdev, 0), vgpu_guest_single_irq,
				IRQF_SHARED, name, vg);
}

/* ---- the command rings ------------------------------------------------------ */

static u32 vgpu_guest_ring_free(struct vgpu_guest *vg, unsigned int n)
{
	u32 head = vgpu_rd32(vg, VGPU_W_RING_HEAD(n));
	u32 used = (vg->ring[n].tail - head) & (VGPU_GUEST_RING_ENTRIES - 1);

	return VGPU_GUEST_RING_ENTRIES - 1 - used;
}

static bool vgpu_guest_faulted(struct vgpu_guest *vg)
{
	bool faulted;

	spin_lock_irq(&vg->irq_lock);
	faulted = vg->faulted;
	spin_unlock_irq(&vg->irq_lock);
	return faulted;
}

/* Wait (holding vg->lock) until ring n has room for `need` commands. */
static int vgpu_guest_ring_reserve(struct vgpu_guest *vg, unsigned int n, u32 need)
{
	long left;

	if (vgpu_guest_faulted(vg))
		return -EIO;
	left = wait_event_interruptible_timeout(vg->wait,
						vgpu_guest_faulted(vg) ||
						vgpu_guest_ring_free(vg, n) >= need,
						5 * HZ);
	if (left < 0)
		return left;
	if (vgpu_guest_faulted(vg))
		return -EIO;
	return left ? 0 : -EBUSY;
}

/*
 * Append count commands and a FENCE with INTR to ring n and ring its
 * doorbell; *fence is the value that FENCE signals. Called with vg->lock.
 */
static int vgpu_guest_submit_locked(struct vgpu_guest *vg, unsigned int n,
				    const struct drm_vgpu_cmd *cmds, u32 count,
				    u64 *fence)
{
	struct vgpu_guest_ring *r = &vg->ring[n];
	struct drm_vgpu_cmd fence_cmd = {
		.opcode = VGPU_OP_FENCE,
		.flags = VGPU_CMD_DST_SYSMEM | VGPU_CMD_INTR,
		.dst = cpu_to_le64(vg->fences_dma + n * sizeof(u64)),
		.value = cpu_to_le64(r->submitted + 1),
	};
	int ret;
	u32 i;

	ret = vg->gone ? -ENODEV : vgpu_guest_ring_reserve(vg, n, count + 1);
	if (ret)
		return ret;
	for (i = 0; i < count; i++) {
		r->cmds[r->tail] = cmds[i];
		r->tail = (r->tail + 1) % VGPU_GUEST_RING_ENTRIES;
	}
	r->cmds[r->tail] = fence_cmd;
	r->tail = (r->tail + 1) % VGPU_GUEST_RING_ENTRIES;
	spin_lock_irq(&vg->irq_lock);
	*fence = ++r->submitted;
	spin_unlock_irq(&vg->irq_lock);
	/* writel orders the ring writes above before the doorbell. */
	vgpu_wr32(vg, VGPU_W_DOORBELL(n), r->tail);
	return 0;
}

/* 1: signalled; -EIO: faulted first; -ENODEV: removed; 0: not yet. */
static int vgpu_guest_fence_state(struct vgpu_guest *vg, u32 ring, u64 fence)
{
	int state = 0;

	spin_lock_irq(&vg->irq_lock);
	if (vg->ring[ring].completed >= fence)
		state = 1;
	else if (vg->faulted)
		state = -EIO;
	else if (vg->gone)
		state = -ENODEV;
	spin_unlock_irq(&vg->irq_lock);
	return state;
}

/* Look at the device directly, for an interrupt that never came. */
static void vgpu_guest_poll(struct vgpu_guest *vg)
{
	u32 status = 0;
	u64 addr = 0;

	mutex_lock(&vg->lock);
	if (!vg->gone) {
		status = vgpu_rd32(vg, VGPU_W_FAULT_STATUS);
		addr = vgpu_rd64(vg, VGPU_W_FAULT_ADDR);
	}
	spin_lock_irq(&vg->irq_lock);
	vgpu_guest_update_fences(vg);
	vgpu_guest_record_fault(vg, status, addr);
	spin_unlock_irq(&vg->irq_lock);
	mutex_unlock(&vg->lock);
}

/* The driver's own work (vgpu_guest_kms.c): submit and wait, up to 5 s. */
int vgpu_guest_run(struct vgpu_guest *vg, unsigned int ring,
		   const struct drm_vgpu_cmd *cmds, u32 count)
{
	u64 fence;
	long left;
	int state;

	mutex_lock(&vg->lock);
	state = vgpu_guest_submit_locked(vg, ring, cmds, count, &fence);
	mutex_unlock(&vg->lock);
	if (state)
		return state;
	left = wait_event_timeout(vg->wait, (state = vgpu_guest_fence_state(vg, ring, fence)),
				  5 * HZ);
	if (!left) {
		vgpu_guest_poll(vg);
		state = vgpu_guest_fence_state(vg, ring, fence);
		if (!state)
			return -ETIMEDOUT;
	}
	return state < 0 ? state : 0;
}

/* ---- driver ioctls (vgpu_drm.h) --------------------------------------------- */

static int vgpu_guest_ioctl_submit(struct drm_device *drm, void *data, struct drm_file *file)
{
	struct vgpu_guest *vg = to_vgpu_guest(drm);
	struct drm_vgpu_submit *s = data;
	struct drm_vgpu_cmd *cmds;
	int ret;

	if (s->ring >= DRM_VGPU_RINGS || !s->count || s->count > DRM_VGPU_MAX_SUBMIT)
		return -EINVAL;
	cmds = memdup_array_user(u64_to_user_ptr(s->cmds), s->count, sizeof(*cmds));
	if (IS_ERR(cmds))
		return PTR_ERR(cmds);
	mutex_lock(&vg->lock);
	ret = vgpu_guest_submit_locked(vg, s->ring, cmds, s->count, &s->fence);
	mutex_unlock(&vg->lock);
	kfree(cmds);
	return ret;
}

static int vgpu_guest_ioctl_wait_fence(struct drm_device *drm, void *data,
				       struct drm_file *file)
{
	struct vgpu_guest *vg = to_vgpu_guest(drm);
	struct drm_vgpu_wait *w = data;
	u64 submitted;
	long left;
	int state;

	if (w->ring >= DRM_VGPU_RINGS || w->timeout_ms > DRM_VGPU_MAX_WAIT_MS ||
	    w->reserved)
		return -EINVAL;
	spin_lock_irq(&vg->irq_lock);
	submitted = vg->ring[w->ring].submitted;
	spin_unlock_irq(&vg->irq_lock);
	if (w->fence > submitted)
		return -EINVAL;	/* would never signal */

	left = wait_event_interruptible_timeout(vg->wait,
						(state = vgpu_guest_fence_state(vg, w->ring,
										w->fence)),
						msecs_to_jiffies(w->timeout_ms));
	if (left < 0)
		return left;
	if (!left) {
		vgpu_guest_poll(vg);
		state = vgpu_guest_fence_state(vg, w->ring, w->fence);
		if (!state)
			return -ETIMEDOUT;
	}
	/* drm_ioctl copies the struct back on errors too. */
	if (state == -EIO) {
		spin_lock_irq(&vg->irq_lock);
		w->fault_status = vg->fault_status;
		w->fault_addr = vg->fault_addr;
		spin_unlock_irq(&vg->irq_lock);
	}
	return state < 0 ? state : 0;
}

static int vgpu_guest_ioctl_reset(struct drm_device *drm, void *data, struct drm_file *file)
{
	struct vgpu_guest *vg = to_vgpu_guest(drm);
	unsigned int n;

	mutex_lock(&vg->lock);
	if (vg->gone) {
		mutex_unlock(&vg->lock);
		return -ENODEV;
	}
	/* Quiesces the partition; rings, interrupt mask and head go back to 0. */
	spin_lock_irq(&vg->irq_lock);
	vgpu_wr32(vg, VGPU_W_RESET, 1);
	vg->faulted = false;
	vg->fault_status = 0;
	vg->fault_addr = 0;
	for (n = 0; n < DRM_VGPU_RINGS; n++)
		vg->ring[n].completed = vg->ring[n].submitted;
	spin_unlock_irq(&vg->irq_lock);
	vgpu_guest_hw_init(vg);
	vgpu_guest_disp_restore(vg);
	mutex_unlock(&vg->lock);
	wake_up_all(&vg->wait);
	return 0;
}

static int vgpu_guest_ioctl_info(struct drm_device *drm, void *data, struct drm_file *file)
{
	struct vgpu_guest *vg = to_vgpu_guest(drm);
	struct drm_vgpu_info *info = data;

	*info = (struct drm_vgpu_info) {
		.vram_size = vg->vram_size,
		.vram_bus_addr = pci_resource_start(vg->pdev, VGPU_VRAM_BAR),
		.buf_size = vg->buf_size,
		.buf_bus_addr = vg->buf_dma,
		.partition = vg->partition,
		.irq_mode = vg->irq_mode,
		.ring_entries = VGPU_GUEST_RING_ENTRIES,
		.caps = vg->caps,
	};
	spin_lock_irq(&vg->irq_lock);
	info->engine_irqs = vg->engine_irqs;
	info->fault_irqs = vg->fault_irqs;
	info->vblank_irqs = vg->vblank_irqs;
	info->flip_irqs = vg->flip_irqs;
	info->hotplug_irqs = vg->hotplug_irqs;
	spin_unlock_irq(&vg->irq_lock);
	return 0;
}

/* ---- GEM objects pinned in VRAM for user space's commands ------------------ */

struct vgpu_guest_pin {
	struct list_head link;
	struct drm_gem_object *obj;	/* a reference, and a VRAM pin */
};

/* The file's pins: struct drm_file's driver_priv. */
struct vgpu_guest_file {
	struct mutex lock;
	struct list_head pins;
};

static int vgpu_guest_open(struct drm_device *drm, struct drm_file *file)
{
	struct vgpu_guest_file *vf = kzalloc(sizeof(*vf), GFP_KERNEL);

	if (!vf)
		return -ENOMEM;
	mutex_init(&vf->lock);
	INIT_LIST_HEAD(&vf->pins);
	file->driver_priv = vf;
	return 0;
}

static void vgpu_guest_unpin(struct vgpu_guest_pin *pin)
{
	list_del(&pin->link);
	drm_gem_vram_unpin(drm_gem_vram_of_gem(pin->obj));
	drm_gem_object_put(pin->obj);
	kfree(pin);
}

/* After the file's handles are gone: its pins hold the last references. */
static void vgpu_guest_postclose(struct drm_device *drm, struct drm_file *file)
{
	struct vgpu_guest_file *vf = file->driver_priv;
	struct vgpu_guest_pin *pin, *next;

	list_for_each_entry_safe(pin, next, &vf->pins, link)
		vgpu_guest_unpin(pin);
	mutex_destroy(&vf->lock);
	kfree(vf);
}

static struct vgpu_guest_pin *vgpu_guest_find_pin(struct vgpu_guest_file *vf,
						  struct drm_gem_object *obj)
{
	struct vgpu_guest_pin *pin;

	list_for_each_entry(pin, &vf->pins, link)
		if (pin->obj == obj)
			return pin;
	return NULL;
}

static int vgpu_guest_ioctl_gem_vram(struct drm_device *drm, void *data,
				     struct drm_file *file)
{
	struct vgpu_guest_file *vf = file->driver_priv;
	struct drm_vgpu_gem_vram *g = data;
	struct vgpu_guest_pin *pin;
	struct drm_gem_object *obj;
	s64 offset;
	int ret = 0;

	if (g->flags & ~DRM_VGPU_GEM_VRAM_PIN)
		return -EINVAL;
	obj = drm_gem_object_lookup(file, g->handle);
	if (!obj)
		return -ENOENT;
	mutex_lock(&vf->lock);
	pin = vgpu_guest_find_pin(vf, obj);
	if (!(g->flags & DRM_VGPU_GEM_VRAM_PIN)) {
		if (pin)
			vgpu_guest_unpin(pin);
		else
			ret = -EINVAL;
		goto out;
	}
	if (!pin) {
		pin = kzalloc(sizeof(*pin), GFP_KERNEL);
		if (!pin) {
			ret = -ENOMEM;
			goto out;
		}
		ret = drm_gem_vram_pin(drm_gem_vram_of_gem(obj), DRM_GEM_VRAM_PL_FLAG_VRAM);
		if (ret) {
			kfree(pin);
			goto out;
		}
		drm_gem_object_get(obj);
		pin->obj = obj;
		list_add(&pin->link, &vf->pins);
	}
	offset = drm_gem_vram_offset(drm_gem_vram_of_gem(obj));
	if (offset < 0)
		ret = offset;
	else
		g->offset = offset;
out:
	mutex_unlock(&vf->lock);
	drm_gem_object_put(obj);
	return ret;
}

/* Root only on either node: commands carry raw bus addresses. */
#define VGPU_GUEST_IOCTL_FLAGS	(DRM_ROOT_ONLY | DRM_RENDER_ALLOW)

static const struct drm_ioctl_desc vgpu_guest_ioctls[] = {
	DRM_IOCTL_DEF_DRV(VGPU_INFO, vgpu_guest_ioctl_info, VGPU_GUEST_IOCTL_FLAGS),
	DRM_IOCTL_DEF_DRV(VGPU_SUBMIT, vgpu_guest_ioctl_submit, VGPU_GUEST_IOCTL_FLAGS),
	DRM_IOCTL_DEF_DRV(VGPU_WAIT_FENCE, vgpu_guest_ioctl_wait_fence,
			  VGPU_GUEST_IOCTL_FLAGS),
	DRM_IOCTL_DEF_DRV(VGPU_RESET, vgpu_guest_ioctl_reset, VGPU_GUEST_IOCTL_FLAGS),
	DRM_IOCTL_DEF_DRV(VGPU_GEM_VRAM, vgpu_guest_ioctl_gem_vram, VGPU_GUEST_IOCTL_FLAGS),
};

/*
 * Offset DRM_VGPU_BUF_MMAP_OFFSET: the DMA buffer, at most buf_size bytes;
 * GEM objects (dumb buffers) at their fake offsets, above 4 GiB.
 */
static int vgpu_guest_mmap(struct file *filp, struct vm_area_struct *vma)
{
	struct drm_file *file = filp->private_data;
	struct vgpu_guest *vg = to_vgpu_guest(file->minor->dev);

	if (vma->vm_pgoff >= DRM_FILE_PAGE_OFFSET_START)
		return drm_gem_mmap(filp, vma);
	if (!capable(CAP_SYS_ADMIN))
		return -EACCES;
	if (vma->vm_pgoff != DRM_VGPU_BUF_MMAP_OFFSET >> PAGE_SHIFT ||
	    vma->vm_end - vma->vm_start > vg->buf_size)
		return -EINVAL;
	return dma_mmap_coherent(&vg->pdev->dev, vma, vg->buf, vg->buf_dma,
				 vma->vm_end - vma->vm_start);
}

static const struct file_operations vgpu_guest_fops = {
	/* DRM_GEM_FOPS, with the DMA buffer added to mmap */
	.owner = THIS_MODULE,
	.open = drm_open,
	.release = drm_release,
	.unlocked_ioctl = drm_ioctl,
	.compat_ioctl = drm_compat_ioctl,
	.poll = drm_poll,
	.read = drm_read,
	.llseek = noop_llseek,
	.mmap = vgpu_guest_mmap,
	.fop_flags = FOP_UNSIGNED_OFFSET,
};

static const struct drm_driver vgpu_guest_drm_driver = {
	.driver_features = DRIVER_GEM | DRIVER_MODESET | DRIVER_ATOMIC | DRIVER_RENDER,
	.fops = &vgpu_guest_fops,
	.open = vgpu_guest_open,
	.postclose = vgpu_guest_postclose,
	.ioctls = vgpu_guest_ioctls,
	.num_ioctls = ARRAY_SIZE(vgpu_guest_ioctls),
	.name = "vgpu",
	.desc = "vgpu-pci vGPU (reference guest driver)",
	.date = "20261129",
	.major = 1,
	.minor = 0,
	/* DRM_GEM_VRAM_DRIVER, with dumb buffers cleared by the engine */
	.debugfs_init = drm_vram_mm_debugfs_init,
	.dumb_create = vgpu_guest_dumb_create,
	.dumb_map_offset = drm_gem_ttm_dumb_map_offset,
};

/* ---- PCI ------------------------------------------------------------------- */

/* The buffer outlives the device while user space has it mapped. */
static void vgpu_guest_free_buf(struct drm_device *drm, void *data)
{
	struct vgpu_guest *vg = data;

	dma_free_coherent(&vg->pdev->dev, vg->buf_size, vg->buf, vg->buf_dma);
}

static int vgpu_guest_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	struct vgpu_guest *vg;
	unsigned int n;
	int ret;

	if (buf_kib < 4 || buf_kib > 65536)
		return dev_err_probe(dev, -EINVAL, "buf_kib=%u out of range\n", buf_kib);
	ret = aperture_remove_conflicting_pci_devices(pdev, vgpu_guest_drm_driver.name);
	if (ret)
		return ret;
	vg = devm_drm_dev_alloc(dev, &vgpu_guest_drm_driver, struct vgpu_guest, drm);
	if (IS_ERR(vg))
		return PTR_ERR(vg);
	vg->pdev = pdev;
	mutex_init(&vg->lock);
	spin_lock_init(&vg->irq_lock);
	init_waitqueue_head(&vg->wait);
	pci_set_drvdata(pdev, vg);

	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	if (pci_resource_len(pdev, VGPU_REG_BAR) < VGPU_GUEST_WINDOW_SIZE)
		return dev_err_probe(dev, -ENODEV, "BAR0 smaller than a partition window\n");
	vg->regs = pcim_iomap_region(pdev, VGPU_REG_BAR, KBUILD_MODNAME);
	if (IS_ERR(vg->regs))
		return PTR_ERR(vg->regs);
	if (vgpu_rd32(vg, VGPU_W_ID) != VGPU_WINDOW_MAGIC)
		return dev_err_probe(dev, -ENODEV, "no partition window (ID %#x)\n",
				     vgpu_rd32(vg, VGPU_W_ID));
	vg->vram_size = vgpu_rd64(vg, VGPU_W_VRAM_SIZE);
	vg->partition = vgpu_rd32(vg, VGPU_W_INDEX);
	vg->caps = vgpu_rd32(vg, VGPU_W_CAPS);
	if (vg->vram_size > pci_resource_len(pdev, VGPU_VRAM_BAR))
		return dev_err_probe(dev, -ENODEV, "VRAM_SIZE beyond BAR2\n");
	pci_set_master(pdev);

	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
	if (ret)
		return ret;
	for (n = 0; n < DRM_VGPU_RINGS; n++) {
		vg->ring[n].cmds = dmam_alloc_coherent(dev, VGPU_GUEST_RING_ENTRIES *
						       sizeof(struct drm_vgpu_cmd),
						       &vg->ring[n].cmds_dma, GFP_KERNEL);
		if (!vg->ring[n].cmds)
			return -ENOMEM;
	}
	vg->fences = dmam_alloc_coherent(dev, PAGE_SIZE, &vg->fences_dma, GFP_KERNEL);
	if (!vg->fences)
		return -ENOMEM;
	vg->buf_size = (size_t)buf_kib * SZ_1K;
	vg->buf = dma_alloc_coherent(dev, vg->buf_size, &vg->buf_dma, GFP_KERNEL);
	if (!vg->buf)
		return -ENOMEM;
	ret = drmm_add_action_or_reset(&vg->drm, vgpu_guest_free_buf, vg);
	if (ret)
		return ret;

	/* Whatever a previous driver left running stops here. */
	vgpu_wr32(vg, VGPU_W_RESET, 1);
	vg->intr_mask = VGPU_W_INTR_MASK_FENCE | VGPU_W_INTR_MASK_FAULT;
	ret = vgpu_guest_setup_irqs(vg);
	if (ret)
		return ret;
	vgpu_guest_hw_init(vg);

	/* Dumb buffers and the framebuffer console live in the partition's VRAM. */
	ret = drmm_vram_helper_init(&vg->drm, pci_resource_start(pdev, VGPU_VRAM_BAR),
				    vg->vram_size);
	if (ret)
		return ret;
	/* A window without a display head (MAX_MODE 0) makes a render-only device. */
	vg->has_display = vgpu_rd32(vg, VGPU_W_DISP_MAX_MODE) != 0;
	if (vg->has_display) {
		ret = vgpu_guest_kms_init(vg);
		if (ret)
			return ret;
		vgpu_guest_set_intr(vg, VGPU_W_INTR_MASK_FLIP_DONE | VGPU_W_INTR_MASK_HOTPLUG,
				    true);
	} else {
		vg->drm.driver_features &= ~(DRIVER_MODESET | DRIVER_ATOMIC);
	}
	ret = drm_dev_register(&vg->drm, 0);
	if (ret) {
		vgpu_wr32(vg, VGPU_W_INTR_MASK, 0);
		vgpu_wr32(vg, VGPU_W_RESET, 1);
		return ret;
	}
	drm_info(&vg->drm, "partition %u, %llu MiB VRAM, %s, minor %d%s\n",
		 vg->partition, vg->vram_size >> 20,
		 vg->irq_mode == DRM_VGPU_IRQ_MSIX ? "MSI-X" :
		 vg->irq_mode == DRM_VGPU_IRQ_MSI ? "MSI" : "INTx",
		 vg->drm.primary->index, vg->has_display ? "" : ", no display head");
	if (vg->has_display)
		drm_fbdev_ttm_setup(&vg->drm, 32);
	return 0;
}

static void vgpu_guest_remove(struct pci_dev *pdev)
{
	struct vgpu_guest *vg = pci_get_drvdata(pdev);

	drm_dev_unplug(&vg->drm);
	/* The head goes off while the hardware and its interrupts are still there. */
	if (vg->has_display)
		drm_atomic_helper_shutdown(&vg->drm);
	mutex_lock(&vg->lock);
	spin_lock_irq(&vg->irq_lock);
	vg->gone = true;
	spin_unlock_irq(&vg->irq_lock);
	/* No more DMA into the rings, which devres frees next. */
	vgpu_wr32(vg, VGPU_W_INTR_MASK, 0);
	vgpu_wr32(vg, VGPU_W_RESET, 1);
	mutex_unlock(&vg->lock);
	wake_up_all(&vg->wait);
	if (vg->has_display)
		cancel_work_sync(&vg->hotplug_work);
}

static const struct pci_device_id vgpu_guest_ids[] = {
	{ PCI_DEVICE(VGPU_PCI_VENDOR_ID, VGPU_PCI_VGPU_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, vgpu_guest_ids);

static struct pci_driver vgpu_guest_driver = {
	.name = KBUILD_MODNAME,
	.id_table = vgpu_guest_ids,
	.probe = vgpu_guest_probe,
	.remove = vgpu_guest_remove,
};
drm_module_pci_driver(vgpu_guest_driver);

MODULE_DESCRIPTION("Reference guest driver for vgpu-pci vGPUs");
MODULE_LICENSE("GPL");
