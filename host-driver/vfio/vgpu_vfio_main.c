// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vgpu_vfio_main.c - the mdev/VFIO frontend: takes the backend's ops table
 * at init (as nvidia-vgpu-vfio does), registers every GPU the backend probes
 * as an mdev parent, and makes each mdev a VFIO device whose lifecycle, BARs
 * and DMA are forwarded to the backend. All policy lives in vgpu_rm.ko.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/ctype.h>
#include <linux/device.h>
#include <linux/iommu.h>
#include <linux/list.h>
#include <linux/mdev.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>

#include "vgpu_vfio.h"

#define VGPU_VFIO_MAX_TYPES	64

/* Filled by the backend in vgpu_rm_set_ops(); read-only afterwards. */
struct vgpu_rm_ops vgpu_vfio_rm;

static LIST_HEAD(vgpu_vfio_gpus);
static DEFINE_MUTEX(vgpu_vfio_gpus_lock);

static struct mdev_driver vgpu_vfio_mdev_driver;
static const struct vfio_device_ops vgpu_vfio_dev_ops;

/* ---- callbacks for the backend: pinning guest pages --------------------- */

/*
 * Every pin the backend takes is counted here, so that whatever it leaves
 * pinned in an unmapped range or at close is unpinned by the frontend: the
 * type1 IOMMU driver BUG()s when an unmap keeps finding pinned pages.
 */
static int vgpu_vfio_pin_count(struct vgpu_vfio_state *s, u64 iova, int delta)
{
	unsigned long index = iova >> PAGE_SHIFT;
	unsigned long count;
	void *entry;

	lockdep_assert_held(&s->pin_lock);
	entry = xa_load(&s->pins, index);
	count = entry ? xa_to_value(entry) : 0;
	if (delta < 0 && !count)
		return -ENOENT;
	count += delta;
	if (!count) {
		xa_erase(&s->pins, index);
		return 0;
	}
	return xa_err(xa_store(&s->pins, index, xa_mk_value(count),
			       GFP_KERNEL));
}

static int vgpu_vfio_pin_page(void *frontend_priv, u64 iova, bool write,
			      struct page **page)
{
	struct vgpu_vfio_state *s = frontend_priv;
	int prot = IOMMU_READ | (write ? IOMMU_WRITE : 0);
	int ret;

	if (!s || !page || !PAGE_ALIGNED(iova))
		return -EINVAL;

	down_read(&s->pin_sem);
	if (!s->open) {
		ret = -ENODEV;
		goto out;
	}
	ret = vfio_pin_pages(&s->vdev, iova, 1, prot, page);
	if (ret != 1) {
		if (ret >= 0)
			ret = -EFAULT;
		goto out;
	}
	mutex_lock(&s->pin_lock);
	/*
	 * The user is unmapping this page: type1 still lets it be pinned
	 * while it notifies us, but the pin would outlive the mapping.
	 */
	if (s->unmapping && iova >> PAGE_SHIFT >= s->unmap_first &&
	    iova >> PAGE_SHIFT <= s->unmap_last)
		ret = -EAGAIN;
	else
		ret = vgpu_vfio_pin_count(s, iova, 1);
	if (ret)
		vfio_unpin_pages(&s->vdev, iova, 1);
	mutex_unlock(&s->pin_lock);
out:
	up_read(&s->pin_sem);
	return ret;
}

static void vgpu_vfio_unpin_page(void *frontend_priv, u64 iova)
{
	struct vgpu_vfio_state *s = frontend_priv;
	int ret = -ENODEV;

	if (!s)
		return;

	down_read(&s->pin_sem);
	if (s->open) {
		mutex_lock(&s->pin_lock);
		ret = vgpu_vfio_pin_count(s, iova, -1);
		if (!ret)
			vfio_unpin_pages(&s->vdev, iova, 1);
		mutex_unlock(&s->pin_lock);
	}
	up_read(&s->pin_sem);

	if (ret)
		dev_warn_ratelimited(s->vdev.dev,
				     "unpin of IOVA %#llx that is not pinned\n",
				     iova);
}

