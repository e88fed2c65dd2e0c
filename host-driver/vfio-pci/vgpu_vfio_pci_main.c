// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vgpu_vfio_pci_main.c - the vfio-pci variant driver of SR-IOV mode
 * (vgpu_vfio_pci.ko): binds the GPU's VFs (1234:7691, is_virtfn) and makes
 * each one a VFIO device that a VMM assigns with plain `-device vfio-pci`.
 *
 * A VF's BARs, config space, MSI-X and FLR are the device's own, so
 * vfio-pci-core does all of that; this driver adds only the vGPU's
 * lifecycle, and reaches the resource manager only through the VF ops of
 * include/vgpu_ops.h (vgpu_rm_vf_get(), found through the PF's driver as
 * pci_iov_get_pf_drvdata() does):
 *   open  - refused unless the admin gave the VF a type (current_vgpu_type);
 *           else the partition is enabled, then vfio-pci-core enables the VF
 *           (its FLR keeps the partition enabled, SPEC 15);
 *   close - a migration ends, vfio-pci-core disables and resets the VF,
 *           then the partition is disabled and its VRAM slice scrubbed for
 *           the next tenant.
 * and its migration: VFIO migration v2 and DMA logging by the frontends'
 * one engine (vgpu_mig.h, exported by vgpu_vfio.ko), on the VF's vGPU and
 * the RM's VF vGPU ops. A reset of the VF (FLR: VFIO_DEVICE_RESET, sysfs,
 * vfio-pci-core's own) ends a migration as on an mdev vGPU; it is reported
 * through reset_done, under the device lock, so the engine applies it
 * deferred if a migration step holds its lock (as mlx5 and hisi_acc do)
 * or a data file is open (then after VFIO_DEVICE_RESET returns).
 * And its display head, by the frontends' one display engine
 * (vgpu_display.h): QUERY_GFX_PLANE here, its two regions as
 * vfio-pci-core device regions registered at each open (the core frees
 * them at close); the display region maps the slice through the PF's
 * VRAM BAR, which stays reachable while the VF is in reset.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/pci.h>
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>

#include "vgpu_display.h"
#include "vgpu_mig.h"
#include "vgpu_ops.h"
#include "vgpu_regs.h"

struct vgpu_vfio_pci {
	struct vfio_pci_core_device core;	/* first: vfio_alloc_device */
	struct vgpu_rm_gpu *gpu;
	const struct vgpu_rm_vf_ops *ops;
	struct vgpu_mig mig;
	struct vgpu_display display;
};

static struct vgpu_vfio_pci *to_vgpu_vfio_pci(struct vfio_device *vdev)
{
	return container_of(vdev, struct vgpu_vfio_pci, core.vdev);
}

static struct vgpu_mig *vgpu_vfio_pci_mig_of(struct vfio_device *vdev)
{
	return &to_vgpu_vfio_pci(vdev)->mig;
}

static const struct vgpu_mig_ops vgpu_vfio_pci_mig_ops =
	VGPU_MIG_OPS(vgpu_vfio_pci_mig_of);

static void vgpu_vfio_pci_release_dev(struct vfio_device *vdev)
{
	vgpu_display_exit(&to_vgpu_vfio_pci(vdev)->display);
	vgpu_mig_exit(&to_vgpu_vfio_pci(vdev)->mig);
	vfio_pci_core_release_dev(vdev);
}

/* ---- the display engine's regions as vfio-pci-core device regions ---- */

static struct vgpu_vfio_pci *
vgpu_vfio_pci_of_core(struct vfio_pci_core_device *core)
{
	return container_of(core, struct vgpu_vfio_pci, core);
}

