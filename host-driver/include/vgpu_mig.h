/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vgpu_mig.h - the frontends' one migration engine (VFIO migration v2 and
 * DMA logging of a vGPU, host-driver/vfio/vgpu_mig.c), shared by the mdev
 * frontend and the SR-IOV variant driver. It lives in vgpu_vfio.ko, which
 * exports it in the VGPU_MIG namespace; vgpu_vfio_pci.ko imports it (load
 * vgpu_vfio first). Not a door to the RM: the engine reaches the hardware
 * only through the struct vgpu_rm_ops its frontend gives it.
 *
 * A frontend embeds a struct vgpu_mig next to its struct vfio_device,
 * defines a struct vgpu_mig_ops with VGPU_MIG_OPS() (its accessor from the
 * vfio_device to its vgpu_mig) and calls:
 *   vgpu_mig_init()   - from its vfio_device init: sets migration_flags,
 *                       mig_ops and log_ops as the RM's ops allow;
 *   vgpu_mig_open()   - once the vGPU is started for a new user;
 *   vgpu_mig_close()  - when that user goes, before the vGPU stops;
 *   vgpu_mig_reset()  - after a reset of the started vGPU, or
 *   vgpu_mig_reset_done() where the reset is reported from a context that
 *                       may not wait for the engine (PCI reset_done), and
 *   vgpu_mig_reset_flush() once that context's locks are let go;
 *   vgpu_mig_request() - the vGPU is being removed (vfio request);
 *   vgpu_mig_exit()   - from its vfio_device release.
 */
#ifndef VGPU_MIG_H
#define VGPU_MIG_H

#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/vfio.h>
#include <linux/xarray.h>

#include "vgpu_ops.h"

struct vgpu_mig_file;

struct vgpu_mig {
	struct vfio_device *vdev;
	const struct vgpu_rm_ops *rm;
	struct vgpu_rm_gpu *gpu;
	/*
	 * Under lock: the vGPU and what its stream header says of it, from
	 * vgpu_mig_open() to vgpu_mig_close() (NULL while nobody has it),
	 * the state, its data files, and whether the saving one (pre-copy)
	 * holds a reference on the RM's dirty logs.
	 */
	struct mutex lock;
	struct vgpu_rm_vgpu *vgpu;
	char type[VGPU_TYPE_NAME_LEN];
	u64 vram_size;
	enum vfio_device_mig_state state;
	struct vgpu_mig_file *saving;
	struct vgpu_mig_file *resuming;
	bool saving_log;
	/* DMA logging: on, and device log bits read but not yet reported */
	bool logging;
	u64 log_page, log_span;
	struct xarray log_carry;
	/*
	 * A reset reported while lock was held elsewhere: whoever holds it
	 * applies the reset when it lets go (drivers/vfio/pci/mlx5 does the
	 * same), so a reset never waits for a migration step.
	 */
	spinlock_t reset_lock;
	bool deferred_reset;
};

/* What a frontend puts in vdev->mig_ops and vdev->log_ops. */
struct vgpu_mig_ops {
	struct vfio_migration_ops mig;
	struct vfio_log_ops log;
	struct vgpu_mig *(*of)(struct vfio_device *vdev);
};

struct file *vgpu_mig_set_state(struct vfio_device *vdev,
				enum vfio_device_mig_state new_state);
int vgpu_mig_get_state(struct vfio_device *vdev,
		       enum vfio_device_mig_state *state);
int vgpu_mig_get_data_size(struct vfio_device *vdev,
			   unsigned long *stop_copy_length);
int vgpu_mig_log_start(struct vfio_device *vdev,
		       struct rb_root_cached *ranges, u32 nnodes,
		       u64 *page_size);
int vgpu_mig_log_stop(struct vfio_device *vdev);
int vgpu_mig_log_read_and_clear(struct vfio_device *vdev,
				unsigned long iova, unsigned long length,
				struct iova_bitmap *dirty);

#define VGPU_MIG_OPS(of_fn) {						\
	.mig = {							\
		.migration_set_state = vgpu_mig_set_state,		\
		.migration_get_state = vgpu_mig_get_state,		\
		.migration_get_data_size = vgpu_mig_get_data_size,	\
	},								\
	.log = {							\
		.log_start = vgpu_mig_log_start,			\
		.log_stop = vgpu_mig_log_stop,				\
		.log_read_and_clear = vgpu_mig_log_read_and_clear,	\
	},								\
	.of = of_fn,							\
}

void vgpu_mig_init(struct vgpu_mig *mig, struct vfio_device *vdev,
		   const struct vgpu_mig_ops *ops,
		   const struct vgpu_rm_ops *rm);
void vgpu_mig_open(struct vgpu_mig *mig, struct vgpu_rm_gpu *gpu,
		   struct vgpu_rm_vgpu *vgpu, const char *type, u64 vram_size);
void vgpu_mig_close(struct vgpu_mig *mig);
void vgpu_mig_reset(struct vgpu_mig *mig);
void vgpu_mig_reset_done(struct vgpu_mig *mig);
void vgpu_mig_reset_flush(struct vgpu_mig *mig);
void vgpu_mig_request(struct vgpu_mig *mig);
void vgpu_mig_exit(struct vgpu_mig *mig);

#endif /* VGPU_MIG_H */
