/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Internal state of the vgpu-pci resource manager (vgpu_rm.ko):
 * one struct vgpu_rm_gpu per bound GPU, one struct vgpu_rm_vgpu per vGPU.
 */
#ifndef VGPU_RM_H
#define VGPU_RM_H

#include <linux/bitmap.h>
#include <linux/interrupt.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/uuid.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "vgpu_ops.h"
#include "vgpu_regs.h"

#define VGPU_RM_NAME		"vgpu_rm"
/* Programming-interface major version this driver speaks (SPEC.md). */
#define VGPU_RM_VERSION_MAJOR	1

/* Built-in and runtime-defined (configfs) types together, per GPU. */
#define VGPU_RM_MAX_TYPES	32
/*
 * Every vGPU gets the largest translation directory the device allows:
 * 4096 entries of 2 MiB = 8 GiB of guest address space in a 32 KiB
 * directory, so an L2 guest with RAM above 4 GiB still works.
 */
#define VGPU_RM_DIR_ENTRIES	VGPU_XLATE_MAX_DIR_ENTRIES
#define VGPU_RM_FAULT_HISTORY	16
/* Longest hold-up of a vGPU's fault service that debugfs lets a test ask for */
#define VGPU_RM_MAX_XLATE_DELAY_MS	10000

struct vgpu_rm_gpu;

enum vgpu_rm_mode {
	VGPU_RM_MODE_MDEV,	/* vGPUs are mdevs of the frontend */
	VGPU_RM_MODE_SRIOV,	/* vGPUs are VFs with a type (current_vgpu_type) */
};

/* One enabled VF (SR-IOV mode): partition n is VF n. */
struct vgpu_rm_vf {
	struct pci_dev *pdev;
	struct vgpu_rm_vgpu *vgpu;	/* its type, or NULL */
	bool open;			/* a VMM has it (vgpu_rm_vf_open()) */
	bool attrs;			/* creatable/current_vgpu_type exist */
};

/*
 * A vGPU type. Built-in ones (module parameter or default table) live as
 * long as the GPU; runtime ones are embedded in their configfs item and
 * are in the GPU's table only while enabled. A vGPU points at its type,
 * so table positions may change while vGPUs exist.
 */
struct vgpu_rm_type {
	/* stable ID: creatable_vgpu_types / current_vgpu_type (SR-IOV) */
	unsigned int id;
	char name[VGPU_TYPE_NAME_LEN];		/* "vgpu-256M" */
	char human_name[VGPU_TYPE_DESC_LEN];	/* "vGPU 256M (1/4 GPU)" */
	char fb_str[16];			/* "256M" */
	u64 framebuffer_bytes;
	unsigned int max_instances;
	unsigned int weight;
	unsigned int created;			/* under gpu->lock */
	bool runtime;				/* defined through configfs */
};

/* A page table of the partition's translation (512 PTEs, one page). */
struct vgpu_rm_pt {
	__le64 *cpu;
	dma_addr_t dma;
};

/* A guest page pinned and mapped for the GPU, keyed by iova page. */
struct vgpu_rm_pin {
	struct page *page;
	dma_addr_t dma;
	bool writable;		/* pinned for writes, PTE WRITABLE */
};

struct vgpu_rm_vgpu {
	struct vgpu_rm_gpu *gpu;
	unsigned int partition;
	struct vgpu_rm_type *type;
	guid_t uuid;
	/* the vGPU of SR-IOV VF @partition: no device-side translation */
	bool vf;
	void *frontend_priv;
	/* NULL for a vGPU made through debugfs' control file, whose
	 * "system memory" is pages the RM allocates on translation faults
	 */
	const struct vgpu_vfio_callbacks *cb;
	u64 vram_base;
	u64 vram_size;
	bool placed;		/* holds a partition (and the VRAM slice) */
	/*
	 * Under xlate_lock: CTRL.STOP as the migration ops set it, and how
	 * many users (the frontend's DMA logging, its pre-copy) hold the
	 * partition's one CTRL.DIRTY_LOG bit, which is set while any does;
	 * vgpu_rm_start/stop clear both
	 */
	bool stopped;
	unsigned int dirty_users;
	/*
	 * The slice in the kernel's address space, for vgpu_vram_rw only:
	 * mapped on its first call (under vram_lock), unmapped at delete.
	 */
	struct mutex vram_lock;
	void __iomem *vram;

