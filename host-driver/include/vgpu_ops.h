/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vgpu_ops.h - the only door between the mdev/VFIO frontend (vgpu_vfio.ko)
 * and the resource-manager backend (vgpu_rm.ko), shaped like the split of
 * NVIDIA's nvidia-vgpu-vfio and its RM.
 *
 * At module init the frontend hands the backend an empty struct
 * vgpu_rm_ops and its own struct vgpu_vfio_callbacks through
 * vgpu_rm_set_ops(); the backend fills the ops and then calls
 * callbacks->probe() for every GPU it owns (now and later), and
 * callbacks->remove() before a GPU goes away. The frontend never touches
 * hardware; the backend never calls vfio_* or mdev_* functions.
 *
 * A GPU runs in one mode at a time (the PF's vgpu_mode attribute): in mdev
 * mode the frontend above has it; in SR-IOV mode it has not (remove() was
 * called), and each VF's vfio-pci variant driver reaches the backend
 * through the second table at the end of this file.
 *
 * Types can be defined and removed at run time (configfs, in the
 * backend). The mdev core takes a parent's types once, in
 * mdev_register_parent(), so the frontend can list a changed table only by
 * registering the parent again, which removes every mdev: the backend asks
 * first (types_changing()) and the change is refused while the frontend has
 * vGPUs of that GPU.
 */
#ifndef VGPU_OPS_H
#define VGPU_OPS_H

#include <linux/types.h>
#include <linux/uuid.h>

struct device;
struct page;
struct pci_dev;
struct vgpu_rm_gpu;	/* one physical GPU, owned by the backend */
struct vgpu_rm_vgpu;	/* one vGPU (a partition), owned by the backend */

/* vGPU BARs as the frontend exposes them (VFIO region indexes). */
#define VGPU_VBAR_REGS	0	/* the partition window: page 0 trapped, page 1 doorbells */
#define VGPU_VBAR_VRAM	2	/* 64-bit prefetchable: the VRAM slice, mmap'ed */
#define VGPU_VBAR_MSIX	4	/* MSI-X table and PBA (emulated by the VMM) */

#define VGPU_BAR_F_MMAP		0x1	/* may be mmap'ed (whole or sparse areas) */
#define VGPU_BAR_F_64BIT	0x2
#define VGPU_BAR_F_PREFETCH	0x4

struct vgpu_bar_info {
	u64 size;		/* 0: BAR not implemented */
	u32 flags;		/* VGPU_BAR_F_* */
	/*
	 * host physical base (0 if none), only for the frontend to mmap the
	 * BAR's mmap-able areas (VGPU_BAR_F_MMAP, get_sparse_mmap()) into
	 * the VMM; it never maps or dereferences it in the kernel itself:
	 * read()/write() go through vgpu_reg_read/write and vgpu_vram_rw
	 */
	phys_addr_t phys;
};

/* An mmap-able part of a BAR (VFIO sparse mmap). */
struct vgpu_sparse_area {
	u64 offset;
	u64 size;
};

#define VGPU_TYPE_NAME_LEN	32
#define VGPU_TYPE_DESC_LEN	128

/* The scanout of a vGPU's display head as it shows it now (display_plane). */
struct vgpu_display_plane {
	u32 drm_format;		/* DRM fourcc; 0: the head is off, nothing shown */
	u32 width;		/* pixels */
	u32 height;
	u32 stride;		/* bytes per line */
	u64 base;		/* offset of the first pixel in the VRAM slice */
};

/* Largest EDID a vGPU's head takes (the window's DISP_EDID). */
#define VGPU_EDID_MAX_BYTES	256

/* Interrupt vectors of one vGPU (its MSI-X table has this many entries). */
#define VGPU_VGPU_VECTORS	2	/* 0: engine (fence/idle), 1: fault */

/* Frontend -> backend. Filled by the backend in vgpu_rm_set_ops(). */
struct vgpu_rm_ops {
	/* vGPU types of a GPU: index 0 .. get_types()-1 */
	unsigned int (*get_types)(struct vgpu_rm_gpu *gpu);
	/* sysfs-safe type name, e.g. "vgpu-64M" (mdev prefixes the driver name) */
	const char *(*get_name)(struct vgpu_rm_gpu *gpu, unsigned int type);
	/* human-readable name, e.g. "vGPU 64M (1/4 GPU)" */
	const char *(*get_human_name)(struct vgpu_rm_gpu *gpu,
				      unsigned int type);
	/* one line "framebuffer=256M, max_instances=4, weight=2" */
	int (*get_description)(struct vgpu_rm_gpu *gpu, unsigned int type,
			       char *buf, size_t len);
	/* available_instances: what can still be created, from free resources */
	unsigned int (*get_instances)(struct vgpu_rm_gpu *gpu, unsigned int type);

	/* lifecycle; frontend_priv comes back in inject_interrupt/pin calls */
	int (*vgpu_create)(struct vgpu_rm_gpu *gpu, unsigned int type,
			   const guid_t *uuid, void *frontend_priv,
			   struct vgpu_rm_vgpu **out);
	/*
	 * Cannot fail: stops the vGPU first if it is still started, waits for
	 * its fault service, scrubs the VRAM slice and frees everything. Once
	 * it returns the backend holds no pointer to frontend_priv and calls
	 * no callback with it, so the frontend may free its state. Called
	 * after the device was closed; nothing may start the vGPU meanwhile.
	 */
	void (*vgpu_delete)(struct vgpu_rm_vgpu *vgpu);
	/* device opened / closed by userspace: enable / quiesce the partition */
	int (*vgpu_start)(struct vgpu_rm_vgpu *vgpu);
	void (*vgpu_stop)(struct vgpu_rm_vgpu *vgpu);
	int (*vgpu_reset)(struct vgpu_rm_vgpu *vgpu);

	/* BARs */
	int (*vgpu_bar_info)(struct vgpu_rm_vgpu *vgpu, unsigned int bar,
			     struct vgpu_bar_info *info);
	/* fills up to max areas, returns how many (0: no mmap) */
	int (*get_sparse_mmap)(struct vgpu_rm_vgpu *vgpu, unsigned int bar,
			       struct vgpu_sparse_area *areas, int max);
	/* trapped BAR0 accesses (size 1, 2, 4 or 8); backend filters */
	int (*vgpu_reg_read)(struct vgpu_rm_vgpu *vgpu, u64 offset, u64 *val,
			     unsigned int size);
	int (*vgpu_reg_write)(struct vgpu_rm_vgpu *vgpu, u64 offset, u64 val,
			      unsigned int size);
	/*
	 * Copy @len bytes between @buf (kernel memory) and the vGPU's VRAM
	 * slice at @offset: the read()/write() slow path of the VRAM BAR,
	 * whose main path is mmap. The backend checks the range against the
	 * slice and touches no byte outside it. May sleep; the frontend
	 * passes a page at a time so that it can reschedule in between.
	 * Returns 0, -EINVAL if @buf is NULL or [offset, offset + len) is not
	 * inside the slice, or -EIO if the slice cannot be mapped.
	 */
	int (*vgpu_vram_rw)(struct vgpu_rm_vgpu *vgpu, u64 offset, void *buf,
			    size_t len, bool write);

	/*
	 * The guest unmapped [iova, iova+size): drop and unpin translations.
	 * When it returns, the GPU touches no byte of any page it unpinned
	 * (the partition's translations are invalidated and waited for).
	 */
	void (*vgpu_dma_unmap)(struct vgpu_rm_vgpu *vgpu, u64 iova, u64 size);

	/*
	 * Migration, the hardware side (SPEC 16), on a started vGPU.
	 * mig_stop: the partition stops at a chunk boundary of its command
	 * in flight, keeping its progress, and runs nothing until mig_resume
	 * (doorbells are still taken); -EINVAL if the vGPU is not started.
	 * mig_state_size: bytes of a context image. mig_save: the stopped
	 * vGPU's context (rings, the command in flight, interrupts, fault,
	 * fences, statistics; not VRAM, which the frontend copies with
	 * vgpu_vram_rw) into @buf: its length, -ENOSPC if @len is too small,
	 * -EBUSY if not stopped. mig_restore: an image into this stopped vGPU
	 * of the same slice size; the device checks it whole and refuses a
	 * bad one (-EINVAL, the kernel log says why) leaving the vGPU as it
	 * was. Not concurrent with vgpu_start/stop/reset of the same vGPU.
	 */
	int (*mig_stop)(struct vgpu_rm_vgpu *vgpu);
	int (*mig_resume)(struct vgpu_rm_vgpu *vgpu);
	size_t (*mig_state_size)(struct vgpu_rm_gpu *gpu);
	ssize_t (*mig_save)(struct vgpu_rm_vgpu *vgpu, void *buf, size_t len);
	int (*mig_restore)(struct vgpu_rm_vgpu *vgpu, const void *buf,
			   size_t len);
	/*
	 * Dirty logs of the started vGPU's writes (SPEC 16), one bit per
	 * page: SYSMEM in its system-memory addresses (the VMM's IOVAs, up
	 * to @span bytes), VRAM in its slice. The partition has one switch
	 * for both, shared by reference: dirty_start takes one (the first
	 * starts empty logs; a later user may find pages written before it
	 * started, which it resends harmlessly) and sets the page size and
	 * the SYSMEM log's span; dirty_stop drops one (the last turns the
	 * logs off; vgpu_stop drops them all). Each log has one reader in
	 * the frontend. dirty_read: words [@first, @first + @n) of one log
	 * into @words (bit b of word i: page 32 i + b), cleared as they are
	 * read; for SYSMEM, returns 1 if a write fell beyond the log since
	 * the last SYSMEM read (treat everything as dirty), else 0.
	 */
	int (*dirty_start)(struct vgpu_rm_vgpu *vgpu, u64 *page_size,
			   u64 *span);
	void (*dirty_stop)(struct vgpu_rm_vgpu *vgpu);
	int (*dirty_read)(struct vgpu_rm_vgpu *vgpu, bool vram, u32 first,
			  u32 *words, u32 n);

	/*
	 * The display head (issue 14). display_plane: what the head scans
	 * out now, read from the vGPU's window (DISP_STATUS, DISP_ACTIVE_*);
	 * drm_format 0 when it is off. The plane the backend reports lies
	 * inside the slice. display_set_edid: the EDID the guest reads in
	 * DISP_EDID (@len <= VGPU_EDID_MAX_BYTES, the rest reads 0; @edid
	 * NULL keeps the one it has), then the link (connected or not),
	 * which raises HOTPLUG in the guest's window; -EINVAL if @len is too
	 * long. Every vGPU starts with the backend's own EDID (1024x768
	 * preferred) and connected, and gets them back when it is stopped.
	 * display_max_mode: the largest mode the vGPU's type is meant for
	 * (the largest common mode two of whose XRGB8888 framebuffers fit in
	 * half its VRAM, at most the head's DISP_MAX_MODE); 0x0 if none.
	 */
	int (*display_plane)(struct vgpu_rm_vgpu *vgpu,
			     struct vgpu_display_plane *plane);
	int (*display_set_edid)(struct vgpu_rm_vgpu *vgpu, const u8 *edid,
				size_t len, bool connected);
	void (*display_max_mode)(struct vgpu_rm_vgpu *vgpu, u32 *width,
				 u32 *height);
};

/* Backend -> frontend ("reverse" table). Filled by the frontend. */
struct vgpu_vfio_callbacks {
	/* a GPU is ready: register it as an mdev parent */
	int (*probe)(struct vgpu_rm_gpu *gpu, struct device *parent);
	/*
	 * a GPU goes away: unregister (removes its vGPUs first, waiting for
	 * their users to close them); called without the backend's locks
	 */
	void (*remove)(struct vgpu_rm_gpu *gpu);
	/* raise vGPU vector 0 or 1; called from hard-irq context */
	void (*inject_interrupt)(void *frontend_priv, unsigned int vector);
	/*
	 * Pin the guest page at iova (page aligned) for device reads, and for
	 * writes too if @write; may sleep. The backend calls it from process
	 * context when it services a translation fault, then dma-maps the
	 * page for the GPU. -EPERM: the page is mapped, but not writable and
	 * @write was asked (the backend then pins it for reads only).
	 */
	int (*pin_page)(void *frontend_priv, u64 iova, bool write,
			struct page **page);
	void (*unpin_page)(void *frontend_priv, u64 iova);

	/*
	 * The GPU's type table is about to change (a runtime type defined or
	 * removed). -EBUSY if the frontend has vGPUs of this GPU (its type
	 * list cannot change under them); otherwise 0, and from then on it
	 * creates no vGPU of the GPU and calls no type op of it until
	 * types_changed(), which lists the new table. Called with the
	 * backend's GPU list lock held, never from the frontend's own calls
	 * into the backend; both may sleep.
	 */
	int (*types_changing)(struct vgpu_rm_gpu *gpu);
	void (*types_changed)(struct vgpu_rm_gpu *gpu);
};

/* Exported by vgpu_rm.ko. */
int vgpu_rm_set_ops(struct vgpu_rm_ops *ops,
		    const struct vgpu_vfio_callbacks *callbacks);
void vgpu_rm_clear_ops(void);

/*
 * SR-IOV mode: what the vfio-pci variant driver of a VF (device 0x7691,
 * is_virtfn) needs from the backend. The VF's BARs, config space, MSI-X
 * and FLR are the device's own and stay vfio-pci-core's; the backend only
 * gives the VF's partition its type (the admin's current_vgpu_type) and
 * enables it while a VMM has the VF open.
 *
 * A VF migrates as an mdev vGPU does (SPEC 16), with the frontends' one
 * engine (vgpu_mig.h): while a VMM has the VF open, vf_vgpu() gives its
 * vGPU's handle for the ops of vf_vgpu_ops, which the RM runs through the
 * PF (the slice is read and written through the PF's VRAM BAR, the
 * context through the global block), exactly as for an mdev vGPU.
 *
 * The VF's backend is found with vgpu_rm_vf_get() (pci_iov_get_pf_drvdata()
 * on the backend's own pci_driver, as the reviewers of NVIDIA's vGPU RFCs
 * require): it is valid while the variant driver is bound to the VF, since
 * the PF driver disables its VFs, unbinding their drivers, before it lets
 * go of the GPU. Opens and closes of one VF are serialised by
 * vfio-pci-core; none of these calls happens in atomic context.
 */
struct vgpu_rm_vf_vgpu {
	struct vgpu_rm_vgpu *vgpu;
	char type[VGPU_TYPE_NAME_LEN];
	u64 vram_size;
	/*
	 * The slice's host physical address through the PF's VRAM BAR,
	 * for the frontend's display region (mapped into the VMM only;
	 * reachable while the VF itself is in reset)
	 */
	phys_addr_t vram_phys;
};

struct vgpu_rm_vf_ops {
	/*
	 * A VMM opens the VF: -ENODEV if it has no vGPU type (the admin
	 * writes one to current_vgpu_type first), -EBUSY if it is open
	 * already; else its partition is enabled (slice, weight, no
	 * device-side translation) and current_vgpu_type cannot change
	 * until vf_close().
	 */
	int (*vf_open)(struct vgpu_rm_gpu *gpu, struct pci_dev *vf);
	/*
	 * The VMM closed it, after vfio-pci-core's FLR (a partition reset):
	 * the partition is disabled and its VRAM slice scrubbed, so the next
	 * tenant of the VF finds zeroes. Cannot fail.
	 */
	void (*vf_close)(struct vgpu_rm_gpu *gpu, struct pci_dev *vf);
	/* framebuffer bytes of the VF's type, 0 if it has none */
	u64 (*vf_framebuffer)(struct vgpu_rm_gpu *gpu, struct pci_dev *vf);
	/*
	 * The open VF's vGPU: its handle for vf_vgpu_ops, valid until
	 * vf_close(), and what a migration stream's header says of it (the
	 * type's name, as an mdev vGPU of that type has it, and the slice
	 * size). -EINVAL if @vf is not this GPU's VF, -ENODEV if not open.
	 */
	int (*vf_vgpu)(struct vgpu_rm_gpu *gpu, struct pci_dev *vf,
		       struct vgpu_rm_vf_vgpu *out);
	/*
	 * The vGPU ops that apply to an open VF's vGPU: vgpu_vram_rw,
	 * display_*, mig_* and dirty_* (the SYSMEM log is in the VF's bus
	 * addresses: the VMM's IOVAs); every other op is NULL. NULL: VFs
	 * do not migrate.
	 */
	const struct vgpu_rm_ops *vf_vgpu_ops;
};

/*
 * The backend that owns @vf's PF and its VF ops, or an ERR_PTR: -EINVAL if
 * @vf is not a VF, -ENODEV if its PF is not bound to vgpu_rm or is not in
 * SR-IOV mode.
 */
struct vgpu_rm_gpu *vgpu_rm_vf_get(struct pci_dev *vf,
				   const struct vgpu_rm_vf_ops **ops);

#endif /* VGPU_OPS_H */
