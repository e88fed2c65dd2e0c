// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vgpu_guest.c - reference guest driver for a vgpu-pci vGPU (PCI 1234:7691),
 * the example to read first. BAR0 is one partition window (vdevice/SPEC.md
 * sections 4-6, 9-11), BAR2 the partition's VRAM, BAR4 MSI-X with vector 0
 * for the engine (fences) and vector 1 for faults.
 *
 * Both command rings live in system memory (RING_CTRL.SYSMEM=1): the host
 * RM translates this guest's bus addresses for the device, on demand.
 * User space gets /dev/vgpuN: submit commands, wait for fences, reset, and
 * mmap a DMA buffer (vgpu_guest_uapi.h).
 */
#include <linux/bitfield.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/wait.h>

#include "vgpu_regs.h"
#include "vgpu_guest_uapi.h"

#define VGPU_GUEST_RING_ENTRIES	256	/* 16 KiB of commands per ring */
#define VGPU_GUEST_WINDOW_SIZE	0x2000	/* registers page + doorbell page */

static unsigned int buf_kib = 1024;
module_param(buf_kib, uint, 0444);
MODULE_PARM_DESC(buf_kib, "DMA buffer for user space, KiB (4..65536, default 1024)");

static DEFINE_IDA(vgpu_guest_ida);

struct vgpu_guest_ring {
	struct vgpu_guest_cmd *cmds;	/* coherent, RING_ENTRIES long */
	dma_addr_t cmds_dma;
	u32 tail;			/* the last doorbell value */
	u64 submitted;			/* last fence value appended */
	u64 completed;			/* last fence value signalled */
};

struct vgpu_guest {
	struct pci_dev *pdev;
	void __iomem *regs;		/* BAR0, the partition window */
	u64 vram_size;
	u32 partition;
	u32 caps;
	int id;				/* N of /dev/vgpuN */
	char name[16];
	struct miscdevice misc;
	struct kref ref;		/* probe + open files */

	struct mutex lock;		/* rings, reset, hardware access from ioctls */
	struct vgpu_guest_ring ring[VGPU_GUEST_RINGS];
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

	spinlock_t irq_lock;		/* what the handlers record, below */
	wait_queue_head_t wait;
	bool gone;			/* removed: ioctls leave the hardware alone */
	bool faulted;
	u32 fault_status;
	u64 fault_addr;
	u64 engine_irqs;
	u64 fault_irqs;
	u32 irq_mode;
};

static u32 vgpu_rd32(struct vgpu_guest *vg, u64 off)
{
	return readl(vg->regs + off);
}

static u64 vgpu_rd64(struct vgpu_guest *vg, u64 off)
{
	return readq(vg->regs + off);
}

static void vgpu_wr32(struct vgpu_guest *vg, u64 off, u32 val)
{
	writel(val, vg->regs + off);
}

static void vgpu_wr64(struct vgpu_guest *vg, u64 off, u64 val)
{
	writeq(val, vg->regs + off);
}

/* Point both rings at their memory and unmask fence and fault interrupts. */
static void vgpu_guest_hw_init(struct vgpu_guest *vg)
{
	unsigned int n;

	for (n = 0; n < VGPU_GUEST_RINGS; n++) {
		vgpu_wr32(vg, VGPU_W_RING_CTRL(n), VGPU_W_RING_CTRL_SYSMEM);
		vgpu_wr64(vg, VGPU_W_RING_BASE(n), vg->ring[n].cmds_dma);
		/* Writing the size also sets HEAD and TAIL to 0. */
		vgpu_wr32(vg, VGPU_W_RING_SIZE(n), VGPU_GUEST_RING_ENTRIES);
		vg->ring[n].tail = 0;
	}
	vgpu_wr32(vg, VGPU_W_INTR_MASK,
		  VGPU_W_INTR_MASK_FENCE | VGPU_W_INTR_MASK_FAULT);
}

