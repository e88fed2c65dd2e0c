// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vgpu_vfio_mig.c - VFIO migration v2 of an mdev vGPU: the state machine
 * (RUNNING, RUNNING_P2P, STOP, STOP_COPY, RESUMING) and the data stream.
 * The frontend only moves bytes; the backend stops, saves and restores the
 * partition through the ops table (SPEC 16).
 *
 * The stream: a header (magic, version, the vGPU type's name, VRAM and
 * context sizes), the partition's context image, then its whole VRAM
 * slice. The destination refuses a stream of another type or size, a cut
 * one and one the device refuses, saying why in the kernel log; the source
 * keeps running if the migration is abandoned (STOP_COPY -> STOP ->
 * RUNNING).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/iova_bitmap.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "vgpu_vfio.h"

#define VGPU_MIG_MAGIC		0x474d4776	/* "vGMG" */
#define VGPU_MIG_VERSION	1

struct vgpu_mig_header {
	__le32 magic;
	__le32 version;
	__le64 vram_size;
	__le32 ctx_size;
	__le32 reserved;
	char type[VGPU_TYPE_NAME_LEN];
};

/* One direction's data: a buffer the file reads from or writes into. */
struct vgpu_mig_file {
	struct file *filp;
	struct mutex lock;
	bool disabled;
	u8 *buf;
	size_t len;		/* bytes of the stream (save) or received */
	size_t cap;		/* the buffer's size */
};

static size_t vgpu_mig_stream_size(struct vgpu_vfio_state *s)
{
	return sizeof(struct vgpu_mig_header) +
	       vgpu_vfio_rm.mig_state_size(s->type->gpu->rm_gpu) +
	       s->bars[VGPU_VBAR_VRAM].info.size;
}

static void vgpu_mig_file_disable(struct vgpu_mig_file *migf)
{
	mutex_lock(&migf->lock);
	migf->disabled = true;
	kvfree(migf->buf);
	migf->buf = NULL;
	migf->len = 0;
	mutex_unlock(&migf->lock);
}

static int vgpu_mig_release(struct inode *inode, struct file *filp)
{
	struct vgpu_mig_file *migf = filp->private_data;

	vgpu_mig_file_disable(migf);
	mutex_destroy(&migf->lock);
	kfree(migf);
	return 0;
}

static ssize_t vgpu_mig_read(struct file *filp, char __user *ubuf,
			     size_t len, loff_t *pos)
{
	struct vgpu_mig_file *migf = filp->private_data;
	ssize_t done;

	if (pos)	/* a stream: no pread */
		return -ESPIPE;
	pos = &filp->f_pos;
	mutex_lock(&migf->lock);
	if (migf->disabled) {
		done = -ENODEV;
		goto out;
	}
	if (*pos >= migf->len) {
		done = 0;	/* end of the stream */
		goto out;
	}
	len = min_t(size_t, len, migf->len - *pos);
	if (copy_to_user(ubuf, migf->buf + *pos, len)) {
		done = -EFAULT;
		goto out;
	}
	*pos += len;
	done = len;
out:
	mutex_unlock(&migf->lock);
	return done;
}

static ssize_t vgpu_mig_write(struct file *filp, const char __user *ubuf,
			      size_t len, loff_t *pos)
{
	struct vgpu_mig_file *migf = filp->private_data;
	ssize_t done;

	if (pos)	/* a stream: no pwrite */
		return -ESPIPE;
	pos = &filp->f_pos;
	mutex_lock(&migf->lock);
	if (migf->disabled) {
		done = -ENODEV;
		goto out;
	}
	if (len > migf->cap - migf->len) {
		done = -EFBIG;	/* more than a stream for this vGPU holds */
		goto out;
	}
	if (copy_from_user(migf->buf + migf->len, ubuf, len)) {
		done = -EFAULT;
		goto out;
	}
	migf->len += len;
	*pos += len;
	done = len;
out:
	mutex_unlock(&migf->lock);
	return done;
}

static const struct file_operations vgpu_mig_save_fops = {
	.owner = THIS_MODULE,
	.read = vgpu_mig_read,
	.release = vgpu_mig_release,
};