/* Unpin what the backend still holds in [iova, iova + length). */
static void vgpu_vfio_unpin_range(struct vgpu_vfio_state *s, u64 iova,
				  u64 length, const char *when)
{
	unsigned long first = iova >> PAGE_SHIFT, last, index;
	unsigned long pages = 0;
	void *entry;

	if (!length)
		return;
	last = (iova + length - 1 < iova ? U64_MAX : iova + length - 1) >>
	       PAGE_SHIFT;

	mutex_lock(&s->pin_lock);
	xa_for_each_range(&s->pins, index, entry, first, last) {
		unsigned long count = xa_to_value(entry);

		pages += count;
		while (count--)
			vfio_unpin_pages(&s->vdev, (u64)index << PAGE_SHIFT, 1);
		xa_erase(&s->pins, index);
	}
	mutex_unlock(&s->pin_lock);

	if (pages)
		dev_warn_ratelimited(s->vdev.dev,
				     "vgpu_rm left %lu pins %s; unpinned them\n",
				     pages, when);
}

/* ---- the VFIO device ---------------------------------------------------- */

static struct vgpu_mig *vgpu_vfio_mig_of(struct vfio_device *vdev)
{
	return &vgpu_vfio_state_of(vdev)->mig;
}

static const struct vgpu_mig_ops vgpu_vfio_mig_ops =
	VGPU_MIG_OPS(vgpu_vfio_mig_of);

static int vgpu_vfio_init_dev(struct vfio_device *vdev)
{
	struct vgpu_vfio_state *s = vgpu_vfio_state_of(vdev);

	mutex_init(&s->lock);
	init_rwsem(&s->pin_sem);
	mutex_init(&s->pin_lock);
	mutex_init(&s->unmap_lock);
	xa_init(&s->pins);
	vgpu_vfio_irq_init(s);
	vgpu_mig_init(&s->mig, vdev, &vgpu_vfio_mig_ops, &vgpu_vfio_rm);
	vgpu_display_init(&s->display, vdev, &vgpu_vfio_rm);
	return 0;
}

static void vgpu_vfio_release_dev(struct vfio_device *vdev)
{
	struct vgpu_vfio_state *s = vgpu_vfio_state_of(vdev);

	vgpu_display_exit(&s->display);
	vgpu_mig_exit(&s->mig);
	xa_destroy(&s->pins);
	mutex_destroy(&s->unmap_lock);
	mutex_destroy(&s->pin_lock);
	mutex_destroy(&s->lock);
}

static void vgpu_vfio_set_open(struct vgpu_vfio_state *s, bool open)
{
	down_write(&s->pin_sem);
	s->open = open;
	up_write(&s->pin_sem);
}

static int vgpu_vfio_open_device(struct vfio_device *vdev)
{
	struct vgpu_vfio_state *s = vgpu_vfio_state_of(vdev);
	int ret = 0;

	mutex_lock(&s->lock);
	/* every user gets a freshly powered-on function */
	vgpu_vfio_config_init(s);
	vgpu_vfio_set_open(s, true);
	if (vgpu_vfio_rm.vgpu_start)
		ret = vgpu_vfio_rm.vgpu_start(s->vgpu);
	if (ret) {
		vgpu_vfio_set_open(s, false);
		dev_warn(vdev->dev, "vGPU %pUl not started: %d\n",
			 &s->mdev->uuid, ret);
	} else {
		static const u32 index[VGPU_DISPLAY_NR_REGIONS] = {
			VGPU_VFIO_DISPLAY_REGION(VGPU_DISPLAY_REGION_FB),
			VGPU_VFIO_DISPLAY_REGION(VGPU_DISPLAY_REGION_EDID),
		};

		vgpu_mig_open(&s->mig, s->type->gpu->rm_gpu, s->vgpu,
			      s->type->sysfs_name,
			      s->bars[VGPU_VBAR_VRAM].info.size);
		vgpu_display_open(&s->display, s->vgpu, index,
				  s->bars[VGPU_VBAR_VRAM].info.phys,
				  s->bars[VGPU_VBAR_VRAM].info.size);
	}
	mutex_unlock(&s->lock);
	return ret;
}