/* Take in the fence values the device wrote. Called with irq_lock held. */
static void vgpu_guest_update_fences(struct vgpu_guest *vg)
{
	unsigned int n;

	for (n = 0; n < VGPU_GUEST_RINGS; n++) {
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

/* MSI-X vector 0: FENCE (and IDLE) */
static irqreturn_t vgpu_guest_engine_irq(int irq, void *data)
{
	struct vgpu_guest *vg = data;

	/* Ack first: a fence that completes after the ack raises it again. */
	vgpu_wr32(vg, VGPU_W_INTR_STATUS,
		  VGPU_W_INTR_STATUS_FENCE | VGPU_W_INTR_STATUS_IDLE);
	spin_lock(&vg->irq_lock);
	vg->engine_irqs++;
	vgpu_guest_update_fences(vg);
	spin_unlock(&vg->irq_lock);
	wake_up_all(&vg->wait);
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
	status &= vgpu_rd32(vg, VGPU_W_INTR_MASK);
	if (!status)
		return IRQ_NONE;
	if (status & (VGPU_W_INTR_STATUS_FENCE | VGPU_W_INTR_STATUS_IDLE))
		vgpu_guest_engine_irq(irq, data);
	if (status & VGPU_W_INTR_STATUS_FAULT)
		vgpu_guest_fault_irq(irq, data);
	return IRQ_HANDLED;
}

static int vgpu_guest_setup_irqs(struct vgpu_guest *vg)
{
	struct pci_dev *pdev = vg->pdev;
	struct device *dev = &pdev->dev;
	int nvec, ret;

	nvec = pci_alloc_irq_vectors(pdev, 1, VGPU_VECTORS_PER_PARTITION, PCI_IRQ_ALL_TYPES);
	if (nvec < 0)
		return nvec;
	if (pdev->msix_enabled)
		vg->irq_mode = VGPU_GUEST_IRQ_MSIX;
	else if (pdev->msi_enabled)
		vg->irq_mode = VGPU_GUEST_IRQ_MSI;
	else
		vg->irq_mode = VGPU_GUEST_IRQ_INTX;

	if (nvec == VGPU_VECTORS_PER_PARTITION) {
		ret = devm_request_irq(dev, pci_irq_vector(pdev, VGPU_PART_VECTOR_ENGINE),
				       vgpu_guest_engine_irq, 0, vg->name, vg);
		if (ret)
			return ret;
		return devm_request_irq(dev, pci_irq_vector(pdev, VGPU_PART_VECTOR_FAULT),
					vgpu_guest_fault_irq, 0, vg->name, vg);
	}
	return devm_request_irq(dev, pci_irq_vector(pdev, 0), vgpu_guest_single_irq,
				IRQF_SHARED, vg->name, vg);
}

/* ---- /dev/vgpuN ---------------------------------------------------------- */

static void vgpu_guest_free(struct kref *ref)
{
	struct vgpu_guest *vg = container_of(ref, struct vgpu_guest, ref);

	/* The buffer outlives the device while user space has it mapped. */
	if (vg->buf)
		dma_free_coherent(&vg->pdev->dev, vg->buf_size, vg->buf, vg->buf_dma);
	pci_dev_put(vg->pdev);
	kfree(vg);
}

static void vgpu_guest_put(void *data)
{
	struct vgpu_guest *vg = data;

	kref_put(&vg->ref, vgpu_guest_free);
}

static int vgpu_guest_open(struct inode *inode, struct file *file)
{
	/* misc_open set private_data to our miscdevice, under misc_mtx. */
	struct vgpu_guest *vg = container_of(file->private_data, struct vgpu_guest, misc);

	kref_get(&vg->ref);
	file->private_data = vg;
	return 0;
}

static int vgpu_guest_release(struct inode *inode, struct file *file)
{
	vgpu_guest_put(file->private_data);
	return 0;
}

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

static long vgpu_guest_submit(struct vgpu_guest *vg, void __user *argp)
{
	struct vgpu_guest_submit s;
	struct vgpu_guest_cmd *cmds;
	struct vgpu_guest_ring *r;
	long ret;
	u32 i;

	if (copy_from_user(&s, argp, sizeof(s)))
		return -EFAULT;
	if (s.ring >= VGPU_GUEST_RINGS || !s.count || s.count > VGPU_GUEST_MAX_SUBMIT)
		return -EINVAL;
	cmds = memdup_array_user(u64_to_user_ptr(s.cmds), s.count, sizeof(*cmds));
	if (IS_ERR(cmds))
		return PTR_ERR(cmds);

	mutex_lock(&vg->lock);
	r = &vg->ring[s.ring];
	ret = vg->gone ? -ENODEV : vgpu_guest_ring_reserve(vg, s.ring, s.count + 1);
	if (!ret) {
		struct vgpu_guest_cmd fence = {
			.opcode = VGPU_OP_FENCE,
			.flags = VGPU_CMD_DST_SYSMEM | VGPU_CMD_INTR,
			.dst = cpu_to_le64(vg->fences_dma + s.ring * sizeof(u64)),
			.value = cpu_to_le64(r->submitted + 1),
		};

		for (i = 0; i < s.count; i++) {
			r->cmds[r->tail] = cmds[i];
			r->tail = (r->tail + 1) % VGPU_GUEST_RING_ENTRIES;
		}
		r->cmds[r->tail] = fence;
		r->tail = (r->tail + 1) % VGPU_GUEST_RING_ENTRIES;
		spin_lock_irq(&vg->irq_lock);
		s.fence = ++r->submitted;
		spin_unlock_irq(&vg->irq_lock);
		/* writel orders the ring writes above before the doorbell. */
		vgpu_wr32(vg, VGPU_W_DOORBELL(s.ring), r->tail);
	}
	mutex_unlock(&vg->lock);
	kfree(cmds);
	if (ret)
		return ret;
	return copy_to_user(argp, &s, sizeof(s)) ? -EFAULT : 0;
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

static long vgpu_guest_wait_fence(struct vgpu_guest *vg, void __user *argp)
{
	struct vgpu_guest_wait w;
	u64 submitted;
	long left;
	int state;

	if (copy_from_user(&w, argp, sizeof(w)))
		return -EFAULT;
	if (w.ring >= VGPU_GUEST_RINGS || w.timeout_ms > VGPU_GUEST_MAX_WAIT_MS ||
	    w.reserved)
		return -EINVAL;
	spin_lock_irq(&vg->irq_lock);
	submitted = vg->ring[w.ring].submitted;
	spin_unlock_irq(&vg->irq_lock);
	if (w.fence > submitted)
		return -EINVAL;	/* would never signal */

	left = wait_event_interruptible_timeout(vg->wait,
						(state = vgpu_guest_fence_state(vg, w.ring, w.fence)),
						msecs_to_jiffies(w.timeout_ms));
	if (left < 0)
		return left;
	if (!left) {
		vgpu_guest_poll(vg);
		state = vgpu_guest_fence_state(vg, w.ring, w.fence);
		if (!state)
			return -ETIMEDOUT;
	}
	if (state == -EIO) {
		spin_lock_irq(&vg->irq_lock);
		w.fault_status = vg->fault_status;
		w.fault_addr = vg->fault_addr;
		spin_unlock_irq(&vg->irq_lock);
		if (copy_to_user(argp, &w, sizeof(w)))
			return -EFAULT;
	}
	return state < 0 ? state : 0;
}

static long vgpu_guest_reset(struct vgpu_guest *vg)
{
	unsigned int n;

	mutex_lock(&vg->lock);
	if (vg->gone) {
		mutex_unlock(&vg->lock);
		return -ENODEV;
	}
	/* Quiesces the partition; rings and interrupt mask go back to 0. */
	spin_lock_irq(&vg->irq_lock);
	vgpu_wr32(vg, VGPU_W_RESET, 1);
	vg->faulted = false;
	vg->fault_status = 0;
	vg->fault_addr = 0;
	for (n = 0; n < VGPU_GUEST_RINGS; n++)
		vg->ring[n].completed = vg->ring[n].submitted;
	spin_unlock_irq(&vg->irq_lock);
	vgpu_guest_hw_init(vg);
	mutex_unlock(&vg->lock);
	wake_up_all(&vg->wait);
	return 0;
}

static long vgpu_guest_info(struct vgpu_guest *vg, void __user *argp)
{
	struct vgpu_guest_info info = {
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
	info.engine_irqs = vg->engine_irqs;
	info.fault_irqs = vg->fault_irqs;
	spin_unlock_irq(&vg->irq_lock);
	return copy_to_user(argp, &info, sizeof(info)) ? -EFAULT : 0;
}

static long vgpu_guest_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct vgpu_guest *vg = file->private_data;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case VGPU_GUEST_IOC_INFO:
		return vgpu_guest_info(vg, argp);
	case VGPU_GUEST_IOC_SUBMIT:
		return vgpu_guest_submit(vg, argp);
	case VGPU_GUEST_IOC_WAIT_FENCE:
		return vgpu_guest_wait_fence(vg, argp);
	case VGPU_GUEST_IOC_RESET:
		return vgpu_guest_reset(vg);
	default:
		return -ENOTTY;
	}
}

/* Offset 0: the DMA buffer, at most buf_size bytes. */
static int vgpu_guest_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct vgpu_guest *vg = file->private_data;

	if (vma->vm_pgoff || vma->vm_end - vma->vm_start > vg->buf_size)
		return -EINVAL;
	return dma_mmap_coherent(&vg->pdev->dev, vma, vg->buf, vg->buf_dma,
				 vma->vm_end - vma->vm_start);
}

static const struct file_operations vgpu_guest_fops = {
	.owner = THIS_MODULE,
	.open = vgpu_guest_open,
	.release = vgpu_guest_release,
	.unlocked_ioctl = vgpu_guest_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = vgpu_guest_mmap,
};

/* ---- PCI ------------------------------------------------------------------- */

static void vgpu_guest_free_id(void *data)
{
	struct vgpu_guest *vg = data;

	ida_free(&vgpu_guest_ida, vg->id);
}

static int vgpu_guest_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	struct vgpu_guest *vg;
	unsigned int n;
	int ret;

	if (buf_kib < 4 || buf_kib > 65536)
		return dev_err_probe(dev, -EINVAL, "buf_kib=%u out of range\n", buf_kib);
	vg = kzalloc(sizeof(*vg), GFP_KERNEL);
	if (!vg)
		return -ENOMEM;
	vg->pdev = pci_dev_get(pdev);
	kref_init(&vg->ref);
	mutex_init(&vg->lock);
	spin_lock_init(&vg->irq_lock);
	init_waitqueue_head(&vg->wait);
	/* Devres runs this last, after the managed resources below are gone. */
	ret = devm_add_action_or_reset(dev, vgpu_guest_put, vg);
	if (ret)
		return ret;

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
	pci_set_master(pdev);

	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
	if (ret)
		return ret;
	for (n = 0; n < VGPU_GUEST_RINGS; n++) {
		vg->ring[n].cmds = dmam_alloc_coherent(dev, VGPU_GUEST_RING_ENTRIES *
						       sizeof(struct vgpu_guest_cmd),
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

	vg->id = ida_alloc(&vgpu_guest_ida, GFP_KERNEL);
	if (vg->id < 0)
		return vg->id;
	ret = devm_add_action_or_reset(dev, vgpu_guest_free_id, vg);
	if (ret)
		return ret;
	snprintf(vg->name, sizeof(vg->name), "vgpu%d", vg->id);
	ret = vgpu_guest_setup_irqs(vg);
	if (ret)
		return ret;

	/* Whatever a previous driver left running stops here. */
	vgpu_wr32(vg, VGPU_W_RESET, 1);
	vgpu_guest_hw_init(vg);

	vg->misc = (struct miscdevice) {
		.minor = MISC_DYNAMIC_MINOR,
		.name = vg->name,
		.fops = &vgpu_guest_fops,
		.parent = dev,
		.mode = 0600,
	};
	ret = misc_register(&vg->misc);
	if (ret) {
		vgpu_wr32(vg, VGPU_W_RESET, 1);
		return ret;
	}
	pci_set_drvdata(pdev, vg);
	dev_info(dev, "/dev/%s: partition %u, %llu MiB VRAM, %s\n", vg->name,
		 vg->partition, vg->vram_size >> 20,
		 vg->irq_mode == VGPU_GUEST_IRQ_MSIX ? "MSI-X" :
		 vg->irq_mode == VGPU_GUEST_IRQ_MSI ? "MSI" : "INTx");
	return 0;
}

static void vgpu_guest_remove(struct pci_dev *pdev)
{
	struct vgpu_guest *vg = pci_get_drvdata(pdev);

	misc_deregister(&vg->misc);
	mutex_lock(&vg->lock);
	spin_lock_irq(&vg->irq_lock);
	vg->gone = true;
	spin_unlock_irq(&vg->irq_lock);
	/* No more DMA into the rings, which devres frees next. */
	vgpu_wr32(vg, VGPU_W_INTR_MASK, 0);
	vgpu_wr32(vg, VGPU_W_RESET, 1);
	mutex_unlock(&vg->lock);
	wake_up_all(&vg->wait);
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
module_pci_driver(vgpu_guest_driver);

MODULE_DESCRIPTION("Reference guest driver for vgpu-pci vGPUs");
MODULE_LICENSE("GPL");