static const struct file_operations vgpu_mig_resume_fops = {
	.owner = THIS_MODULE,
	.write = vgpu_mig_write,
	.release = vgpu_mig_release,
};

static struct vgpu_mig_file *vgpu_mig_file_new(struct vgpu_vfio_state *s,
					       bool save)
{
	struct vgpu_mig_file *migf;
	struct file *filp;

	migf = kzalloc(sizeof(*migf), GFP_KERNEL);
	if (!migf)
		return ERR_PTR(-ENOMEM);
	mutex_init(&migf->lock);
	migf->cap = vgpu_mig_stream_size(s);
	migf->buf = kvzalloc(migf->cap, GFP_KERNEL);
	if (!migf->buf) {
		kfree(migf);
		return ERR_PTR(-ENOMEM);
	}
	filp = anon_inode_getfile(save ? "vgpu_mig_save" : "vgpu_mig_resume",
				  save ? &vgpu_mig_save_fops :
				  &vgpu_mig_resume_fops,
				  migf, save ? O_RDONLY : O_WRONLY);
	if (IS_ERR(filp)) {
		kvfree(migf->buf);
		kfree(migf);
		return ERR_CAST(filp);
	}
	stream_open(filp->f_inode, filp);
	migf->filp = filp;
	return migf;
}

/* Copy the slice between VRAM and @buf a page at a time. */
static int vgpu_mig_vram(struct vgpu_vfio_state *s, u8 *buf, u64 size,
			 bool write)
{
	u64 off;
	int ret;

	for (off = 0; off < size; off += PAGE_SIZE) {
		ret = vgpu_vfio_rm.vgpu_vram_rw(s->vgpu, off, buf + off,
						min_t(u64, PAGE_SIZE, size - off),
						write);
		if (ret)
			return ret;
		cond_resched();
	}
	return 0;
}

/* STOP -> STOP_COPY: the whole stream, made while the vGPU is stopped. */
static struct file *vgpu_mig_save(struct vgpu_vfio_state *s)
{
	u64 vram = s->bars[VGPU_VBAR_VRAM].info.size;
	size_t ctx = vgpu_vfio_rm.mig_state_size(s->type->gpu->rm_gpu);
	struct vgpu_mig_header *h;
	struct vgpu_mig_file *migf;
	ssize_t n;
	int ret;

	migf = vgpu_mig_file_new(s, true);
	if (IS_ERR(migf))
		return ERR_CAST(migf);
	h = (struct vgpu_mig_header *)migf->buf;
	h->magic = cpu_to_le32(VGPU_MIG_MAGIC);
	h->version = cpu_to_le32(VGPU_MIG_VERSION);
	h->vram_size = cpu_to_le64(vram);
	h->ctx_size = cpu_to_le32(ctx);
	strscpy(h->type, s->type->sysfs_name, sizeof(h->type));
	n = vgpu_vfio_rm.mig_save(s->vgpu, migf->buf + sizeof(*h), ctx);
	ret = n < 0 ? n : 0;
	if (!ret)
		ret = vgpu_mig_vram(s, migf->buf + sizeof(*h) + ctx, vram, false);
	if (ret) {
		dev_err(s->vdev.dev, "migration: cannot save the vGPU's state: %d\n",
			ret);
		fput(migf->filp);
		return ERR_PTR(ret);
	}
	migf->len = migf->cap;
	get_file(migf->filp);
	s->saving = migf;
	return migf->filp;
}

