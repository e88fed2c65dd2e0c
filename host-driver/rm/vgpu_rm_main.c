// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The resource manager of vgpu-pci (vgpu_rm.ko): the PCI driver that owns
 * the GPU and its interrupts, and hands the mdev/VFIO frontend its ops
 * table (vgpu_rm_set_ops(), as in NVIDIA's split).
 */
#include <linux/bitfield.h>
#include <linux/dma-mapping.h>
#include <linux/io.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/slab.h>

#include "vgpu_rm.h"

static char *types;
module_param(types, charp, 0444);
MODULE_PARM_DESC(types,
		 "vGPU types as <framebuffer>:<max_instances>,... e.g. 256M:2,64M:8 (default: 1/n of the GPU for n = 1, 2, 4 ... partitions)");

/*
 * Bound GPUs and the frontend's callbacks. The frontend's remove() waits
 * for VMMs to close their vGPUs, so it runs without vgpu_rm_lock (one VMM
 * must not block other GPUs' probe and remove): vgpu_rm_cb_users counts
 * the removes in flight, which disconnecting the frontend waits for.
 */
DEFINE_MUTEX(vgpu_rm_lock);
static LIST_HEAD(vgpu_rm_gpus);
static const struct vgpu_vfio_callbacks *vgpu_rm_cb;
static unsigned int vgpu_rm_cb_users;
static DECLARE_WAIT_QUEUE_HEAD(vgpu_rm_cb_wait);

const struct vgpu_vfio_callbacks *vgpu_rm_frontend_callbacks(void)
{
	return READ_ONCE(vgpu_rm_cb);
}

/* The bound GPU whose PF has PCI name @name, or NULL. */
struct vgpu_rm_gpu *vgpu_rm_find_gpu(const char *name)
{
	struct vgpu_rm_gpu *gpu;

	lockdep_assert_held(&vgpu_rm_lock);
	list_for_each_entry(gpu, &vgpu_rm_gpus, node)
		if (!strcmp(pci_name(gpu->pdev), name))
			return gpu;
	return NULL;
}

/*
 * The type table of @gpu is about to change: the frontend that lists it,
 * if any, must have no vGPU of it and stop listing it (vgpu_ops.h). Holds
 * vgpu_rm_lock, which keeps gpu->frontend.
 */
int vgpu_rm_types_change_begin(struct vgpu_rm_gpu *gpu)
{
	const struct vgpu_vfio_callbacks *cb = gpu->frontend;
	int ret;

	lockdep_assert_held(&vgpu_rm_lock);
	if (!cb || !cb->types_changing)
		return 0;
	ret = cb->types_changing(gpu);
	if (ret == -EBUSY)
		dev_err(&gpu->pdev->dev, "mdev mode: vgpu_vfio has vGPUs of this GPU, and the mdev core takes a parent's type list only when it registers: remove every mdev of the GPU, then change its types\n");
	else if (ret)
		dev_err(&gpu->pdev->dev, "the frontend cannot change its type list: %d\n",
			ret);
	return ret;
}

void vgpu_rm_types_change_end(struct vgpu_rm_gpu *gpu)
{
	const struct vgpu_vfio_callbacks *cb = gpu->frontend;

	lockdep_assert_held(&vgpu_rm_lock);
	if (cb && cb->types_changed)
		cb->types_changed(gpu);
}

/* Record one fault-log entry; hard-irq context. */
static void vgpu_rm_log_fault(struct vgpu_rm_gpu *gpu, u32 info, u64 addr)
{
	struct vgpu_rm_fault_entry *e;

	spin_lock(&gpu->fault_lock);
	e = &gpu->fault_history[gpu->faults_seen % VGPU_RM_FAULT_HISTORY];
	e->seq = gpu->faults_seen++;
	e->info = info;
	e->addr = addr;
	spin_unlock(&gpu->fault_lock);

	dev_warn_ratelimited(&gpu->pdev->dev, "partition %llu faulted: %s at 0x%llx (ring %llu, %s)\n",
			     FIELD_GET(VGPU_G_FAULT_LOG_INFO_PARTITION, info),
			     vgpu_rm_fault_name(FIELD_GET(VGPU_G_FAULT_LOG_INFO_CODE, info)),
			     addr, FIELD_GET(VGPU_G_FAULT_LOG_INFO_RING, info),
			     info & VGPU_G_FAULT_LOG_INFO_WRITE ? "write" : "read");
}

/* Host vector 0: partition faults, rejected accesses, log overflow. */
static irqreturn_t vgpu_rm_events_irq(int irq, void *data)
{
	struct vgpu_rm_gpu *gpu = data;
	unsigned int budget = 64;	/* the fault log's depth */
	bool drained = false;
	u32 status, info;
	u64 addr;

	status = readl(gpu->regs + VGPU_G_INTR_STATUS) &
		 ~VGPU_G_INTR_STATUS_XLATE_FAULT;
	if (status)
		writel(status, gpu->regs + VGPU_G_INTR_STATUS);

	/* Drain even without the status bit: a message may have been lost. */
	while (budget-- && readl(gpu->regs + VGPU_G_FAULT_LOG_COUNT)) {
		info = readl(gpu->regs + VGPU_G_FAULT_LOG_INFO);
		addr = readq(gpu->regs + VGPU_G_FAULT_LOG_ADDR);
		writel(1, gpu->regs + VGPU_G_FAULT_LOG_POP);
		if (!(info & VGPU_G_FAULT_LOG_INFO_VALID))
			break;
		vgpu_rm_log_fault(gpu, info, addr);
		drained = true;
	}

	if (status & VGPU_G_INTR_STATUS_FAULT_LOG_OVERFLOW) {
		spin_lock(&gpu->fault_lock);
		gpu->faults_lost = readl(gpu->regs + VGPU_G_FAULT_LOG_LOST);
		spin_unlock(&gpu->fault_lock);
		dev_warn_ratelimited(&gpu->pdev->dev, "fault log overflowed: %u entries lost so far\n",
				     gpu->faults_lost);
	}
	return status || drained ? IRQ_HANDLED : IRQ_NONE;
}

/* A partition's vector goes to the vGPU that owns the partition. */
static irqreturn_t vgpu_rm_partition_irq(struct vgpu_rm_partition *part,
					 unsigned int vector)
{
	struct vgpu_rm_gpu *gpu = part->gpu;
	struct vgpu_rm_vgpu *vgpu;

	spin_lock(&gpu->irq_lock);
	vgpu = part->vgpu;
	if (vgpu) {
		atomic64_inc(&vgpu->irqs_injected);
		if (vgpu->cb && vgpu->cb->inject_interrupt)
			vgpu->cb->inject_interrupt(vgpu->frontend_priv, vector);
	}
	spin_unlock(&gpu->irq_lock);
	return IRQ_HANDLED;
}

static irqreturn_t vgpu_rm_engine_irq(int irq, void *data)
{
	return vgpu_rm_partition_irq(data, VGPU_PART_VECTOR_ENGINE);
}

static irqreturn_t vgpu_rm_fault_irq(int irq, void *data)
{
	return vgpu_rm_partition_irq(data, VGPU_PART_VECTOR_FAULT);
}

static void vgpu_rm_destroy_wq(void *data)
{
	destroy_workqueue(data);
}

static int vgpu_rm_setup_irqs(struct vgpu_rm_gpu *gpu)
{
	struct pci_dev *pdev = gpu->pdev;
	struct device *dev = &pdev->dev;
	struct vgpu_rm_partition *part;
	unsigned int p, base;
	const char *name;
	int ret;

	/* Destroyed by devres after the interrupts, which queue work on it. */
	gpu->xlate_wq = alloc_workqueue("vgpu_rm_xlate/%s", WQ_UNBOUND, 0,
					pci_name(pdev));
	if (!gpu->xlate_wq)
		return -ENOMEM;
	ret = devm_add_action_or_reset(dev, vgpu_rm_destroy_wq, gpu->xlate_wq);
	if (ret)
		return ret;

	gpu->nvec = VGPU_PARTITION_VECTOR_BASE(gpu->partitions);
	ret = pci_alloc_irq_vectors(pdev, gpu->nvec, gpu->nvec, PCI_IRQ_MSIX);
	if (ret < 0)
		return dev_err_probe(dev, ret, "cannot allocate %u MSI-X vectors\n",
				     gpu->nvec);

	ret = devm_request_irq(dev, pci_irq_vector(pdev, VGPU_HOST_VECTOR_EVENTS),
			       vgpu_rm_events_irq, 0, VGPU_RM_NAME "-events",
			       gpu);
	if (ret)
		return ret;
	gpu->xlate_irq = pci_irq_vector(pdev, VGPU_HOST_VECTOR_XLATE);
	ret = devm_request_threaded_irq(dev, gpu->xlate_irq, vgpu_rm_xlate_irq,
					vgpu_rm_xlate_thread, 0,
					VGPU_RM_NAME "-xlate", gpu);
	if (ret)
		return ret;

	for (p = 0; p < gpu->partitions; p++) {
		part = &gpu->parts[p];
		part->gpu = gpu;
		part->index = p;
		base = VGPU_PARTITION_VECTOR_BASE(p);

		name = devm_kasprintf(dev, GFP_KERNEL, VGPU_RM_NAME "-p%u-engine", p);
		if (!name)
			return -ENOMEM;
		ret = devm_request_irq(dev,
				       pci_irq_vector(pdev, base + VGPU_PART_VECTOR_ENGINE),
				       vgpu_rm_engine_irq, 0, name, part);
		if (ret)
			return ret;
		name = devm_kasprintf(dev, GFP_KERNEL, VGPU_RM_NAME "-p%u-fault", p);
		if (!name)
			return -ENOMEM;
		ret = devm_request_irq(dev,
				       pci_irq_vector(pdev, base + VGPU_PART_VECTOR_FAULT),
				       vgpu_rm_fault_irq, 0, name, part);
		if (ret)
			return ret;
	}
	return 0;
}

/* Identify the device and read what it is configured with. */
static int vgpu_rm_identify(struct vgpu_rm_gpu *gpu)
{
	struct pci_dev *pdev = gpu->pdev;
	struct device *dev = &pdev->dev;
	u32 id, stride, base;
	unsigned int major;

	id = readl(gpu->regs + VGPU_G_ID);
	if (id != VGPU_DEVICE_MAGIC) {
		dev_err(dev, "not a vgpu-pci register BAR: ID 0x%08x, expected 0x%08llx\n",
			id, VGPU_DEVICE_MAGIC);
		return -ENODEV;
	}
	gpu->version = readl(gpu->regs + VGPU_G_VERSION);
	major = FIELD_GET(VGPU_G_VERSION_MAJOR, gpu->version);
	if (major != VGPU_RM_VERSION_MAJOR) {
		dev_err(dev, "unsupported programming interface %u.%llu (this driver speaks %u.x)\n",
			major, FIELD_GET(VGPU_G_VERSION_MINOR, gpu->version),
			VGPU_RM_VERSION_MAJOR);
		return -ENODEV;
	}

	gpu->caps = readl(gpu->regs + VGPU_G_CAPS);
	gpu->partitions = FIELD_GET(VGPU_G_CAPS_PARTITIONS, gpu->caps);
	stride = readl(gpu->regs + VGPU_G_PARTITION_STRIDE);
	base = readl(gpu->regs + VGPU_G_PARTITION_BASE);
	if (!gpu->partitions || gpu->partitions > VGPU_MAX_PARTITIONS ||
	    FIELD_GET(VGPU_G_CAPS_HOST_VECTORS, gpu->caps) != VGPU_HOST_VECTORS ||
	    FIELD_GET(VGPU_G_CAPS_VECTORS_PER_PARTITION, gpu->caps) !=
	    VGPU_VECTORS_PER_PARTITION ||
	    stride != VGPU_WINDOW_STRIDE || base != VGPU_WINDOW_BASE) {
		dev_err(dev, "unexpected layout: CAPS 0x%08x, windows at 0x%x stride 0x%x\n",
			gpu->caps, base, stride);
		return -ENODEV;
	}
	if (!(gpu->caps & VGPU_G_CAPS_XLATE_REPLAY)) {
		dev_err(dev, "no replayable translation faults (CAPS 0x%08x): vGPU DMA needs them\n",
			gpu->caps);
		return -ENODEV;
	}

	gpu->vram_size = readq(gpu->regs + VGPU_G_VRAM_SIZE);
	if (gpu->vram_size < VGPU_VRAM_ALIGN || gpu->vram_size % VGPU_VRAM_ALIGN ||
	    gpu->vram_size > pci_resource_len(pdev, VGPU_VRAM_BAR)) {
		dev_err(dev, "VRAM_SIZE 0x%llx does not fit BAR%llu (%pR)\n",
			gpu->vram_size, VGPU_VRAM_BAR,
			&pdev->resource[VGPU_VRAM_BAR]);
		return -ENODEV;
	}
	gpu->vram_granules = gpu->vram_size / VGPU_VRAM_ALIGN;

	/* SR-IOV (SPEC 15): every VF's VRAM BAR has the same size S. */
	if (pci_sriov_get_totalvfs(pdev) > 0) {
		/*
		 * pci_iov_resource_size() is not exported: the IOV resource
		 * spans TotalVFs BARs of S bytes each.
		 */
		gpu->vf_vram_bar_bytes =
			div_u64(pci_resource_len(pdev, PCI_IOV_RESOURCES +
							 VGPU_VRAM_BAR),
				pci_sriov_get_totalvfs(pdev));
		if (pci_sriov_get_totalvfs(pdev) > gpu->partitions) {
			dev_err(dev, "SR-IOV capability with %d VFs for %u partitions\n",
				pci_sriov_get_totalvfs(pdev), gpu->partitions);
			return -ENODEV;
		}
		gpu->vf_partitions = pci_sriov_get_totalvfs(pdev);
		/* The platform did not give the VF BARs space: mdev only. */
		if (!gpu->vf_vram_bar_bytes)
			dev_err(dev, "SR-IOV unusable: the VF BARs got no address space (boot with pci=realloc?); mdev mode only\n");
	}
	return 0;
}

static int vgpu_rm_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	const struct vgpu_vfio_callbacks *cb;
	struct device *dev = &pdev->dev;
	struct vgpu_rm_gpu *gpu;
	char vram[16];
	int ret;

	gpu = devm_kzalloc(dev, sizeof(*gpu), GFP_KERNEL);
	if (!gpu)
		return -ENOMEM;
	gpu->pdev = pdev;
	mutex_init(&gpu->lock);
	mutex_init(&gpu->xlate_queue_lock);
	spin_lock_init(&gpu->irq_lock);
	spin_lock_init(&gpu->fault_lock);
	mutex_init(&gpu->sriov_lock);
	mutex_init(&gpu->ctx_lock);
	mutex_init(&gpu->edid_lock);
	INIT_LIST_HEAD(&gpu->node);
	gpu->mode = VGPU_RM_MODE_MDEV;

	ret = pcim_enable_device(pdev);
	if (ret)
		return dev_err_probe(dev, ret, "cannot enable the device\n");
	if (!(pci_resource_flags(pdev, VGPU_REG_BAR) & IORESOURCE_MEM) ||
	    pci_resource_len(pdev, VGPU_REG_BAR) < VGPU_REG_BAR_SIZE ||
	    !(pci_resource_flags(pdev, VGPU_VRAM_BAR) & IORESOURCE_MEM))
		return dev_err_probe(dev, -ENODEV, "unexpected BARs: BAR0 %pR, BAR2 %pR\n",
				     &pdev->resource[VGPU_REG_BAR],
				     &pdev->resource[VGPU_VRAM_BAR]);
	gpu->regs = pcim_iomap_region(pdev, VGPU_REG_BAR, VGPU_RM_NAME);
	if (IS_ERR(gpu->regs))
		return dev_err_probe(dev, PTR_ERR(gpu->regs), "cannot map BAR0\n");
	gpu->regs_phys = pci_resource_start(pdev, VGPU_REG_BAR);
	/*
	 * VRAM is reserved, not mapped whole: a slice is mapped on its first
	 * vgpu_vram_rw, and the frontend mmaps slices into VMMs by the
	 * address vgpu_bar_info gives.
	 */
	ret = pcim_request_region(pdev, VGPU_VRAM_BAR, VGPU_RM_NAME "-vram");
	if (ret)
		return dev_err_probe(dev, ret, "cannot reserve BAR2\n");
	gpu->vram_phys = pci_resource_start(pdev, VGPU_VRAM_BAR);

	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
	if (ret)
		return dev_err_probe(dev, ret, "no 64-bit DMA\n");
	pci_set_master(pdev);

	ret = vgpu_rm_identify(gpu);
	if (ret)
		return ret;
	/* A known state: every partition off, VRAM zeroed. */
	writel(1, gpu->regs + VGPU_G_DEVICE_RESET);

	ret = vgpu_rm_types_init(gpu, types);
	if (ret)
		return dev_err_probe(dev, ret, "bad types=\"%s\"\n", types);
	gpu->vram_map = devm_bitmap_zalloc(dev, gpu->vram_granules, GFP_KERNEL);
	gpu->vram_scratch = devm_bitmap_zalloc(dev, gpu->vram_granules,
					       GFP_KERNEL);
	if (!gpu->vram_map || !gpu->vram_scratch)
		return -ENOMEM;

	ret = vgpu_rm_setup_irqs(gpu);
	if (ret)
		return ret;
	/*
	 * Not ACCESS_ERROR: tenants cause those at will (the doorbell page is
	 * mapped into guests), an interrupt each would let a guest storm the
	 * host; debugfs reads ACCESS_ERROR_COUNT when asked.
	 */
	writel(VGPU_G_INTR_MASK_PARTITION_FAULT | VGPU_G_INTR_MASK_XLATE_FAULT |
	       VGPU_G_INTR_MASK_FAULT_LOG_OVERFLOW,
	       gpu->regs + VGPU_G_INTR_MASK);
	pci_set_drvdata(pdev, gpu);
	vgpu_rm_debugfs_add(gpu);

	vgpu_rm_format_size(vram, sizeof(vram), gpu->vram_size);
	dev_info(dev, "vgpu-pci %llu.%llu: %u partitions, %llu engines, %s VRAM, %u vGPU types, %u MSI-X vectors\n",
		 FIELD_GET(VGPU_G_VERSION_MAJOR, gpu->version),
		 FIELD_GET(VGPU_G_VERSION_MINOR, gpu->version),
		 gpu->partitions, FIELD_GET(VGPU_G_CAPS_ENGINES, gpu->caps),
		 vram, gpu->nr_types, gpu->nvec);
	if (gpu->vf_vram_bar_bytes) {
		vgpu_rm_format_size(vram, sizeof(vram), gpu->vf_vram_bar_bytes);
		dev_info(dev, "SR-IOV capable: %d VFs, %s VF VRAM BAR; mdev mode (partitions %u-%u) until 'sriov' is written to vgpu_mode\n",
			 pci_sriov_get_totalvfs(pdev), vram, gpu->vf_partitions,
			 gpu->partitions - 1);
	}

	mutex_lock(&vgpu_rm_lock);
	list_add_tail(&gpu->node, &vgpu_rm_gpus);
	cb = vgpu_rm_cb;
	if (cb) {	/* a new GPU is in mdev mode */
		ret = cb->probe(gpu, dev);
		if (ret)
			dev_err(dev, "the frontend refused this GPU (%d)\n", ret);
		else
			gpu->frontend = cb;
	}
	mutex_unlock(&vgpu_rm_lock);
	return 0;
}