static ssize_t vgpu_vfio_pci_display_rw(struct vfio_pci_core_device *core,
					enum vgpu_display_region which,
					char __user *buf, size_t count,
					loff_t *ppos, bool write)
{
	ssize_t ret;

	ret = vgpu_display_region_rw(&vgpu_vfio_pci_of_core(core)->display,
				     which, buf, count,
				     *ppos & VFIO_PCI_OFFSET_MASK, write);
	if (ret > 0)
		*ppos += ret;
	return ret;
}

static ssize_t vgpu_vfio_pci_fb_rw(struct vfio_pci_core_device *core,
				   char __user *buf, size_t count,
				   loff_t *ppos, bool write)
{
	return vgpu_vfio_pci_display_rw(core, VGPU_DISPLAY_REGION_FB, buf,
					count, ppos, write);
}

static ssize_t vgpu_vfio_pci_edid_rw(struct vfio_pci_core_device *core,
				     char __user *buf, size_t count,
				     loff_t *ppos, bool write)
{
	return vgpu_vfio_pci_display_rw(core, VGPU_DISPLAY_REGION_EDID, buf,
					count, ppos, write);
}

static int vgpu_vfio_pci_fb_mmap(struct vfio_pci_core_device *core,
				 struct vfio_pci_region *region,
				 struct vm_area_struct *vma)
{
	u64 off = ((u64)vma->vm_pgoff << PAGE_SHIFT) & VFIO_PCI_OFFSET_MASK;

	return vgpu_display_region_mmap(&vgpu_vfio_pci_of_core(core)->display,
					VGPU_DISPLAY_REGION_FB, vma, off);
}

/* vfio_pci_core_disable() frees the regions; the engine owns nothing here */
static void vgpu_vfio_pci_region_release(struct vfio_pci_core_device *core,
					 struct vfio_pci_region *region)
{
}

static const struct vfio_pci_regops vgpu_vfio_pci_fb_regops = {
	.rw = vgpu_vfio_pci_fb_rw,
	.mmap = vgpu_vfio_pci_fb_mmap,
	.release = vgpu_vfio_pci_region_release,
};

static const struct vfio_pci_regops vgpu_vfio_pci_edid_regops = {
	.rw = vgpu_vfio_pci_edid_rw,
	.release = vgpu_vfio_pci_region_release,
};

/*
 * The display of the started VF's vGPU: the engine first (it sizes the
 * display region), then the two regions, numbered by the core in order.
 */
static void vgpu_vfio_pci_display_open(struct vgpu_vfio_pci *v,
				       const struct vgpu_rm_vf_vgpu *info)
{
	static const struct vfio_pci_regops *regops[] = {
		[VGPU_DISPLAY_REGION_FB] = &vgpu_vfio_pci_fb_regops,
		[VGPU_DISPLAY_REGION_EDID] = &vgpu_vfio_pci_edid_regops,
	};
	u32 index[VGPU_DISPLAY_NR_REGIONS];
	int i, ret = 0;

	if (!vgpu_display_supported(v->ops->vf_vgpu_ops))
		return;
	for (i = 0; i < VGPU_DISPLAY_NR_REGIONS; i++)
		index[i] = VFIO_PCI_NUM_REGIONS + v->core.num_regions + i;
	vgpu_display_open(&v->display, info->vgpu, index, info->vram_phys,
			  info->vram_size);
	for (i = 0; i < VGPU_DISPLAY_NR_REGIONS && !ret; i++) {
		u32 type, subtype;

		vgpu_display_region_type(i, &type, &subtype);
		ret = vfio_pci_core_register_dev_region(&v->core, type, subtype,
							regops[i],
							vgpu_display_region_size(&v->display, i),
							vgpu_display_region_flags(i),
							NULL);
	}
	if (ret) {
		/* a region already registered stays, showing nothing */
		vgpu_display_close(&v->display);
		pci_warn(v->core.pdev, "opened without a display: %d\n", ret);
	}
}