	/*
	 * Translation faults are serviced per vGPU, so that a pin that takes
	 * long (a hostile VMM's memory) holds up only this vGPU: the GPU's
	 * fault thread leaves the latest fault here (under gpu->irq_lock)
	 * and queues fault_work on gpu->xlate_wq.
	 */
	struct work_struct fault_work;
	bool fault_pending;
	bool fault_write;
	u64 fault_addr;
	/* debugfs: hold up each of its fault services by that long (tests) */
	unsigned int xlate_delay_ms;
	/* translation state; also serialises start/stop/reset with faults */
	struct mutex xlate_lock;
	bool started;
	__le64 *dir;			/* VGPU_RM_DIR_ENTRIES entries */
	dma_addr_t dir_dma;
	struct vgpu_rm_pt *pts;		/* one per directory entry */
	struct xarray pins;		/* iova >> PAGE_SHIFT -> vgpu_rm_pin */
	unsigned long nr_pins;

	/* statistics for debugfs */
	atomic64_t irqs_injected;
	atomic64_t xlate_faults;
	atomic64_t xlate_cancels;
};

/* What a partition's two MSI-X vectors need in hard-irq context. */
struct vgpu_rm_partition {
	struct vgpu_rm_gpu *gpu;
	unsigned int index;
	struct vgpu_rm_vgpu *vgpu;	/* owner, under gpu->irq_lock */
};

struct vgpu_rm_fault_entry {
	u64 seq;
	u64 addr;
	u32 info;
};

struct vgpu_rm_gpu {
	struct pci_dev *pdev;
	struct list_head node;		/* in vgpu_rm_gpus, under vgpu_rm_lock */
	/*
	 * Under vgpu_rm_lock: the frontend whose probe() took this GPU, and
	 * whether its remove() of it runs (without the lock)
	 */
	const struct vgpu_vfio_callbacks *frontend;
	bool frontend_removing;

	void __iomem *regs;
	phys_addr_t regs_phys;
	phys_addr_t vram_phys;
	u64 vram_size;
	u32 version;
	u32 caps;
	unsigned int partitions;
	/*
	 * Partitions 0..vf_partitions-1 are the VFs' (SPEC 15: VF n is
	 * partition n's function, and the device refuses it translation), so
	 * mdev vGPUs, which need translation, take the others.
	 */
	unsigned int vf_partitions;
	unsigned int nvec;
	int xlate_irq;

	/* allocators, types, vGPU lifecycle */
	struct mutex lock;
	unsigned long *vram_map;	/* one bit per 64 KiB granule */
	unsigned long *vram_scratch;	/* for available_instances trials */
	unsigned int vram_granules;
	DECLARE_BITMAP(part_map, VGPU_MAX_PARTITIONS);
	/*
	 * The type table; changed under vgpu_rm_lock and gpu->lock, so
	 * either keeps it stable for a reader (vgpu_rm_alloc.c)
	 */
	struct vgpu_rm_type *types[VGPU_RM_MAX_TYPES];
	unsigned int nr_types;
	unsigned int next_type_id;

	/* mdev or SR-IOV (vgpu_rm_sriov.c); under vgpu_rm_lock and gpu->lock */
	enum vgpu_rm_mode mode;
	/* SR-IOV: one entry per VF while VFs are enabled, under sriov_lock */
	struct mutex sriov_lock;
	/* the device's one context buffer (CTX_*, SPEC 16) */
	struct mutex ctx_lock;
	/* the device's one EDID cursor (EDID_SEL, EDID_DATA) */
	struct mutex edid_lock;
	struct vgpu_rm_vf *vfs;
	unsigned int nr_vfs;
	bool vfs_going;			/* sriov_configure(0) runs */
	u64 vf_vram_bar_bytes;		/* S: the VF VRAM BAR size */