static void vgpu_vfio_close_device(struct vfio_device *vdev)
{
	struct vgpu_vfio_state *s = vgpu_vfio_state_of(vdev);

	mutex_lock(&s->lock);
	/* a migration in progress ends with its user */
	vgpu_mig_close(&s->mig);
	/* the VMM's views of the scanout go before the slice is scrubbed */
	vgpu_display_close(&s->display);
	/* still open: the backend unpins what it pinned while stopping */
	if (vgpu_vfio_rm.vgpu_stop)
		vgpu_vfio_rm.vgpu_stop(s->vgpu);
	vgpu_vfio_unpin_range(s, 0, U64_MAX, "at close");
	vgpu_vfio_set_open(s, false);
	vgpu_vfio_irq_release_all(s);
	mutex_unlock(&s->lock);
}

static long vgpu_vfio_ioctl_device_info(void __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_device_info, num_irqs);
	struct vfio_device_info info;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;

	info.flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
	info.num_regions = VFIO_PCI_NUM_REGIONS;
	if (vgpu_display_supported(&vgpu_vfio_rm))
		info.num_regions += VGPU_DISPLAY_NR_REGIONS;
	info.num_irqs = VFIO_PCI_NUM_IRQS;

	return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
}

static long vgpu_vfio_reset(struct vgpu_vfio_state *s)
{
	int ret = 0;

	mutex_lock(&s->lock);
	if (vgpu_vfio_rm.vgpu_reset)
		ret = vgpu_vfio_rm.vgpu_reset(s->vgpu);
	vgpu_vfio_irq_reset(s);
	/* a reset ends a migration: RUNNING, the partition runs */
	vgpu_mig_reset(&s->mig);
	mutex_unlock(&s->lock);
	return ret;
}

static long vgpu_vfio_ioctl(struct vfio_device *vdev, unsigned int cmd,
			    unsigned long arg)
{
	struct vgpu_vfio_state *s = vgpu_vfio_state_of(vdev);
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case VFIO_DEVICE_GET_INFO:
		return vgpu_vfio_ioctl_device_info(uarg);
	case VFIO_DEVICE_GET_REGION_INFO:
		return vgpu_vfio_ioctl_region_info(s, uarg);
	case VFIO_DEVICE_GET_IRQ_INFO:
		return vgpu_vfio_ioctl_irq_info(s, uarg);
	case VFIO_DEVICE_SET_IRQS:
		return vgpu_vfio_ioctl_set_irqs(s, uarg);
	case VFIO_DEVICE_RESET:
		return vgpu_vfio_reset(s);
	case VFIO_DEVICE_QUERY_GFX_PLANE:
		if (!vgpu_display_supported(&vgpu_vfio_rm))
			return -ENOTTY;
		return vgpu_display_query_plane(&s->display, uarg);
	default:
		return -ENOTTY;
	}
}

/* The user unmapped IOVA: the backend drops and unpins its translations. */
static void vgpu_vfio_dma_unmap(struct vfio_device *vdev, u64 iova,
				u64 length)
{
	struct vgpu_vfio_state *s = vgpu_vfio_state_of(vdev);

	if (!length)
		return;
	mutex_lock(&s->unmap_lock);
	/* Refuse new pins in the range until the backend has let go of it. */
	mutex_lock(&s->pin_lock);
	s->unmap_first = iova >> PAGE_SHIFT;
	s->unmap_last = (iova + length - 1 < iova ? U64_MAX : iova + length - 1) >>
			PAGE_SHIFT;
	s->unmapping = true;
	mutex_unlock(&s->pin_lock);

	if (vgpu_vfio_rm.vgpu_dma_unmap)
		vgpu_vfio_rm.vgpu_dma_unmap(s->vgpu, iova, length);
	vgpu_vfio_unpin_range(s, iova, length, "in an unmapped range");

	mutex_lock(&s->pin_lock);
	s->unmapping = false;
	mutex_unlock(&s->pin_lock);
	mutex_unlock(&s->unmap_lock);
}

