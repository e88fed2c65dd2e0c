// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The RM as the PF driver of SR-IOV mode (SPEC 15): the GPU's mode
 * (vgpu_mode on the PF), sriov_configure, per-VF type selection in each
 * VF's sysfs directory as NVIDIA's vGPU does it (creatable_vgpu_types,
 * current_vgpu_type), and the VF ops of the vfio-pci variant driver.
 *
 * Partition n is VF n. A VF's vGPU is made by the same allocators and type
 * table as an mdev's, on its own partition, without device-side
 * translation (the platform IOMMU translates the VF's DMA).
 *
 * Lock order: gpu->sriov_lock, vgpu_rm_lock, gpu->lock. The VF attributes
 * take sriov_lock, so they are removed without it (vfs_going keeps them
 * from starting anything meanwhile).
 */
#include <linux/ktime.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysfs.h>

#include "vgpu_rm.h"

/* ---- the GPU's mode: vgpu_mode on the PF ---------------------------------- */

static const char *const vgpu_rm_mode_names[] = {
	[VGPU_RM_MODE_MDEV] = "mdev",
	[VGPU_RM_MODE_SRIOV] = "sriov",
};

static ssize_t vgpu_mode_show(struct device *dev,
			      struct device_attribute *attr, char *buf)
{
	struct vgpu_rm_gpu *gpu = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%s\n", vgpu_rm_mode_names[READ_ONCE(gpu->mode)]);
}

/* mdev -> SR-IOV: refused while mdev vGPUs exist. Holds sriov_lock. */
static int vgpu_rm_to_sriov(struct vgpu_rm_gpu *gpu)
{
	struct device *dev = &gpu->pdev->dev;
	unsigned int used;

	if (pci_sriov_get_totalvfs(gpu->pdev) <= 0) {
		dev_err(dev, "vgpu_mode: this GPU has no SR-IOV capability (QEMU: -device vgpu-pci,sriov_vfs=N)\n");
		return -EOPNOTSUPP;
	}
	if (!gpu->vf_vram_bar_bytes) {
		dev_err(dev, "vgpu_mode: the VF BARs got no address space at boot; SR-IOV cannot be used\n");
		return -EOPNOTSUPP;
	}
	mutex_lock(&vgpu_rm_lock);
	mutex_lock(&gpu->lock);
	used = bitmap_weight(gpu->part_map, gpu->partitions);
	/* from now on the frontend's creates fail (vgpu_rm_create) */
	if (!used)
		WRITE_ONCE(gpu->mode, VGPU_RM_MODE_SRIOV);
	mutex_unlock(&gpu->lock);
	mutex_unlock(&vgpu_rm_lock);
	if (used) {
		dev_err(dev, "vgpu_mode: %u vGPU(s) exist in mdev mode; remove them before switching to sriov\n",
			used);
		return -EBUSY;
	}
	/* the mdev parent goes; it has no mdev */
	vgpu_rm_frontend_detach_gpu(gpu);
	dev_info(dev, "SR-IOV mode: enable VFs with sriov_numvfs, give each a type with current_vgpu_type\n");
	return 0;
}

/* SR-IOV -> mdev: refused while VFs are enabled. Holds sriov_lock. */
static int vgpu_rm_to_mdev(struct vgpu_rm_gpu *gpu)
{
	struct device *dev = &gpu->pdev->dev;

	if (gpu->nr_vfs) {
		dev_err(dev, "vgpu_mode: %u VFs are enabled; echo 0 > sriov_numvfs (after releasing their types) before switching to mdev\n",
			gpu->nr_vfs);
		return -EBUSY;
	}
	mutex_lock(&vgpu_rm_lock);
	mutex_lock(&gpu->lock);
	WRITE_ONCE(gpu->mode, VGPU_RM_MODE_MDEV);
	mutex_unlock(&gpu->lock);
	mutex_unlock(&vgpu_rm_lock);
	dev_info(dev, "mdev mode\n");
	return vgpu_rm_frontend_attach(gpu);
}

static ssize_t vgpu_mode_store(struct device *dev,
			       struct device_attribute *attr,
			       const char *buf, size_t count)
{
	struct vgpu_rm_gpu *gpu = dev_get_drvdata(dev);
	enum vgpu_rm_mode mode;
	int ret = 0;

	if (sysfs_streq(buf, "mdev")) {
		mode = VGPU_RM_MODE_MDEV;
	} else if (sysfs_streq(buf, "sriov")) {
		mode = VGPU_RM_MODE_SRIOV;
	} else {
		dev_err(dev, "vgpu_mode: write mdev or sriov\n");
		return -EINVAL;
	}
	mutex_lock(&gpu->sriov_lock);
	if (mode != gpu->mode)
		ret = mode == VGPU_RM_MODE_SRIOV ? vgpu_rm_to_sriov(gpu) :
						   vgpu_rm_to_mdev(gpu);
	mutex_unlock(&gpu->sriov_lock);
	return ret ? ret : count;
}
static DEVICE_ATTR_RW(vgpu_mode);

static struct attribute *vgpu_rm_pf_attrs[] = {
	&dev_attr_vgpu_mode.attr,
	NULL,
};

static const struct attribute_group vgpu_rm_pf_group = {
	.attrs = vgpu_rm_pf_attrs,
};

const struct attribute_group *vgpu_rm_pf_groups[] = {
	&vgpu_rm_pf_group,
	NULL,
};

/* ---- per-VF type selection ------------------------------------------------ */

/*
 * The GPU and VF entry of VF @pdev, with sriov_lock held; NULL (lock not
 * held) while its VFs are being disabled.
 */
static struct vgpu_rm_vf *vgpu_rm_vf_lock(struct pci_dev *pdev,
					  struct vgpu_rm_gpu **gpup)
{
	struct vgpu_rm_gpu *gpu = pci_get_drvdata(pci_physfn(pdev));
	int id = pci_iov_vf_id(pdev);

	mutex_lock(&gpu->sriov_lock);
	if (gpu->vfs_going || id < 0 || id >= gpu->nr_vfs ||
	    gpu->vfs[id].pdev != pdev) {
		mutex_unlock(&gpu->sriov_lock);
		return NULL;
	}
	*gpup = gpu;
	return &gpu->vfs[id];
}

/*
 * Could one more vGPU of @t go on a VF now: fits the VF VRAM BAR, below
 * max_instances, and a slice can be placed. Holds gpu->lock.
 */
static bool vgpu_rm_vf_type_fits(struct vgpu_rm_gpu *gpu,
				 struct vgpu_rm_type *t)
{
	u64 base;

	lockdep_assert_held(&gpu->lock);
	if (t->framebuffer_bytes > gpu->vf_vram_bar_bytes ||
	    t->created >= t->max_instances)
		return false;
	bitmap_copy(gpu->vram_scratch, gpu->vram_map, gpu->vram_granules);
	return !vgpu_rm_vram_alloc(gpu, gpu->vram_scratch,
				   t->framebuffer_bytes, &base);
}

/*
 * NVIDIA's format: a header, then "ID : name" for each type this VF could
 * take now; nothing more once the VF has a type.
 */
static ssize_t creatable_vgpu_types_show(struct device *dev,
					 struct device_attribute *attr,
					 char *buf)
{
	struct vgpu_rm_gpu *gpu;
	struct vgpu_rm_vf *vf;
	struct vgpu_rm_type *t;
	unsigned int i;
	int len;

	vf = vgpu_rm_vf_lock(to_pci_dev(dev), &gpu);
	if (!vf)
		return -ENODEV;
	len = sysfs_emit(buf, "ID : vGPU Name\n");
	if (!vf->vgpu) {
		mutex_lock(&gpu->lock);
		for (i = 0; i < gpu->nr_types; i++) {
			t = gpu->types[i];
			if (vgpu_rm_vf_type_fits(gpu, t))
				len += sysfs_emit_at(buf, len, "%u : %s\n",
						     t->id, t->name);
		}
		mutex_unlock(&gpu->lock);
	}
	mutex_unlock(&gpu->sriov_lock);
	return len;
}
static DEVICE_ATTR_RO(creatable_vgpu_types);

static ssize_t current_vgpu_type_show(struct device *dev,
				      struct device_attribute *attr, char *buf)
{
	struct vgpu_rm_gpu *gpu;
	struct vgpu_rm_vf *vf;
	unsigned int id;

	vf = vgpu_rm_vf_lock(to_pci_dev(dev), &gpu);
	if (!vf)
		return -ENODEV;
	id = vf->vgpu ? vf->vgpu->type->id : 0;
	mutex_unlock(&gpu->sriov_lock);
	return sysfs_emit(buf, "%u\n", id);
}

/* Give VF @vf (index @n) the type with ID @id. Holds sriov_lock. */
static int vgpu_rm_vf_assign(struct vgpu_rm_gpu *gpu, struct vgpu_rm_vf *vf,
			     unsigned int n, unsigned int id)
{
	struct device *dev = &vf->pdev->dev;
	struct vgpu_rm_vgpu *vgpu;
	struct vgpu_rm_type *t;
	u64 fb = 0;
	int ret;

	if (vf->vgpu) {
		if (vf->vgpu->type->id == id)
			return 0;
		dev_err(dev, "current_vgpu_type: VF %u has type %u; write 0 to release it first\n",
			n, vf->vgpu->type->id);
		return -EBUSY;
	}
	mutex_lock(&gpu->lock);
	t = vgpu_rm_type_by_id(gpu, id);
	if (t)
		fb = t->framebuffer_bytes;
	mutex_unlock(&gpu->lock);
	if (!t) {
		dev_err(dev, "current_vgpu_type: no vGPU type %u (creatable_vgpu_types lists them)\n",
			id);
		return -EINVAL;
	}
	if (fb > gpu->vf_vram_bar_bytes) {
		dev_err(dev, "current_vgpu_type: type %u's framebuffer (%llu bytes) is larger than the VF VRAM BAR (%llu bytes)\n",
			id, fb, gpu->vf_vram_bar_bytes);
		return -EINVAL;
	}
	ret = vgpu_rm_create(gpu, id, n, NULL, NULL, NULL, &vgpu);
	if (ret == -ENOSPC)
		dev_info(dev, "current_vgpu_type: no room for type %u on the GPU (VRAM or max_instances)\n",
			 id);
	else if (ret)
		dev_err(dev, "current_vgpu_type: type %u not assigned: %d\n",
			id, ret);
	if (ret)
		return ret;
	vf->vgpu = vgpu;
	dev_info(dev, "VF %u: vGPU type %u (%s), VRAM 0x%llx+0x%llx\n", n, id,
		 vgpu->type->name, vgpu->vram_base, vgpu->vram_size);
	return 0;
}

/*
 * Write a type ID to reserve it for the VF, 0 to release (the slice is
 * scrubbed). -EBUSY while the VF is open or has another type, -ENOSPC
 * when the GPU has no room for it, -EINVAL for an unknown ID or one that
 * does not fit the VF's VRAM BAR.
 */
static ssize_t current_vgpu_type_store(struct device *dev,
				       struct device_attribute *attr,
				       const char *buf, size_t count)
{
	struct pci_dev *pdev = to_pci_dev(dev);
	struct vgpu_rm_gpu *gpu;
	struct vgpu_rm_vf *vf;
	unsigned int id, n;
	int ret = 0;

	if (kstrtouint(buf, 0, &id)) {
		dev_err(dev, "current_vgpu_type: write a type ID from creatable_vgpu_types, or 0\n");
		return -EINVAL;
	}
	vf = vgpu_rm_vf_lock(pdev, &gpu);
	if (!vf)
		return -ENODEV;
	n = vf - gpu->vfs;
	if (vf->open) {
		dev_err(dev, "current_vgpu_type: VF %u is open by a VMM; close it first\n",
			n);
		ret = -EBUSY;
	} else if (id) {
		ret = vgpu_rm_vf_assign(gpu, vf, n, id);
	} else if (vf->vgpu) {
		/* disables the partition and scrubs its slice */
		vgpu_rm_delete(vf->vgpu);
		vf->vgpu = NULL;
		dev_info(dev, "VF %u: vGPU type released, VRAM scrubbed\n", n);
	}
	mutex_unlock(&gpu->sriov_lock);
	return ret ? ret : count;
}
static DEVICE_ATTR_RW(current_vgpu_type);

static struct attribute *vgpu_rm_vf_attrs[] = {
	&dev_attr_creatable_vgpu_types.attr,
	&dev_attr_current_vgpu_type.attr,
	NULL,
};

static const struct attribute_group vgpu_rm_vf_group = {
	.attrs = vgpu_rm_vf_attrs,
};

/* ---- sriov_configure ------------------------------------------------------ */

/* VF attributes off, VFs off, VF types released. Called without locks. */
static void vgpu_rm_vfs_teardown(struct vgpu_rm_gpu *gpu)
{
	struct vgpu_rm_vf *vfs;
	unsigned int i, n;

	mutex_lock(&gpu->sriov_lock);
	gpu->vfs_going = true;
	vfs = gpu->vfs;
	n = gpu->nr_vfs;
	mutex_unlock(&gpu->sriov_lock);

	/* waits for running show/store calls, which then find vfs_going */
	for (i = 0; i < n; i++)
		if (vfs[i].attrs)
			sysfs_remove_group(&vfs[i].pdev->dev.kobj,
					   &vgpu_rm_vf_group);
	/* unbinds the VFs' drivers: their VMMs close them (vf_close) first */
	pci_disable_sriov(gpu->pdev);

	mutex_lock(&gpu->sriov_lock);
	for (i = 0; i < n; i++) {
		if (vfs[i].vgpu)
			vgpu_rm_delete(vfs[i].vgpu);
		pci_dev_put(vfs[i].pdev);	/* NULL-safe */
	}
	gpu->vfs = NULL;
	gpu->nr_vfs = 0;
	gpu->vfs_going = false;
	mutex_unlock(&gpu->sriov_lock);
	kfree(vfs);
}

/* Every VF without a type and closed, or -EBUSY. Holds sriov_lock. */
static int vgpu_rm_vfs_idle(struct vgpu_rm_gpu *gpu)
{
	unsigned int i;

	for (i = 0; i < gpu->nr_vfs; i++) {
		if (gpu->vfs[i].open || gpu->vfs[i].vgpu) {
			dev_err(&gpu->pdev->dev, "sriov_numvfs: VF %u is %s; close it and write 0 to its current_vgpu_type first\n",
				i, gpu->vfs[i].open ? "open by a VMM" :
				"holding a vGPU type");
			return -EBUSY;
		}
	}
	return 0;
}

static int vgpu_rm_sriov_disable(struct vgpu_rm_gpu *gpu)
{
	int ret;

	mutex_lock(&gpu->sriov_lock);
	ret = vgpu_rm_vfs_idle(gpu);
	mutex_unlock(&gpu->sriov_lock);
	if (ret)
		return ret;
	/* a type assigned meanwhile is released: sriov_numvfs said 0 */
	vgpu_rm_vfs_teardown(gpu);
	dev_info(&gpu->pdev->dev, "VFs disabled\n");
	return 0;
}

/*
 * The enabled VFs' pci_devs, referenced, by VF index (pci_iov_virtfn_bus()
 * is not exported; the VFs are the vendor's devices whose PF is ours).
 */
static void vgpu_rm_vfs_find(struct vgpu_rm_gpu *gpu)
{
	struct pci_dev *pdev = NULL;
	int id;

	while ((pdev = pci_get_device(gpu->pdev->vendor, PCI_ANY_ID, pdev))) {
		if (!pdev->is_virtfn || pci_physfn(pdev) != gpu->pdev)
			continue;
		id = pci_iov_vf_id(pdev);
		if (id >= 0 && id < gpu->nr_vfs && !gpu->vfs[id].pdev)
			gpu->vfs[id].pdev = pci_dev_get(pdev);
	}
}

static int vgpu_rm_sriov_enable(struct vgpu_rm_gpu *gpu, int num_vfs)
{
	struct pci_dev *pdev = gpu->pdev;
	struct device *dev = &pdev->dev;
	struct vgpu_rm_vf *vfs;
	ktime_t t0 = ktime_get();
	int i, ret;

	mutex_lock(&gpu->sriov_lock);
	if (gpu->mode != VGPU_RM_MODE_SRIOV) {
		dev_err(dev, "sriov_numvfs: the GPU is in mdev mode; echo sriov > vgpu_mode first\n");
		ret = -EBUSY;
		goto out;
	}
	if (gpu->nr_vfs) {
		ret = -EBUSY;	/* the PCI core says why */
		goto out;
	}
	vfs = kcalloc(num_vfs, sizeof(*vfs), GFP_KERNEL);
	if (!vfs) {
		ret = -ENOMEM;
		goto out;
	}
	ret = pci_enable_sriov(pdev, num_vfs);
	if (ret) {
		dev_err(dev, "sriov_numvfs: cannot enable %d VFs: %d\n",
			num_vfs, ret);
		kfree(vfs);
		goto out;
	}
	gpu->vfs = vfs;
	gpu->nr_vfs = num_vfs;
	vgpu_rm_vfs_find(gpu);
	for (i = 0; i < num_vfs; i++) {
		if (!vfs[i].pdev) {
			dev_err(dev, "VF %d enabled but not found\n", i);
			ret = -ENODEV;
			break;
		}
		ret = sysfs_create_group(&vfs[i].pdev->dev.kobj,
					 &vgpu_rm_vf_group);
		if (ret) {
			dev_err(dev, "VF %d: cannot add its vGPU type files: %d\n",
				i, ret);
			break;
		}
		vfs[i].attrs = true;
	}
	mutex_unlock(&gpu->sriov_lock);
	if (ret) {
		vgpu_rm_vfs_teardown(gpu);
		return ret;
	}
	dev_info(dev, "%d VFs enabled in %lld ms\n", num_vfs,
		 ktime_ms_delta(ktime_get(), t0));
	return num_vfs;
out:
	mutex_unlock(&gpu->sriov_lock);
	return ret;
}

/* The pci_driver's sriov_configure (the PF's sriov_numvfs). */
int vgpu_rm_sriov_configure(struct pci_dev *pdev, int num_vfs)
{
	struct vgpu_rm_gpu *gpu = pci_get_drvdata(pdev);

	if (num_vfs < 0)
		return -EINVAL;
	if (!num_vfs)
		return vgpu_rm_sriov_disable(gpu);
	return vgpu_rm_sriov_enable(gpu, num_vfs);
}

/* The PF driver goes: VFs go first, whatever they hold. */
void vgpu_rm_sriov_remove(struct vgpu_rm_gpu *gpu)
{
	if (READ_ONCE(gpu->nr_vfs))
		vgpu_rm_vfs_teardown(gpu);
}

/* ---- the VF ops of the vfio-pci variant driver (vgpu_ops.h) --------------- */

static int vgpu_rm_vf_open(struct vgpu_rm_gpu *gpu, struct pci_dev *pdev)
{
	struct vgpu_rm_vf *vf;
	struct vgpu_rm_gpu *owner;
	int ret;

	if (!pdev->is_virtfn || pci_get_drvdata(pci_physfn(pdev)) != gpu)
		return -EINVAL;
	vf = vgpu_rm_vf_lock(pdev, &owner);
	if (!vf)
		return -ENODEV;
	if (!vf->vgpu) {
		dev_err(&pdev->dev, "VF has no vGPU type: write an ID from creatable_vgpu_types to current_vgpu_type before opening it\n");
		ret = -ENODEV;
	} else if (vf->open) {
		ret = -EBUSY;
	} else {
		ret = vgpu_rm_start(vf->vgpu);
		vf->open = !ret;
	}
	mutex_unlock(&gpu->sriov_lock);
	return ret;
}

static void vgpu_rm_vf_close(struct vgpu_rm_gpu *gpu, struct pci_dev *pdev)
{
	struct vgpu_rm_vf *vf;
	int id = pci_iov_vf_id(pdev);

	/* also while VFs are being disabled: that waits for this close */
	mutex_lock(&gpu->sriov_lock);
	if (id >= 0 && id < gpu->nr_vfs && gpu->vfs[id].pdev == pdev) {
		vf = &gpu->vfs[id];
		if (vf->open && vf->vgpu)
			/* disable (quiesce, reset) and scrub the slice */
			vgpu_rm_stop(vf->vgpu);
		vf->open = false;
	}
	mutex_unlock(&gpu->sriov_lock);
}

static u64 vgpu_rm_vf_framebuffer(struct vgpu_rm_gpu *gpu,
				  struct pci_dev *pdev)
{
	struct vgpu_rm_gpu *owner;
	struct vgpu_rm_vf *vf;
	u64 fb = 0;

	if (!pdev->is_virtfn || pci_get_drvdata(pci_physfn(pdev)) != gpu)
		return 0;
	vf = vgpu_rm_vf_lock(pdev, &owner);
	if (!vf)
		return 0;
	if (vf->vgpu)
		fb = vf->vgpu->vram_size;
	mutex_unlock(&gpu->sriov_lock);
	return fb;
}

/* The open VF's vGPU, for its migration (vf_vgpu_ops). */
static int vgpu_rm_vf_vgpu(struct vgpu_rm_gpu *gpu, struct pci_dev *pdev,
			   struct vgpu_rm_vf_vgpu *out)
{
	struct vgpu_rm_gpu *owner;
	struct vgpu_rm_vf *vf;
	int ret = -ENODEV;

	if (!pdev->is_virtfn || pci_get_drvdata(pci_physfn(pdev)) != gpu)
		return -EINVAL;
	vf = vgpu_rm_vf_lock(pdev, &owner);
	if (!vf)
		return -ENODEV;
	/* vf->vgpu cannot change while the VF is open */
	if (vf->open && vf->vgpu) {
		out->vgpu = vf->vgpu;
		strscpy(out->type, vf->vgpu->type->name, sizeof(out->type));
		out->vram_size = vf->vgpu->vram_size;
		out->vram_phys = gpu->vram_phys + vf->vgpu->vram_base;
		ret = 0;
	}
	mutex_unlock(&gpu->sriov_lock);
	return ret;
}

const struct vgpu_rm_vf_ops vgpu_rm_vf_ops_table = {
	.vf_open = vgpu_rm_vf_open,
	.vf_close = vgpu_rm_vf_close,
	.vf_framebuffer = vgpu_rm_vf_framebuffer,
	.vf_vgpu = vgpu_rm_vf_vgpu,
	.vf_vgpu_ops = &vgpu_rm_vf_vgpu_ops,
};