/* The started VF's vGPU to the migration and display engines. */
static void vgpu_vfio_pci_engines_open(struct vgpu_vfio_pci *v)
{
	struct vgpu_rm_vf_vgpu info;
	int ret;

	if (!v->ops->vf_vgpu)
		return;
	ret = v->ops->vf_vgpu(v->gpu, v->core.pdev, &info);
	if (ret) {
		/* its migration ops say -ENODEV, its plane query too */
		pci_warn(v->core.pdev, "opened without migration and display: no vGPU handle (%d)\n",
			 ret);
		return;
	}
	if (v->core.vdev.mig_ops)
		vgpu_mig_open(&v->mig, v->gpu, info.vgpu, info.type,
			      info.vram_size);
	vgpu_vfio_pci_display_open(v, &info);
}

static int vgpu_vfio_pci_open_device(struct vfio_device *vdev)
{
	struct vgpu_vfio_pci *v = to_vgpu_vfio_pci(vdev);
	struct pci_dev *pdev = v->core.pdev;
	int ret;

	/* First, so that a VF without a type is refused untouched. */
	ret = v->ops->vf_open(v->gpu, pdev);
	if (ret)
		return ret;
	ret = vfio_pci_core_enable(&v->core);
	if (ret) {
		v->ops->vf_close(v->gpu, pdev);
		return ret;
	}
	/* after enable's FLR: the migration starts RUNNING */
	vgpu_vfio_pci_engines_open(v);
	vfio_pci_core_finish_enable(&v->core);
	pci_info(pdev, "opened: vGPU of %llu MiB started\n",
		 v->ops->vf_framebuffer(v->gpu, pdev) >> 20);
	return 0;
}

static void vgpu_vfio_pci_close_device(struct vfio_device *vdev)
{
	struct vgpu_vfio_pci *v = to_vgpu_vfio_pci(vdev);

	/* its data files fail from now on, the dirty logs are let go */
	vgpu_mig_close(&v->mig);
	/* the VMM's views of the scanout go before the slice is scrubbed */
	vgpu_display_close(&v->display);
	/* disables the VF, FLR included: the tenant's work stops here */
	vfio_pci_core_close_device(vdev);
	/* the partition off and its slice scrubbed */
	v->ops->vf_close(v->gpu, v->core.pdev);
	pci_info(v->core.pdev, "closed: vGPU stopped, VRAM scrubbed\n");
}

static long vgpu_vfio_pci_ioctl(struct vfio_device *vdev, unsigned int cmd,
				unsigned long arg)
{
	struct vgpu_vfio_pci *v = to_vgpu_vfio_pci(vdev);
	long ret;

	if (cmd == VFIO_DEVICE_QUERY_GFX_PLANE) {
		if (!vgpu_display_supported(v->ops->vf_vgpu_ops))
			return -ENOTTY;
		return vgpu_display_query_plane(&v->display,
						(void __user *)arg);
	}
	ret = vfio_pci_core_ioctl(vdev, cmd, arg);

	/* a reset the engine had to defer (reset_done) is applied here */
	if (cmd == VFIO_DEVICE_RESET)
		vgpu_mig_reset_flush(&v->mig);
	return ret;
}

/* Removal waits for the VMM: a migration in or out cannot finish. */
static void vgpu_vfio_pci_request(struct vfio_device *vdev, unsigned int count)
{
	vgpu_mig_request(&to_vgpu_vfio_pci(vdev)->mig);
	vfio_pci_core_request(vdev, count);
}

static const struct vfio_device_ops vgpu_vfio_pci_ops = {
	.name = "vgpu-vfio-pci",
	.init = vfio_pci_core_init_dev,
	.release = vgpu_vfio_pci_release_dev,
	.open_device = vgpu_vfio_pci_open_device,
	.close_device = vgpu_vfio_pci_close_device,
	.ioctl = vgpu_vfio_pci_ioctl,
	.device_feature = vfio_pci_core_ioctl_feature,
	.read = vfio_pci_core_read,
	.write = vfio_pci_core_write,
	.mmap = vfio_pci_core_mmap,
	.request = vgpu_vfio_pci_request,
	.match = vfio_pci_core_match,
	.bind_iommufd = vfio_iommufd_physical_bind,
	.unbind_iommufd = vfio_iommufd_physical_unbind,
	.attach_ioas = vfio_iommufd_physical_attach_ioas,
	.detach_ioas = vfio_iommufd_physical_detach_ioas,
};