static const struct vfio_device_ops vgpu_vfio_dev_ops = {
	.name		= "vgpu-vfio",
	.init		= vgpu_vfio_init_dev,
	.release	= vgpu_vfio_release_dev,
	.open_device	= vgpu_vfio_open_device,
	.close_device	= vgpu_vfio_close_device,
	.read		= vgpu_vfio_read,
	.write		= vgpu_vfio_write,
	.mmap		= vgpu_vfio_mmap,
	.ioctl		= vgpu_vfio_ioctl,
	.request	= vgpu_vfio_request,
	.dma_unmap	= vgpu_vfio_dma_unmap,
	.bind_iommufd	= vfio_iommufd_emulated_bind,
	.unbind_iommufd	= vfio_iommufd_emulated_unbind,
	.attach_ioas	= vfio_iommufd_emulated_attach_ioas,
	.detach_ioas	= vfio_iommufd_emulated_detach_ioas,
};

/* ---- mdev: one vGPU per mdev device -------------------------------------- */

static int vgpu_vfio_create_errno(int err)
{
	switch (err) {
	case -ENOSPC:		/* no partition or VRAM left for this type */
	case -ENOMEM:
	case -EINVAL:
	case -EBUSY:
	case -EEXIST:
	case -ENODEV:
	case -EAGAIN:
	case -EIO:
		return err;
	case -EUSERS:
	case -EDQUOT:
	case -ENOBUFS:
		return -ENOSPC;
	default:
		return -EIO;
	}
}

static void vgpu_vfio_gpu_vgpu_gone(struct vgpu_vfio_gpu *gpu)
{
	mutex_lock(&gpu->lock);
	gpu->nr_vgpus--;
	mutex_unlock(&gpu->lock);
}

static int vgpu_vfio_mdev_probe(struct mdev_device *mdev)
{
	struct vgpu_vfio_type *type =
		container_of(mdev->type, struct vgpu_vfio_type, type);
	struct vgpu_vfio_state *s;
	int ret;

	/* the type list is not changed under a vGPU (types_changing) */
	mutex_lock(&type->gpu->lock);
	if (type->gpu->retyping) {
		mutex_unlock(&type->gpu->lock);
		dev_info(&mdev->dev, "vGPU %pUl not created: the GPU's type list is being changed\n",
			 &mdev->uuid);
		return -EBUSY;
	}
	type->gpu->nr_vgpus++;
	mutex_unlock(&type->gpu->lock);

	s = vfio_alloc_device(vgpu_vfio_state, vdev, &mdev->dev,
			      &vgpu_vfio_dev_ops);
	if (IS_ERR(s)) {
		vgpu_vfio_gpu_vgpu_gone(type->gpu);
		return PTR_ERR(s);
	}
	s->mdev = mdev;
	s->type = type;

	ret = vgpu_vfio_rm.vgpu_create(type->gpu->rm_gpu, type->index,
				       &mdev->uuid, s, &s->vgpu);
	if (!ret && !s->vgpu)
		ret = -EIO;
	if (ret) {
		s->vgpu = NULL;
		ret = vgpu_vfio_create_errno(ret);
		if (ret == -ENOSPC)
			dev_info(&mdev->dev,
				 "vGPU %pUl of type %s not created: no room left on the GPU\n",
				 &mdev->uuid, type->sysfs_name);
		else
			dev_warn(&mdev->dev,
				 "vGPU %pUl of type %s not created: %d\n",
				 &mdev->uuid, type->sysfs_name, ret);
		goto err_put;
	}

	ret = vgpu_vfio_bars_init(s);
	if (ret) {
		dev_warn(&mdev->dev, "vGPU %pUl: bad BAR info: %d\n",
			 &mdev->uuid, ret);
		goto err_delete;
	}
	vgpu_vfio_config_init(s);

	ret = vfio_register_emulated_iommu_dev(&s->vdev);
	if (ret)
		goto err_delete;

	dev_set_drvdata(&mdev->dev, s);
	dev_info(&mdev->dev, "vGPU %pUl created: type %s, VRAM %llu KiB\n",
		 &mdev->uuid, type->sysfs_name,
		 s->bars[VGPU_VBAR_VRAM].info.size >> 10);
	return 0;

err_delete:
	vgpu_vfio_rm.vgpu_delete(s->vgpu);
	s->vgpu = NULL;
err_put:
	vfio_put_device(&s->vdev);
	vgpu_vfio_gpu_vgpu_gone(type->gpu);
	return ret;
}