/* RESUMING -> STOP: check the received stream whole, then load it. */
static int vgpu_mig_load(struct vgpu_vfio_state *s)
{
	struct vgpu_mig_file *migf = s->resuming;
	u64 vram = s->bars[VGPU_VBAR_VRAM].info.size;
	size_t ctx = vgpu_vfio_rm.mig_state_size(s->type->gpu->rm_gpu);
	struct vgpu_mig_header *h;
	int ret = -EINVAL;

	if (!migf)
		return -EINVAL;
	mutex_lock(&migf->lock);
	h = (struct vgpu_mig_header *)migf->buf;
	if (migf->len < sizeof(*h) || le32_to_cpu(h->magic) != VGPU_MIG_MAGIC) {
		dev_err(s->vdev.dev, "migration: not a vGPU state stream (%zu bytes received)\n",
			migf->len);
	} else if (le32_to_cpu(h->version) != VGPU_MIG_VERSION) {
		dev_err(s->vdev.dev, "migration: stream version %u, this driver reads %u\n",
			le32_to_cpu(h->version), VGPU_MIG_VERSION);
	} else if (strncmp(h->type, s->type->sysfs_name, sizeof(h->type)) ||
		   le64_to_cpu(h->vram_size) != vram ||
		   le32_to_cpu(h->ctx_size) != ctx) {
		dev_err(s->vdev.dev, "migration: the stream is of a vGPU of type %.*s with %llu bytes of VRAM; this one is %s with %llu\n",
			(int)sizeof(h->type), h->type,
			le64_to_cpu(h->vram_size), s->type->sysfs_name, vram);
	} else if (migf->len != migf->cap) {
		dev_err(s->vdev.dev, "migration: the stream is cut: %zu of %zu bytes\n",
			migf->len, migf->cap);
	} else {
		/* the device checks the context first: refused, VRAM is untouched */
		ret = vgpu_vfio_rm.mig_restore(s->vgpu, migf->buf + sizeof(*h),
					       ctx);
		if (!ret)
			ret = vgpu_mig_vram(s, migf->buf + sizeof(*h) + ctx,
					    vram, true);
	}
	mutex_unlock(&migf->lock);
	return ret;
}

static void vgpu_mig_drop_files(struct vgpu_vfio_state *s)
{
	if (s->saving) {
		vgpu_mig_file_disable(s->saving);
		fput(s->saving->filp);
		s->saving = NULL;
	}
	if (s->resuming) {
		vgpu_mig_file_disable(s->resuming);
		fput(s->resuming->filp);
		s->resuming = NULL;
	}
}

/* One arc of the state machine (vfio_mig_get_next_state() chose it). */
static struct file *vgpu_mig_step(struct vgpu_vfio_state *s,
				  enum vfio_device_mig_state next)
{
	enum vfio_device_mig_state cur = s->mig_state;
	struct vgpu_mig_file *migf;
	int ret = 0;

	if ((cur == VFIO_DEVICE_STATE_RUNNING &&
	     next == VFIO_DEVICE_STATE_RUNNING_P2P) ||
	    (cur == VFIO_DEVICE_STATE_RUNNING_P2P &&
	     next == VFIO_DEVICE_STATE_RUNNING))
		return NULL;	/* the vGPU starts no peer-to-peer DMA */
	if (cur == VFIO_DEVICE_STATE_RUNNING_P2P &&
	    next == VFIO_DEVICE_STATE_STOP)
		ret = vgpu_vfio_rm.mig_stop(s->vgpu);
	else if (cur == VFIO_DEVICE_STATE_STOP &&
		 next == VFIO_DEVICE_STATE_RUNNING_P2P)
		ret = vgpu_vfio_rm.mig_resume(s->vgpu);
	else if (cur == VFIO_DEVICE_STATE_STOP &&
		 next == VFIO_DEVICE_STATE_STOP_COPY)
		return vgpu_mig_save(s);
	else if (cur == VFIO_DEVICE_STATE_STOP_COPY &&
		 next == VFIO_DEVICE_STATE_STOP)
		vgpu_mig_drop_files(s);
	else if (cur == VFIO_DEVICE_STATE_STOP &&
		 next == VFIO_DEVICE_STATE_RESUMING) {
		migf = vgpu_mig_file_new(s, false);
		if (IS_ERR(migf))
			return ERR_CAST(migf);
		get_file(migf->filp);
		s->resuming = migf;
		return migf->filp;
	} else if (cur == VFIO_DEVICE_STATE_RESUMING &&
		   next == VFIO_DEVICE_STATE_STOP) {
		/* on failure the state stays RESUMING, the data kept */
		ret = vgpu_mig_load(s);
		if (!ret)
			vgpu_mig_drop_files(s);
	} else {
		WARN_ON_ONCE(1);	/* an arc the flags do not allow */
		ret = -EINVAL;
	}
	return ret ? ERR_PTR(ret) : NULL;
}