static int vgpu_vfio_pci_probe(struct pci_dev *pdev,
			       const struct pci_device_id *id)
{
	const struct vgpu_rm_vf_ops *ops;
	struct vgpu_rm_gpu *gpu;
	struct vgpu_vfio_pci *v;
	int ret;

	gpu = vgpu_rm_vf_get(pdev, &ops);
	if (IS_ERR(gpu)) {
		pci_err(pdev, "not a VF of a GPU that vgpu_rm runs in SR-IOV mode (%ld)\n",
			PTR_ERR(gpu));
		return PTR_ERR(gpu);
	}
	v = vfio_alloc_device(vgpu_vfio_pci, core.vdev, &pdev->dev,
			      &vgpu_vfio_pci_ops);
	if (IS_ERR(v))
		return PTR_ERR(v);
	v->gpu = gpu;
	v->ops = ops;
	/* before registering: VFIO reads migration_flags there */
	vgpu_mig_init(&v->mig, &v->core.vdev, &vgpu_vfio_pci_mig_ops,
		      ops->vf_vgpu ? ops->vf_vgpu_ops : NULL);
	vgpu_display_init(&v->display, &v->core.vdev,
			  ops->vf_vgpu ? ops->vf_vgpu_ops : NULL);
	dev_set_drvdata(&pdev->dev, &v->core);
	ret = vfio_pci_core_register_device(&v->core);
	if (ret) {
		vfio_put_device(&v->core.vdev);
		return ret;
	}
	return 0;
}

static void vgpu_vfio_pci_remove(struct pci_dev *pdev)
{
	struct vfio_pci_core_device *core = dev_get_drvdata(&pdev->dev);

	/* waits for the VMM to close the VF (close_device runs first) */
	vfio_pci_core_unregister_device(core);
	vfio_put_device(&core->vdev);
}

/*
 * Every reset of the VF (it resets its partition's window, SPEC 15) ends
 * a migration; called under the device lock, so the engine may defer it.
 */
static void vgpu_vfio_pci_reset_done(struct pci_dev *pdev)
{
	struct vfio_pci_core_device *core = dev_get_drvdata(&pdev->dev);

	vgpu_mig_reset_done(&to_vgpu_vfio_pci(&core->vdev)->mig);
}

static const struct pci_error_handlers vgpu_vfio_pci_err_handlers = {
	.reset_done = vgpu_vfio_pci_reset_done,
	.error_detected = vfio_pci_core_aer_err_detected,
};

static const struct pci_device_id vgpu_vfio_pci_ids[] = {
	{ PCI_DEVICE(VGPU_PCI_VENDOR_ID, VGPU_PCI_VGPU_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, vgpu_vfio_pci_ids);

static struct pci_driver vgpu_vfio_pci_driver = {
	.name = KBUILD_MODNAME,
	.id_table = vgpu_vfio_pci_ids,
	.probe = vgpu_vfio_pci_probe,
	.remove = vgpu_vfio_pci_remove,
	.err_handler = &vgpu_vfio_pci_err_handlers,
	.driver_managed_dma = true,
};
module_pci_driver(vgpu_vfio_pci_driver);

MODULE_IMPORT_NS(VGPU_MIG);	/* the migration engine, in vgpu_vfio.ko */
MODULE_IMPORT_NS(VGPU_DISPLAY);	/* the display engine, likewise */
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("vgpu-pci SR-IOV VFs as VFIO devices (vfio-pci variant driver of vgpu_rm)");