static void vgpu_vfio_mdev_remove(struct mdev_device *mdev)
{
	struct vgpu_vfio_state *s = dev_get_drvdata(&mdev->dev);
	struct vgpu_vfio_gpu *gpu = s->type->gpu;

	/* waits for the user to close it; vgpu_vfio_request() says so */
	vfio_unregister_group_dev(&s->vdev);

	/*
	 * Cannot fail (vgpu_ops.h): afterwards the backend holds no pointer
	 * to s and calls no callback with it, so s can go.
	 */
	vgpu_vfio_rm.vgpu_delete(s->vgpu);
	dev_info(&mdev->dev, "vGPU %pUl removed\n", &mdev->uuid);

	dev_set_drvdata(&mdev->dev, NULL);
	vfio_put_device(&s->vdev);	/* frees s */
	vgpu_vfio_gpu_vgpu_gone(gpu);
}

static unsigned int vgpu_vfio_get_available(struct mdev_type *mtype)
{
	struct vgpu_vfio_type *t =
		container_of(mtype, struct vgpu_vfio_type, type);

	return vgpu_vfio_rm.get_instances(t->gpu->rm_gpu, t->index);
}

static ssize_t vgpu_vfio_show_description(struct mdev_type *mtype, char *buf)
{
	struct vgpu_vfio_type *t =
		container_of(mtype, struct vgpu_vfio_type, type);
	size_t len;
	int ret;

	if (!vgpu_vfio_rm.get_description)
		return sysfs_emit(buf, "%s\n", t->pretty_name);

	/* leave room for the newline sysfs readers expect */
	ret = vgpu_vfio_rm.get_description(t->gpu->rm_gpu, t->index, buf,
					   PAGE_SIZE - 1);
	if (ret < 0)
		return ret;
	buf[PAGE_SIZE - 2] = '\0';
	len = strnlen(buf, PAGE_SIZE - 2);
	while (len && buf[len - 1] == '\n')
		len--;
	buf[len++] = '\n';
	buf[len] = '\0';
	return len;
}

static struct mdev_driver vgpu_vfio_mdev_driver = {
	.device_api = VFIO_DEVICE_API_PCI_STRING,
	.driver = {
		.name = "vgpu_vfio",
		.owner = THIS_MODULE,
		.mod_name = KBUILD_MODNAME,
	},
	.probe = vgpu_vfio_mdev_probe,
	.remove = vgpu_vfio_mdev_remove,
	.get_available = vgpu_vfio_get_available,
	.show_description = vgpu_vfio_show_description,
};

/* ---- callbacks for the backend: GPUs come and go ------------------------ */