static struct file *
vgpu_mig_set_state(struct vfio_device *vdev,
		   enum vfio_device_mig_state new_state)
{
	struct vgpu_vfio_state *s = vgpu_vfio_state_of(vdev);
	enum vfio_device_mig_state next;
	struct file *res = NULL;
	int ret;

	mutex_lock(&s->mig_lock);
	while (s->mig_state != new_state) {
		ret = vfio_mig_get_next_state(vdev, s->mig_state, new_state,
					      &next);
		if (ret) {
			res = ERR_PTR(ret);
			break;
		}
		res = vgpu_mig_step(s, next);
		if (IS_ERR(res))
			break;
		s->mig_state = next;
		if (res && next != new_state) {
			/* a data file is only ever the last arc's */
			fput(res);
			res = ERR_PTR(-EINVAL);
			break;
		}
	}
	mutex_unlock(&s->mig_lock);
	return res;
}

static int vgpu_mig_get_state(struct vfio_device *vdev,
			      enum vfio_device_mig_state *state)
{
	struct vgpu_vfio_state *s = vgpu_vfio_state_of(vdev);

	mutex_lock(&s->mig_lock);
	*state = s->mig_state;
	mutex_unlock(&s->mig_lock);
	return 0;
}

static int vgpu_mig_get_data_size(struct vfio_device *vdev,
				  unsigned long *stop_copy_length)
{
	*stop_copy_length = vgpu_mig_stream_size(vgpu_vfio_state_of(vdev));
	return 0;
}

static const struct vfio_migration_ops vgpu_vfio_mig_ops = {
	.migration_set_state = vgpu_mig_set_state,
	.migration_get_state = vgpu_mig_get_state,
	.migration_get_data_size = vgpu_mig_get_data_size,
};

/* ---- DMA logging: the device's SYSMEM dirty log, in VFIO's terms ------- */

#define VGPU_LOG_PAGES_PER_WORD	32
#define VGPU_LOG_CHUNK		256	/* words read per call into the backend */

static int vgpu_log_start(struct vfio_device *vdev,
			  struct rb_root_cached *ranges, u32 nnodes,
			  u64 *page_size)
{
	struct vgpu_vfio_state *s = vgpu_vfio_state_of(vdev);
	int ret;

	/*
	 * The log covers every IOVA below log_span; ranges above it are
	 * reported whole (the device says when it wrote there).
	 */
	mutex_lock(&s->mig_lock);
	xa_destroy(&s->log_carry);
	ret = vgpu_vfio_rm.dirty_start(s->vgpu, &s->log_page, &s->log_span);
	if (!ret) {
		s->logging = true;
		*page_size = s->log_page;
	}
	mutex_unlock(&s->mig_lock);
	return ret;
}

static int vgpu_log_stop(struct vfio_device *vdev)
{
	struct vgpu_vfio_state *s = vgpu_vfio_state_of(vdev);

	mutex_lock(&s->mig_lock);
	if (s->logging)
		vgpu_vfio_rm.dirty_stop(s->vgpu);
	s->logging = false;
	xa_destroy(&s->log_carry);
	mutex_unlock(&s->mig_lock);
	return 0;
}

/*
 * Report the pages of [@iova, @iova + @length) the vGPU wrote. Device
 * words are read and cleared whole; bits of a word outside the range are
 * kept in log_carry for the call that asks for them.
 */
static int vgpu_log_read_and_clear(struct vfio_device *vdev,
				   unsigned long iova, unsigned long length,
				   struct iova_bitmap *dirty)
{
	struct vgpu_vfio_state *s = vgpu_vfio_state_of(vdev);
	u64 pg, first, last, span, w, w_end, page;
	u32 words[VGPU_LOG_CHUNK];
	int ret = 0, i, n;