/* vGPUs left after the frontend's remove (debugfs ones, or a bug). */
static void vgpu_rm_delete_all(struct vgpu_rm_gpu *gpu)
{
	struct vgpu_rm_vgpu *vgpu;
	unsigned int p;

	for (p = 0; p < gpu->partitions; p++) {
		spin_lock_irq(&gpu->irq_lock);
		vgpu = gpu->parts[p].vgpu;
		spin_unlock_irq(&gpu->irq_lock);
		if (!vgpu)
			continue;
		if (vgpu->cb)
			dev_warn(&gpu->pdev->dev, "vGPU %pUl on partition %u outlived the frontend's remove; deleting it\n",
				 &vgpu->uuid, p);
		vgpu_rm_delete(vgpu);
	}
}

/*
 * Take @gpu from the frontend that probed it, if any: the caller then
 * calls the returned callbacks' remove() without vgpu_rm_lock, and
 * vgpu_rm_frontend_removed() after it.
 */
static const struct vgpu_vfio_callbacks *
vgpu_rm_frontend_take(struct vgpu_rm_gpu *gpu)
{
	const struct vgpu_vfio_callbacks *cb = gpu->frontend;

	lockdep_assert_held(&vgpu_rm_lock);
	if (!cb)
		return NULL;
	gpu->frontend = NULL;
	WRITE_ONCE(gpu->frontend_removing, true);
	WRITE_ONCE(vgpu_rm_cb_users, vgpu_rm_cb_users + 1);
	return cb;
}