static bool vgpu_vfio_ops_complete(void)
{
	const struct vgpu_rm_ops *o = &vgpu_vfio_rm;

	return o->get_types && o->get_name && o->get_instances &&
	       o->vgpu_create && o->vgpu_delete && o->vgpu_bar_info &&
	       o->vgpu_reg_read && o->vgpu_reg_write;
}

/* A type name becomes a sysfs directory name: keep it plain. */
static bool vgpu_vfio_type_name_valid(const char *name)
{
	if (!name || !*name || strnlen(name, VGPU_TYPE_NAME_LEN) >=
	    VGPU_TYPE_NAME_LEN)
		return false;
	for (; *name; name++)
		if (!isalnum(*name) && !strchr("-_.+", *name))
			return false;
	return true;
}

static int vgpu_vfio_type_init(struct vgpu_vfio_gpu *gpu, unsigned int index)
{
	struct vgpu_vfio_type *t = &gpu->types[index];
	const char *name = vgpu_vfio_rm.get_name(gpu->rm_gpu, index);
	const char *human = NULL;
	unsigned int i;

	if (!vgpu_vfio_type_name_valid(name)) {
		dev_err(gpu->dev, "vGPU type %u: bad name\n", index);
		return -EINVAL;
	}
	for (i = 0; i < index; i++) {
		if (!strcmp(gpu->types[i].sysfs_name, name)) {
			dev_err(gpu->dev, "vGPU type name %s used twice\n",
				name);
			return -EINVAL;
		}
	}
	if (vgpu_vfio_rm.get_human_name)
		human = vgpu_vfio_rm.get_human_name(gpu->rm_gpu, index);

	strscpy(t->sysfs_name, name, sizeof(t->sysfs_name));
	strscpy(t->pretty_name, human && *human ? human : name,
		sizeof(t->pretty_name));
	t->gpu = gpu;
	t->index = index;
	t->type.sysfs_name = t->sysfs_name;
	t->type.pretty_name = t->pretty_name;
	gpu->type_ptrs[index] = &t->type;
	return 0;
}

static void vgpu_vfio_gpu_free(struct vgpu_vfio_gpu *gpu)
{
	kfree(gpu->type_ptrs);
	kfree(gpu->types);
	mutex_destroy(&gpu->lock);
	kfree(gpu);
}

static struct vgpu_vfio_gpu *vgpu_vfio_find_gpu(struct vgpu_rm_gpu *rm_gpu)
{
	struct vgpu_vfio_gpu *gpu;

	lockdep_assert_held(&vgpu_vfio_gpus_lock);
	list_for_each_entry(gpu, &vgpu_vfio_gpus, node)
		if (gpu->rm_gpu == rm_gpu)
			return gpu;
	return NULL;
}

/* The backend's type table as mdev types; frees the old ones. */
static int vgpu_vfio_gpu_types_init(struct vgpu_vfio_gpu *gpu)
{
	struct vgpu_vfio_type *types;
	struct mdev_type **ptrs;
	unsigned int i, n;
	int ret;

	n = vgpu_vfio_rm.get_types(gpu->rm_gpu);
	if (!n || n > VGPU_VFIO_MAX_TYPES) {
		dev_err(gpu->dev, "%u vGPU types; 1 to %u are supported\n", n,
			VGPU_VFIO_MAX_TYPES);
		return -EINVAL;
	}
	types = kcalloc(n, sizeof(*types), GFP_KERNEL);
	ptrs = kcalloc(n, sizeof(*ptrs), GFP_KERNEL);
	if (!types || !ptrs) {
		kfree(ptrs);
		kfree(types);
		return -ENOMEM;
	}
	kfree(gpu->type_ptrs);
	kfree(gpu->types);
	gpu->types = types;
	gpu->type_ptrs = ptrs;
	gpu->nr_types = n;
	for (i = 0; i < n; i++) {
		ret = vgpu_vfio_type_init(gpu, i);
		if (ret)
			return ret;
	}
	return 0;
}