	/* the fault thread's read-and-pop vs. writes that drop entries */
	struct mutex xlate_queue_lock;
	/* unbound: one vGPU's fault_work never waits for another's */
	struct workqueue_struct *xlate_wq;

	/*
	 * partition ownership as seen from interrupt handlers and the fault
	 * thread; also each vGPU's pending fault
	 */
	spinlock_t irq_lock;
	struct vgpu_rm_partition parts[VGPU_MAX_PARTITIONS];

	/* host events (vector 0) */
	spinlock_t fault_lock;
	u64 faults_seen;
	u32 faults_lost;
	struct vgpu_rm_fault_entry fault_history[VGPU_RM_FAULT_HISTORY];

	struct dentry *debugfs;
};

static inline void __iomem *
vgpu_rm_pt_reg(struct vgpu_rm_gpu *gpu, unsigned int p, u64 reg)
{
	return gpu->regs + VGPU_PTABLE_BASE + p * VGPU_PTABLE_STRIDE + reg;
}

static inline void __iomem *
vgpu_rm_win_reg(struct vgpu_rm_gpu *gpu, unsigned int p, u64 reg)
{
	return gpu->regs + VGPU_WINDOW_BASE + p * VGPU_WINDOW_STRIDE + reg;
}

/* vgpu_rm_main.c */
extern struct mutex vgpu_rm_lock;
const struct vgpu_vfio_callbacks *vgpu_rm_frontend_callbacks(void);
struct vgpu_rm_gpu *vgpu_rm_find_gpu(const char *name);
int vgpu_rm_frontend_attach(struct vgpu_rm_gpu *gpu);
void vgpu_rm_frontend_detach_gpu(struct vgpu_rm_gpu *gpu);
int vgpu_rm_types_change_begin(struct vgpu_rm_gpu *gpu);
void vgpu_rm_types_change_end(struct vgpu_rm_gpu *gpu);

/* vgpu_rm_alloc.c: VRAM and partition allocators, type table */
int vgpu_rm_types_init(struct vgpu_rm_gpu *gpu, const char *spec);
int vgpu_rm_vram_alloc(struct vgpu_rm_gpu *gpu, unsigned long *map,
		       u64 size, u64 *base);
void vgpu_rm_vram_free(struct vgpu_rm_gpu *gpu, u64 base, u64 size);
unsigned int vgpu_rm_available(struct vgpu_rm_gpu *gpu,
			       struct vgpu_rm_type *t);
struct vgpu_rm_type *vgpu_rm_type_at(struct vgpu_rm_gpu *gpu,
				     unsigned int index);
struct vgpu_rm_type *vgpu_rm_type_by_name(struct vgpu_rm_gpu *gpu,
					  const char *name);
struct vgpu_rm_type *vgpu_rm_type_by_id(struct vgpu_rm_gpu *gpu,
					unsigned int id);
int vgpu_rm_type_publish(struct vgpu_rm_gpu *gpu, struct vgpu_rm_type *t);
int vgpu_rm_type_unpublish(struct vgpu_rm_gpu *gpu, struct vgpu_rm_type *t);
void vgpu_rm_type_describe(struct vgpu_rm_type *t);
int vgpu_rm_parse_framebuffer(struct vgpu_rm_gpu *gpu, const char *what,
			      const char *str, bool pow2, u64 *bytes);
void vgpu_rm_format_size(char *buf, size_t len, u64 bytes);

/* vgpu_rm_configfs.c: runtime-defined types */
int vgpu_rm_configfs_init(void);
void vgpu_rm_configfs_exit(void);
void vgpu_rm_configfs_gpu_gone(struct vgpu_rm_gpu *gpu);

/* vgpu_rm_sriov.c: the PF driver's side of SR-IOV mode */
extern const struct attribute_group *vgpu_rm_pf_groups[];
extern const struct vgpu_rm_vf_ops vgpu_rm_vf_ops_table;
int vgpu_rm_sriov_configure(struct pci_dev *pdev, int num_vfs);
void vgpu_rm_sriov_remove(struct vgpu_rm_gpu *gpu);