static void vgpu_rm_frontend_removed(struct vgpu_rm_gpu *gpu)
{
	mutex_lock(&vgpu_rm_lock);
	WRITE_ONCE(gpu->frontend_removing, false);
	WRITE_ONCE(vgpu_rm_cb_users, vgpu_rm_cb_users - 1);
	mutex_unlock(&vgpu_rm_lock);
	wake_up_all(&vgpu_rm_cb_wait);
}

static void vgpu_rm_remove(struct pci_dev *pdev)
{
	struct vgpu_rm_gpu *gpu = pci_get_drvdata(pdev);
	const struct vgpu_vfio_callbacks *cb;

	/* VFs first: their drivers go, their VMMs close them, types go. */
	vgpu_rm_sriov_remove(gpu);
	mutex_lock(&vgpu_rm_lock);
	list_del_init(&gpu->node);
	cb = vgpu_rm_frontend_take(gpu);
	mutex_unlock(&vgpu_rm_lock);
	if (cb) {
		/* The frontend unregisters the mdev parent: vGPUs go first. */
		cb->remove(gpu);
		vgpu_rm_frontend_removed(gpu);
	}
	/* Or vgpu_rm_clear_ops() is removing it: wait for that. */
	wait_event(vgpu_rm_cb_wait, !READ_ONCE(gpu->frontend_removing));

	vgpu_rm_debugfs_remove(gpu);
	vgpu_rm_delete_all(gpu);
	/* its runtime types become disabled configfs directories */
	mutex_lock(&vgpu_rm_lock);
	vgpu_rm_configfs_gpu_gone(gpu);
	mutex_unlock(&vgpu_rm_lock);
	writel(0, gpu->regs + VGPU_G_INTR_MASK);
	writel(1, gpu->regs + VGPU_G_DEVICE_RESET);
	/* devres frees the interrupts, vectors and BARs after this. */
}