	if (!length || iova + length - 1 < iova)
		return -EINVAL;
	mutex_lock(&s->mig_lock);
	if (!s->logging) {
		ret = -EINVAL;
		goto out;
	}
	pg = s->log_page;
	first = iova / pg;
	last = (iova + length - 1) / pg;
	span = s->log_span / pg;
	if (last >= span) {
		/* beyond the device's log: everything there may be dirty */
		u64 from = max_t(u64, iova, s->log_span);

		iova_bitmap_set(dirty, from, iova + length - from);
		if (first >= span)
			goto out;
		last = span - 1;
	}
	w_end = last / VGPU_LOG_PAGES_PER_WORD + 1;
	for (w = first / VGPU_LOG_PAGES_PER_WORD; w < w_end; w += n) {
		n = min_t(u64, VGPU_LOG_CHUNK, w_end - w);
		if (vgpu_vfio_rm.dirty_read(s->vgpu, false, w, words, n)) {
			/* a write beyond the log: report the range whole */
			iova_bitmap_set(dirty, iova, length);
			goto out;
		}
		for (i = 0; i < n; i++) {
			u32 bits = words[i];
			void *old = xa_load(&s->log_carry, w + i);
			u32 keep = 0;
			int b;

			if (old)
				bits |= xa_to_value(old);
			for (b = 0; bits && b < VGPU_LOG_PAGES_PER_WORD; b++) {
				if (!(bits & BIT(b)))
					continue;
				page = (w + i) * VGPU_LOG_PAGES_PER_WORD + b;
				if (page < first || page > last)
					keep |= BIT(b);
				else
					iova_bitmap_set(dirty, page * pg, pg);
			}
			if (keep)
				xa_store(&s->log_carry, w + i, xa_mk_value(keep),
					 GFP_KERNEL);
			else if (old)
				xa_erase(&s->log_carry, w + i);
		}
		cond_resched();
	}
out:
	mutex_unlock(&s->mig_lock);
	return ret;
}

static const struct vfio_log_ops vgpu_vfio_log_ops = {
	.log_start = vgpu_log_start,
	.log_stop = vgpu_log_stop,
	.log_read_and_clear = vgpu_log_read_and_clear,
};

/* At init: migration is offered when the backend has its ops. */
void vgpu_vfio_mig_init(struct vgpu_vfio_state *s)
{
	mutex_init(&s->mig_lock);
	s->mig_state = VFIO_DEVICE_STATE_RUNNING;
	if (vgpu_vfio_rm.mig_stop && vgpu_vfio_rm.mig_resume &&
	    vgpu_vfio_rm.mig_save && vgpu_vfio_rm.mig_restore &&
	    vgpu_vfio_rm.mig_state_size) {
		s->vdev.migration_flags = VFIO_MIGRATION_STOP_COPY |
					  VFIO_MIGRATION_P2P;
		s->vdev.mig_ops = &vgpu_vfio_mig_ops;
	}
	xa_init(&s->log_carry);
	if (s->vdev.mig_ops && vgpu_vfio_rm.dirty_start &&
	    vgpu_vfio_rm.dirty_stop && vgpu_vfio_rm.dirty_read)
		s->vdev.log_ops = &vgpu_vfio_log_ops;
}

/*
 * Open, close and reset: the device is RUNNING again, its data files go
 * and a stopped partition runs (a reset or a new user ends a migration).
 */
void vgpu_vfio_mig_reset(struct vgpu_vfio_state *s, bool started)
{
	mutex_lock(&s->mig_lock);
	vgpu_mig_drop_files(s);
	if (started && s->mig_state != VFIO_DEVICE_STATE_RUNNING &&
	    s->mig_state != VFIO_DEVICE_STATE_RUNNING_P2P)
		vgpu_vfio_rm.mig_resume(s->vgpu);
	s->mig_state = VFIO_DEVICE_STATE_RUNNING;
	/* the backend turned the logs off with the vGPU (close) or keeps them */
	if (!started) {
		s->logging = false;
		xa_destroy(&s->log_carry);
	}
	mutex_unlock(&s->mig_lock);
}

void vgpu_vfio_mig_exit(struct vgpu_vfio_state *s)
{
	xa_destroy(&s->log_carry);
	mutex_destroy(&s->mig_lock);
}