static int vgpu_vfio_gpu_probe(struct vgpu_rm_gpu *rm_gpu,
			       struct device *dev)
{
	struct vgpu_vfio_gpu *gpu;
	int ret;

	if (!rm_gpu || !dev)
		return -EINVAL;
	if (!vgpu_vfio_ops_complete()) {
		dev_err(dev, "vgpu_rm filled an incomplete ops table\n");
		return -EINVAL;
	}

	gpu = kzalloc(sizeof(*gpu), GFP_KERNEL);
	if (!gpu)
		return -ENOMEM;
	mutex_init(&gpu->lock);
	gpu->rm_gpu = rm_gpu;
	gpu->dev = dev;
	ret = vgpu_vfio_gpu_types_init(gpu);
	if (ret)
		goto err_free;

	mutex_lock(&vgpu_vfio_gpus_lock);
	if (vgpu_vfio_find_gpu(rm_gpu)) {
		ret = -EEXIST;
		goto err_unlock;
	}
	/* mdev wants the parent held until mdev_unregister_parent() */
	get_device(dev);
	ret = mdev_register_parent(&gpu->parent, dev, &vgpu_vfio_mdev_driver,
				   gpu->type_ptrs, gpu->nr_types);
	if (ret) {
		put_device(dev);
		goto err_unlock;
	}
	gpu->registered = true;
	list_add_tail(&gpu->node, &vgpu_vfio_gpus);
	mutex_unlock(&vgpu_vfio_gpus_lock);

	dev_info(dev, "mdev parent with %u vGPU types\n", gpu->nr_types);
	return 0;

err_unlock:
	mutex_unlock(&vgpu_vfio_gpus_lock);
err_free:
	vgpu_vfio_gpu_free(gpu);
	return ret;
}

static void vgpu_vfio_gpu_unregister(struct vgpu_vfio_gpu *gpu)
{
	/* removes every vGPU of the GPU, each after its user closed it */
	if (gpu->registered) {
		mdev_unregister_parent(&gpu->parent);
		put_device(gpu->dev);
	}
	vgpu_vfio_gpu_free(gpu);
}

static struct vgpu_vfio_gpu *vgpu_vfio_get_gpu(struct vgpu_rm_gpu *rm_gpu)
{
	struct vgpu_vfio_gpu *gpu;

	mutex_lock(&vgpu_vfio_gpus_lock);
	gpu = vgpu_vfio_find_gpu(rm_gpu);
	mutex_unlock(&vgpu_vfio_gpus_lock);
	return gpu;
}

/*
 * The backend's types change (vgpu_ops.h). mdev_register_parent() takes a
 * fixed list and only mdev_unregister_parent() lets go of it, removing
 * every mdev: so the list changes only while the GPU has none, and no
 * mdev can be made until types_changed() registers the parent again.
 * The backend serialises these calls with probe() and remove().
 */
static int vgpu_vfio_gpu_types_changing(struct vgpu_rm_gpu *rm_gpu)
{
	struct vgpu_vfio_gpu *gpu = vgpu_vfio_get_gpu(rm_gpu);
	unsigned int n;

	if (!gpu)
		return 0;
	mutex_lock(&gpu->lock);
	n = gpu->nr_vgpus;
	if (!n)
		gpu->retyping = true;
	mutex_unlock(&gpu->lock);
	if (n) {
		dev_err(gpu->dev, "the mdev type list cannot change while %u vGPU(s) of this GPU exist\n",
			n);
		return -EBUSY;
	}
	if (gpu->registered) {
		mdev_unregister_parent(&gpu->parent);
		put_device(gpu->dev);
		gpu->registered = false;
	}
	return 0;
}