static const struct pci_device_id vgpu_rm_ids[] = {
	{ PCI_DEVICE(VGPU_PCI_VENDOR_ID, VGPU_PCI_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, vgpu_rm_ids);

static struct pci_driver vgpu_rm_driver = {
	.name = VGPU_RM_NAME,
	.id_table = vgpu_rm_ids,
	.probe = vgpu_rm_probe,
	.remove = vgpu_rm_remove,
	.sriov_configure = vgpu_rm_sriov_configure,
	/* (pci_register_driver() copies this into driver.dev_groups) */
	.dev_groups = vgpu_rm_pf_groups,
};

/**
 * vgpu_rm_vf_get() - the backend of a VF's PF (vgpu_ops.h)
 * @vf: a VF of a GPU bound to vgpu_rm
 * @ops: set to the VF ops
 *
 * Return: the GPU, ERR_PTR(-EINVAL) if @vf is not a VF of a vgpu_rm GPU,
 * ERR_PTR(-ENODEV) if the GPU is not in SR-IOV mode.
 */
struct vgpu_rm_gpu *vgpu_rm_vf_get(struct pci_dev *vf,
				   const struct vgpu_rm_vf_ops **ops)
{
	struct vgpu_rm_gpu *gpu = pci_iov_get_pf_drvdata(vf, &vgpu_rm_driver);

	if (IS_ERR(gpu))
		return gpu;
	if (READ_ONCE(gpu->mode) != VGPU_RM_MODE_SRIOV)
		return ERR_PTR(-ENODEV);
	*ops = &vgpu_rm_vf_ops_table;
	return gpu;
}
EXPORT_SYMBOL_GPL(vgpu_rm_vf_get);

/*
 * Give @gpu to the frontend (mdev mode again), if one is connected and
 * does not have it.
 */
int vgpu_rm_frontend_attach(struct vgpu_rm_gpu *gpu)
{
	const struct vgpu_vfio_callbacks *cb;
	int ret = 0;

	mutex_lock(&vgpu_rm_lock);
	cb = vgpu_rm_cb;
	if (cb && !gpu->frontend && !gpu->frontend_removing &&
	    !list_empty(&gpu->node)) {
		ret = cb->probe(gpu, &gpu->pdev->dev);
		if (ret)
			dev_err(&gpu->pdev->dev, "the frontend refused this GPU (%d)\n",
				ret);
		else
			gpu->frontend = cb;
	}
	mutex_unlock(&vgpu_rm_lock);
	return ret;
}

/* Take @gpu from the frontend (SR-IOV mode); it has no vGPU there. */
void vgpu_rm_frontend_detach_gpu(struct vgpu_rm_gpu *gpu)
{
	const struct vgpu_vfio_callbacks *cb;

	mutex_lock(&vgpu_rm_lock);
	cb = vgpu_rm_frontend_take(gpu);
	mutex_unlock(&vgpu_rm_lock);
	if (cb) {
		cb->remove(gpu);
		vgpu_rm_frontend_removed(gpu);
	}
}

/*
 * Take every GPU from the frontend and remove it there, without
 * vgpu_rm_lock while remove() waits for VMMs; then wait for the removes
 * vgpu_rm_remove() runs. Caller holds vgpu_rm_lock and has made the
 * frontend unreachable for new GPUs (vgpu_rm_cb no longer points at it).
 */
static void vgpu_rm_frontend_detach(void)
{
	const struct vgpu_vfio_callbacks *cb;
	struct vgpu_rm_gpu *gpu;
	bool found;

	lockdep_assert_held(&vgpu_rm_lock);
	do {
		found = false;
		list_for_each_entry(gpu, &vgpu_rm_gpus, node) {
			cb = vgpu_rm_frontend_take(gpu);
			if (!cb)
				continue;
			mutex_unlock(&vgpu_rm_lock);
			cb->remove(gpu);
			vgpu_rm_frontend_removed(gpu);
			mutex_lock(&vgpu_rm_lock);
			found = true;
			break;	/* the list may have changed meanwhile */
		}
	} while (found);
	mutex_unlock(&vgpu_rm_lock);
	wait_event(vgpu_rm_cb_wait, !READ_ONCE(vgpu_rm_cb_users));
	mutex_lock(&vgpu_rm_lock);
}

/**
 * vgpu_rm_set_ops() - connect the frontend
 * @ops: filled with the backend's operations
 * @callbacks: the frontend's callbacks, valid until vgpu_rm_clear_ops()
 *
 * Calls @callbacks->probe for every GPU bound now, and for GPUs bound later.
 * If one probe fails, the GPUs probed so far are removed again.
 *
 * Return: 0, -EBUSY if a frontend is already connected, or probe's error.
 */
int vgpu_rm_set_ops(struct vgpu_rm_ops *ops,
		    const struct vgpu_vfio_callbacks *callbacks)
{
	struct vgpu_rm_gpu *gpu;
	int ret = 0;

	if (!ops || !callbacks || !callbacks->probe || !callbacks->remove)
		return -EINVAL;
	mutex_lock(&vgpu_rm_lock);
	/* Also while an earlier frontend's removes still run. */
	if (vgpu_rm_cb || vgpu_rm_cb_users) {
		ret = -EBUSY;
		goto out;
	}
	*ops = vgpu_rm_ops_table;
	WRITE_ONCE(vgpu_rm_cb, callbacks);
	list_for_each_entry(gpu, &vgpu_rm_gpus, node) {
		if (gpu->mode != VGPU_RM_MODE_MDEV)
			continue;
		ret = callbacks->probe(gpu, &gpu->pdev->dev);
		if (ret) {
			dev_err(&gpu->pdev->dev, "the frontend refused this GPU (%d)\n",
				ret);
			break;
		}
		gpu->frontend = callbacks;
	}
	if (ret) {
		WRITE_ONCE(vgpu_rm_cb, NULL);
		vgpu_rm_frontend_detach();
		memset(ops, 0, sizeof(*ops));
	}
out:
	mutex_unlock(&vgpu_rm_lock);
	return ret;
}
EXPORT_SYMBOL_GPL(vgpu_rm_set_ops);

/**
 * vgpu_rm_clear_ops() - disconnect the frontend
 *
 * Calls the frontend's remove for every GPU it probed, and waits for the
 * removes already running; after this the backend calls none of its
 * callbacks.
 */
void vgpu_rm_clear_ops(void)
{
	mutex_lock(&vgpu_rm_lock);
	if (vgpu_rm_cb) {
		WRITE_ONCE(vgpu_rm_cb, NULL);
		vgpu_rm_frontend_detach();
	}
	mutex_unlock(&vgpu_rm_lock);
}
EXPORT_SYMBOL_GPL(vgpu_rm_clear_ops);

static int __init vgpu_rm_init(void)
{
	int ret;

	/* A PTE maps one kernel page. */
	BUILD_BUG_ON(PAGE_SIZE != VGPU_XLATE_PAGE_SIZE);
	ret = vgpu_rm_configfs_init();
	if (ret) {
		pr_err(VGPU_RM_NAME ": cannot register the configfs subsystem: %d\n",
		       ret);
		return ret;
	}
	vgpu_rm_debugfs_init();
	ret = pci_register_driver(&vgpu_rm_driver);
	if (ret) {
		vgpu_rm_debugfs_exit();
		vgpu_rm_configfs_exit();
	}
	return ret;
}
module_init(vgpu_rm_init);

static void __exit vgpu_rm_exit(void)
{
	pci_unregister_driver(&vgpu_rm_driver);
	vgpu_rm_debugfs_exit();
	vgpu_rm_configfs_exit();
}
module_exit(vgpu_rm_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vgpu-pci resource manager: partitions, VRAM, vGPU types, translation");