/* vgpu_rm_vgpu.c: the ops table */
extern const struct vgpu_rm_ops vgpu_rm_ops_table;
extern const struct vgpu_rm_ops vgpu_rm_vf_vgpu_ops;
/* @partition: a VF's own partition, or VGPU_RM_ANY_PARTITION */
#define VGPU_RM_ANY_PARTITION	(-1)
int vgpu_rm_create(struct vgpu_rm_gpu *gpu, unsigned int type_id,
		   int partition, const guid_t *uuid, void *frontend_priv,
		   const struct vgpu_vfio_callbacks *cb,
		   struct vgpu_rm_vgpu **out);
void vgpu_rm_delete(struct vgpu_rm_vgpu *vgpu);
int vgpu_rm_start(struct vgpu_rm_vgpu *vgpu);
void vgpu_rm_stop(struct vgpu_rm_vgpu *vgpu);
int vgpu_rm_reset(struct vgpu_rm_vgpu *vgpu);

/* vgpu_rm_mig.c */
int vgpu_rm_mig_stop(struct vgpu_rm_vgpu *vgpu);
int vgpu_rm_mig_resume(struct vgpu_rm_vgpu *vgpu);
size_t vgpu_rm_mig_state_size(struct vgpu_rm_gpu *gpu);
ssize_t vgpu_rm_mig_save(struct vgpu_rm_vgpu *vgpu, void *buf, size_t len);
int vgpu_rm_mig_restore(struct vgpu_rm_vgpu *vgpu, const void *buf,
			size_t len);
int vgpu_rm_dirty_start(struct vgpu_rm_vgpu *vgpu, u64 *page_size, u64 *span);
void vgpu_rm_dirty_stop(struct vgpu_rm_vgpu *vgpu);
int vgpu_rm_dirty_read(struct vgpu_rm_vgpu *vgpu, bool vram, u32 first,
		       u32 *words, u32 n);

/* vgpu_rm_display.c: the display head */
int vgpu_rm_display_plane(struct vgpu_rm_vgpu *vgpu,
			  struct vgpu_display_plane *plane);
int vgpu_rm_display_set_edid(struct vgpu_rm_vgpu *vgpu, const u8 *edid,
			     size_t len, bool connected);
void vgpu_rm_display_max_mode(struct vgpu_rm_vgpu *vgpu, u32 *width,
			      u32 *height);
void vgpu_rm_display_default(struct vgpu_rm_vgpu *vgpu);

/* vgpu_rm_xlate.c: translation tables and replayable faults */
void vgpu_rm_reset_write(struct vgpu_rm_gpu *gpu, u32 val,
			 void __iomem *addr);
int vgpu_rm_xlate_init(struct vgpu_rm_vgpu *vgpu);
void vgpu_rm_xlate_work(struct work_struct *work);
void vgpu_rm_xlate_clear(struct vgpu_rm_vgpu *vgpu);
void vgpu_rm_xlate_destroy(struct vgpu_rm_vgpu *vgpu);
void vgpu_rm_dma_unmap(struct vgpu_rm_vgpu *vgpu, u64 iova, u64 size);
int vgpu_rm_xlate_peek(struct vgpu_rm_vgpu *vgpu, u64 iova, u64 *val);
irqreturn_t vgpu_rm_xlate_irq(int irq, void *data);
irqreturn_t vgpu_rm_xlate_thread(int irq, void *data);

/* vgpu_rm_debugfs.c */
void vgpu_rm_debugfs_init(void);
void vgpu_rm_debugfs_exit(void);
void vgpu_rm_debugfs_add(struct vgpu_rm_gpu *gpu);
void vgpu_rm_debugfs_remove(struct vgpu_rm_gpu *gpu);
const char *vgpu_rm_state_name(unsigned int state);
const char *vgpu_rm_fault_name(unsigned int code);

#endif /* VGPU_RM_H */