static void vgpu_vfio_gpu_types_changed(struct vgpu_rm_gpu *rm_gpu)
{
	struct vgpu_vfio_gpu *gpu = vgpu_vfio_get_gpu(rm_gpu);
	int ret;

	if (!gpu)
		return;
	ret = vgpu_vfio_gpu_types_init(gpu);
	if (!ret) {
		get_device(gpu->dev);
		ret = mdev_register_parent(&gpu->parent, gpu->dev,
					   &vgpu_vfio_mdev_driver,
					   gpu->type_ptrs, gpu->nr_types);
		if (ret)
			put_device(gpu->dev);
	}
	if (ret) {
		dev_err(gpu->dev, "mdev parent not registered again with the new types: %d (reload vgpu_vfio)\n",
			ret);
	} else {
		gpu->registered = true;
		dev_info(gpu->dev, "mdev parent registered again with %u vGPU types\n",
			 gpu->nr_types);
	}
	mutex_lock(&gpu->lock);
	gpu->retyping = false;
	mutex_unlock(&gpu->lock);
}

static void vgpu_vfio_gpu_remove(struct vgpu_rm_gpu *rm_gpu)
{
	struct vgpu_vfio_gpu *gpu;

	mutex_lock(&vgpu_vfio_gpus_lock);
	gpu = vgpu_vfio_find_gpu(rm_gpu);
	if (gpu)
		list_del(&gpu->node);
	mutex_unlock(&vgpu_vfio_gpus_lock);

	if (gpu)
		vgpu_vfio_gpu_unregister(gpu);
}

/* Whatever the backend did not remove itself. */
static void vgpu_vfio_gpu_remove_all(void)
{
	struct vgpu_vfio_gpu *gpu;

	for (;;) {
		mutex_lock(&vgpu_vfio_gpus_lock);
		gpu = list_first_entry_or_null(&vgpu_vfio_gpus,
					       struct vgpu_vfio_gpu, node);
		if (gpu)
			list_del(&gpu->node);
		mutex_unlock(&vgpu_vfio_gpus_lock);
		if (!gpu)
			return;
		dev_warn(gpu->dev, "not removed by vgpu_rm; removing\n");
		vgpu_vfio_gpu_unregister(gpu);
	}
}

static const struct vgpu_vfio_callbacks vgpu_vfio_callbacks = {
	.probe		= vgpu_vfio_gpu_probe,
	.remove		= vgpu_vfio_gpu_remove,
	.inject_interrupt = vgpu_vfio_inject_interrupt,
	.pin_page	= vgpu_vfio_pin_page,
	.unpin_page	= vgpu_vfio_unpin_page,
	.types_changing	= vgpu_vfio_gpu_types_changing,
	.types_changed	= vgpu_vfio_gpu_types_changed,
};

/* ---- module ------------------------------------------------------------- */

static int __init vgpu_vfio_module_init(void)
{
	int ret;

	/* before set_ops: the backend probes GPUs from inside it */
	ret = mdev_register_driver(&vgpu_vfio_mdev_driver);
	if (ret)
		return ret;

	memset(&vgpu_vfio_rm, 0, sizeof(vgpu_vfio_rm));
	ret = vgpu_rm_set_ops(&vgpu_vfio_rm, &vgpu_vfio_callbacks);
	if (ret) {
		pr_err("vgpu_rm refused the frontend: %d\n", ret);
		vgpu_vfio_gpu_remove_all();
		mdev_unregister_driver(&vgpu_vfio_mdev_driver);
		return ret;
	}
	return 0;
}

static void __exit vgpu_vfio_module_exit(void)
{
	/* the backend calls remove() for each GPU from inside clear_ops */
	vgpu_rm_clear_ops();
	vgpu_vfio_gpu_remove_all();
	mdev_unregister_driver(&vgpu_vfio_mdev_driver);
}

module_init(vgpu_vfio_module_init);
module_exit(vgpu_vfio_module_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vgpu-pci mdev/VFIO frontend: exposes vGPUs of vgpu_rm");
MODULE_IMPORT_NS(IOMMUFD);	/* iova_bitmap_set, for DMA logging */
