// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vgpu_mig.c - VFIO migration v2 of a vGPU, for both frontends (an mdev
 * vGPU, an SR-IOV VF through the variant driver; include/vgpu_mig.h): the
 * state machine (RUNNING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P, STOP,
 * STOP_COPY, RESUMING), the data stream, and DMA logging. The engine only
 * moves bytes; the RM stops, saves and restores the partition, reads and
 * writes its VRAM slice (a VF's too, through the PF) and keeps its dirty
 * logs through the ops table (SPEC 16).
 *
 * The stream (version 2): a header (magic, version, the vGPU type's name,
 * VRAM and context sizes), then records (tag, offset, length, payload):
 * the whole slice, in PRE_COPY the VRAM pages the dirty log reports, in
 * STOP_COPY the last of them, the context image and an end record. The
 * destination applies them in order as they arrive and refuses, saying
 * why in the kernel log, a stream of another version, type or size, a
 * malformed record, a cut stream and a context the device refuses; the
 * source keeps running if the migration is abandoned.
 *
 * Locks, outermost first: the frontend's own (open, close, reset),
 * mig->lock (the state, the data files, DMA logging; let go through
 * vgpu_mig_unlock(), which applies a deferred reset), mig->reset_lock, a
 * data file's migf->lock (its stream; read(), write() and the precopy
 * ioctl take only this one), then the RM's own.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/crc32.h>
#include <linux/bitmap.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/iova_bitmap.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "vgpu_mig.h"

#define VGPU_MIG_MAGIC		0x474d4776	/* "vGMG" */
/* 1: header, context, slice; 2: records; 3: the end record's CRC */
#define VGPU_MIG_VERSION	3

/* The stream's first bytes. */
struct vgpu_mig_header {
	__le32 magic;
	__le32 version;
	__le64 vram_size;
	__le32 ctx_size;
	__le32 reserved;	/* 0 */
	char type[VGPU_TYPE_NAME_LEN];
};

/*
 * Then records, each this header and @len bytes of payload, in order. The
 * end record's @crc is the CRC-32 (zlib's) of every byte of the stream
 * before it, so a corrupted VRAM page is refused too; the other records'
 * is 0.
 */
enum vgpu_mig_tag {
	VGPU_MIG_REC_END = 1,	/* the stream is whole; no payload */
	VGPU_MIG_REC_VRAM = 2,	/* @len bytes of the slice at @offset */
	VGPU_MIG_REC_CTX = 3,	/* the context image (ctx_size bytes), once */
};

struct vgpu_mig_record {
	__le32 tag;
	__le32 crc;		/* end record: the stream's CRC-32; else 0 */
	__le64 offset;
	__le64 len;
};

static_assert(sizeof(struct vgpu_mig_header) == 56);
static_assert(sizeof(struct vgpu_mig_record) == 24);

/* Bytes staged at a time: the save side's read buffer, the load side's. */
#define VGPU_MIG_STAGE		(256 * 1024)
#define VGPU_LOG_PAGES_PER_WORD	32
#define VGPU_LOG_CHUNK		256	/* words read per call into the backend */

enum vgpu_mig_load_step {
	VGPU_MIG_LOAD_HEADER,	/* gathering the stream header */
	VGPU_MIG_LOAD_RECORD,	/* gathering a record header */
	VGPU_MIG_LOAD_VRAM,	/* a VRAM record's payload, into the slice */
	VGPU_MIG_LOAD_CTX,	/* the context record's payload, into ctx */
	VGPU_MIG_LOAD_DONE,	/* after the end record */
};

/*
 * One direction's data file. @mig is its vGPU's while it is enabled:
 * vgpu_mig_drop_files() disables it, under @lock, before the vGPU is
 * closed, so a read or write that found it enabled finishes first.
 */
struct vgpu_mig_file {
	struct file *filp;
	struct vgpu_mig *mig;
	/* everything below; taken after mig->lock, never before it */
	struct mutex lock;
	bool disabled;
	int error;		/* the stream broke: every later call fails */
	u8 *buf;		/* VGPU_MIG_STAGE bytes */
	size_t buf_pos, buf_len;	/* save: read of staged; load: gathered */
	u8 *ctx;		/* the context image, ctx_size bytes */
	size_t ctx_size;
	u64 vram_size;

	/*
	 * Save. The first record is the whole slice (the initial data), read
	 * while the vGPU runs in PRE_COPY; then, from the VRAM dirty log
	 * (kept in @dirty, so that what the device log gave is never lost
	 * between calls), records of the pages written since; in STOP_COPY
	 * (@final: stopped, log drained, context saved) the last dirty
	 * pages, the context and the end.
	 */
	bool final;
	bool header_sent, ctx_sent, end_sent;
	u64 rec_off, rec_left;	/* the VRAM record being sent */
	u64 sent;		/* bytes read by the user */
	u64 init_total;		/* bytes of the initial data */
	unsigned long *dirty;	/* slice pages to resend; NULL: no log */
	u64 npages, page;
	u32 words[VGPU_LOG_CHUNK];

	/* both: the running CRC-32 (seed ~0) of the bytes staged or taken */
	u32 crc;

	/* Load: the records are applied in order as they arrive. */
	enum vgpu_mig_load_step step;
	u64 received;
	bool ctx_seen;
};

static size_t vgpu_mig_ctx_size(struct vgpu_mig *mig)
{
	return mig->rm->mig_state_size(mig->gpu);
}

/* A whole stream without pre-copy: the header, the slice, context, end. */
static size_t vgpu_mig_stream_size(struct vgpu_mig *mig)
{
	return sizeof(struct vgpu_mig_header) +
	       3 * sizeof(struct vgpu_mig_record) +
	       mig->vram_size + vgpu_mig_ctx_size(mig);
}

static void vgpu_mig_file_disable(struct vgpu_mig_file *migf)
{
	mutex_lock(&migf->lock);
	migf->disabled = true;
	migf->mig = NULL;
	kvfree(migf->buf);
	migf->buf = NULL;
	kfree(migf->ctx);
	migf->ctx = NULL;
	kvfree(migf->dirty);
	migf->dirty = NULL;
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

/* Copy [@off, @off + @len) of the slice from or to @buf, a page at a time. */
static int vgpu_mig_vram(struct vgpu_mig *mig, u64 off, u8 *buf,
			 u64 len, bool write)
{
	u64 done, n;
	int ret;

	for (done = 0; done < len; done += n) {
		n = min_t(u64, PAGE_SIZE - offset_in_page(off + done),
			  len - done);
		ret = mig->rm->vgpu_vram_rw(mig->vgpu, off + done, buf + done,
					    n, write);
		if (ret)
			return ret;
		cond_resched();
	}
	return 0;
}

/*
 * Move the device's VRAM dirty log into @dirty (reading clears it in the
 * device). A page read here is sent after this, so a write that lands
 * after its bit was read sets it again for the next round.
 */
static void vgpu_mig_collect(struct vgpu_mig_file *migf)
{
	u64 nwords = DIV_ROUND_UP(migf->npages, VGPU_LOG_PAGES_PER_WORD);
	u64 w, page;
	u32 i, n;

	lockdep_assert_held(&migf->lock);
	if (!migf->dirty || migf->final)
		return;
	for (w = 0; w < nwords; w += n) {
		n = min_t(u64, VGPU_LOG_CHUNK, nwords - w);
		migf->mig->rm->dirty_read(migf->mig->vgpu, true, w,
					  migf->words, n);
		for (i = 0; i < n; i++) {
			unsigned long bits = migf->words[i];
			unsigned int b;

			for_each_set_bit(b, &bits, VGPU_LOG_PAGES_PER_WORD) {
				page = (w + i) * VGPU_LOG_PAGES_PER_WORD + b;
				if (page < migf->npages)
					__set_bit(page, migf->dirty);
			}
		}
	}
}

/* Bytes the dirty pages in @dirty will take as records. */
static u64 vgpu_mig_dirty_bytes(struct vgpu_mig_file *migf)
{
	u64 first, last, bytes = 0;

	if (!migf->dirty)
		return 0;
	for (first = find_first_bit(migf->dirty, migf->npages);
	     first < migf->npages;
	     first = find_next_bit(migf->dirty, migf->npages, last)) {
		last = find_next_zero_bit(migf->dirty, migf->npages, first);
		bytes += sizeof(struct vgpu_mig_record) +
			 (last - first) * migf->page;
	}
	return bytes;
}

/* Initial and dirty bytes not yet read (PRE_COPY). */
static void vgpu_mig_pending(struct vgpu_mig_file *migf, u64 *initial,
			     u64 *dirty)
{
	vgpu_mig_collect(migf);
	*initial = migf->init_total - min(migf->sent, migf->init_total);
	*dirty = vgpu_mig_dirty_bytes(migf);
	if (!*initial)	/* what is staged and open is a dirty record */
		*dirty += migf->buf_len - migf->buf_pos + migf->rec_left;
}

static void vgpu_mig_put_record(struct vgpu_mig_file *migf, u32 tag,
				u64 offset, u64 len)
{
	struct vgpu_mig_record *r = (void *)(migf->buf + migf->buf_len);

	r->tag = cpu_to_le32(tag);
	/* (staged alone: everything before it is in the CRC already) */
	r->crc = cpu_to_le32(tag == VGPU_MIG_REC_END ? ~migf->crc : 0);
	r->offset = cpu_to_le64(offset);
	r->len = cpu_to_le64(len);
	migf->buf_len += sizeof(*r);
}

/* The next VRAM record from @dirty, if any page is dirty. */
static bool vgpu_mig_next_dirty(struct vgpu_mig_file *migf)
{
	u64 first, last;

	if (!migf->dirty)
		return false;
	first = find_first_bit(migf->dirty, migf->npages);
	if (first >= migf->npages) {
		vgpu_mig_collect(migf);
		first = find_first_bit(migf->dirty, migf->npages);
		if (first >= migf->npages)
			return false;
	}
	last = find_next_zero_bit(migf->dirty, migf->npages, first);
	/* cleared before the pages are read: a later write sets them again */
	bitmap_clear(migf->dirty, first, last - first);
	migf->rec_off = first * migf->page;
	migf->rec_left = (last - first) * migf->page;
	vgpu_mig_put_record(migf, VGPU_MIG_REC_VRAM, migf->rec_off,
			    migf->rec_left);
	return true;
}

/*
 * Stage the stream's next bytes in buf. Nothing staged: the end of the
 * stream (final) or, in PRE_COPY, nothing to send for now.
 */
static int vgpu_mig_stage_next(struct vgpu_mig_file *migf)
{
	struct vgpu_mig *mig = migf->mig;
	struct vgpu_mig_header *h;
	u64 n;
	int ret;

	migf->buf_pos = 0;
	migf->buf_len = 0;
	if (!migf->header_sent) {
		h = (struct vgpu_mig_header *)migf->buf;
		memset(h, 0, sizeof(*h));
		h->magic = cpu_to_le32(VGPU_MIG_MAGIC);
		h->version = cpu_to_le32(VGPU_MIG_VERSION);
		h->vram_size = cpu_to_le64(migf->vram_size);
		h->ctx_size = cpu_to_le32(migf->ctx_size);
		strscpy(h->type, mig->type, sizeof(h->type));
		migf->buf_len = sizeof(*h);
		migf->rec_off = 0;
		migf->rec_left = migf->vram_size;
		vgpu_mig_put_record(migf, VGPU_MIG_REC_VRAM, 0,
				    migf->vram_size);
		migf->header_sent = true;
	} else if (!migf->rec_left && !vgpu_mig_next_dirty(migf)) {
		if (!migf->final)
			return 0;
		if (!migf->ctx_sent) {
			vgpu_mig_put_record(migf, VGPU_MIG_REC_CTX, 0,
					    migf->ctx_size);
			memcpy(migf->buf + migf->buf_len, migf->ctx,
			       migf->ctx_size);
			migf->buf_len += migf->ctx_size;
			migf->ctx_sent = true;
		} else if (!migf->end_sent) {
			vgpu_mig_put_record(migf, VGPU_MIG_REC_END, 0, 0);
			migf->end_sent = true;
		}
		return 0;
	}
	n = min_t(u64, migf->rec_left, VGPU_MIG_STAGE - migf->buf_len);
	ret = vgpu_mig_vram(mig, migf->rec_off, migf->buf + migf->buf_len, n,
			    false);
	if (ret)
		return ret;
	migf->buf_len += n;
	migf->rec_off += n;
	migf->rec_left -= n;
	return 0;
}

/* The same, with what was staged added to the stream's CRC. */
static int vgpu_mig_stage(struct vgpu_mig_file *migf)
{
	int ret = vgpu_mig_stage_next(migf);

	if (!ret)
		migf->crc = crc32_le(migf->crc, migf->buf, migf->buf_len);
	return ret;
}

static ssize_t vgpu_mig_read(struct file *filp, char __user *ubuf,
			     size_t len, loff_t *pos)
{
	struct vgpu_mig_file *migf = filp->private_data;
	ssize_t done = 0;
	int ret = 0;
	size_t n;

	if (pos)	/* a stream: no pread */
		return -ESPIPE;
	mutex_lock(&migf->lock);
	if (migf->disabled || migf->error) {
		ret = migf->disabled ? -ENODEV : migf->error;
		goto out;
	}
	while (len) {
		if (migf->buf_pos == migf->buf_len) {
			ret = vgpu_mig_stage(migf);
			if (ret) {
				dev_err(migf->mig->vdev->dev, "migration: cannot read the vGPU's VRAM: %d\n",
					ret);
				migf->error = ret;
				break;
			}
			if (migf->buf_pos == migf->buf_len) {
				/* the end, or (PRE_COPY) nothing for now */
				ret = migf->final ? 0 : -ENOMSG;
				break;
			}
		}
		n = min(len, migf->buf_len - migf->buf_pos);
		if (copy_to_user(ubuf + done, migf->buf + migf->buf_pos, n)) {
			ret = -EFAULT;
			break;
		}
		migf->buf_pos += n;
		migf->sent += n;
		filp->f_pos += n;
		done += n;
		len -= n;
	}
out:
	mutex_unlock(&migf->lock);
	return done ? done : ret;
}

/* VFIO_MIG_GET_PRECOPY_INFO: only while the device is in PRE_COPY(_P2P). */
static long vgpu_mig_ioctl(struct file *filp, unsigned int cmd,
			   unsigned long arg)
{
	unsigned long minsz = offsetofend(struct vfio_precopy_info, dirty_bytes);
	struct vgpu_mig_file *migf = filp->private_data;
	struct vfio_precopy_info info;
	u64 initial, dirty;
	int ret = 0;

	if (cmd != VFIO_MIG_GET_PRECOPY_INFO)
		return -ENOTTY;
	if (copy_from_user(&info, (void __user *)arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;
	mutex_lock(&migf->lock);
	/* a saving file that is not final exists only in PRE_COPY(_P2P) */
	if (migf->disabled || migf->final || migf->error)
		ret = -EINVAL;
	else
		vgpu_mig_pending(migf, &initial, &dirty);
	mutex_unlock(&migf->lock);
	if (ret)
		return ret;
	info.flags = 0;
	info.initial_bytes = initial;
	info.dirty_bytes = dirty;
	return copy_to_user((void __user *)arg, &info, minsz) ? -EFAULT : 0;
}

/* Gather @want bytes into @dst (@got so far) from the user's buffer. */
static ssize_t vgpu_mig_gather(u8 *dst, size_t *got, size_t want,
			       const char __user *ubuf, size_t len)
{
	size_t n = min(want - *got, len);

	if (copy_from_user(dst + *got, ubuf, n))
		return -EFAULT;
	*got += n;
	return n;
}

/* Check the stream's header against this vGPU. */
static int vgpu_mig_check_header(struct vgpu_mig_file *migf)
{
	struct vgpu_mig_header *h = (struct vgpu_mig_header *)migf->buf;
	struct device *dev = migf->mig->vdev->dev;
	const char *type = migf->mig->type;

	if (le32_to_cpu(h->magic) != VGPU_MIG_MAGIC) {
		dev_err(dev, "migration: not a vGPU state stream\n");
	} else if (le32_to_cpu(h->version) != VGPU_MIG_VERSION) {
		dev_err(dev, "migration: stream version %u, this driver reads %u\n",
			le32_to_cpu(h->version), VGPU_MIG_VERSION);
	} else if (strncmp(h->type, type, sizeof(h->type)) ||
		   le64_to_cpu(h->vram_size) != migf->vram_size ||
		   le32_to_cpu(h->ctx_size) != migf->ctx_size ||
		   h->reserved) {
		dev_err(dev, "migration: the stream is of a vGPU of type %.*s with %llu bytes of VRAM; this one is %s with %llu\n",
			(int)sizeof(h->type), h->type,
			le64_to_cpu(h->vram_size), type, migf->vram_size);
	} else {
		return 0;
	}
	return -EINVAL;
}

/* A record header: where its payload goes next. */
static int vgpu_mig_check_record(struct vgpu_mig_file *migf)
{
	struct vgpu_mig_record *r = (struct vgpu_mig_record *)migf->buf;
	u64 off = le64_to_cpu(r->offset), len = le64_to_cpu(r->len);
	u32 tag = le32_to_cpu(r->tag);
	struct device *dev = migf->mig->vdev->dev;

	if (r->crc && tag != VGPU_MIG_REC_END) {
		dev_err(dev, "migration: a corrupted record header (tag %u) at byte %llu\n",
			tag, migf->received);
	} else if (tag == VGPU_MIG_REC_VRAM) {
		if (off <= migf->vram_size && len <= migf->vram_size - off) {
			migf->rec_off = off;
			migf->rec_left = len;
			migf->step = len ? VGPU_MIG_LOAD_VRAM :
				     VGPU_MIG_LOAD_RECORD;
			return 0;
		}
		dev_err(dev, "migration: a VRAM record of %llu bytes at %llu, beyond the %llu-byte slice\n",
			len, off, migf->vram_size);
	} else if (tag == VGPU_MIG_REC_CTX) {
		if (!migf->ctx_seen && !off && len == migf->ctx_size) {
			migf->step = VGPU_MIG_LOAD_CTX;
			return 0;
		}
		dev_err(dev, "migration: a second or malformed context record (%llu bytes)\n",
			len);
	} else if (tag == VGPU_MIG_REC_END) {
		if (!migf->ctx_seen || off || len) {
			dev_err(dev, "migration: the stream ends without a context image\n");
		} else if (le32_to_cpu(r->crc) != ~migf->crc) {
			dev_err(dev, "migration: the stream is corrupted: CRC-32 0x%08x, its end record says 0x%08x\n",
				~migf->crc, le32_to_cpu(r->crc));
		} else {
			migf->step = VGPU_MIG_LOAD_DONE;
			return 0;
		}
	} else {
		dev_err(dev, "migration: an unknown record (tag %u) at byte %llu\n",
			tag, migf->received);
	}
	return -EINVAL;
}

/*
 * Take the next bytes of the stream: records are checked as their
 * headers arrive and applied in order, VRAM as it comes (the partition is
 * stopped), the context at RESUMING -> STOP.
 */
static ssize_t vgpu_mig_take(struct vgpu_mig_file *migf,
			     const char __user *ubuf, size_t len)
{
	ssize_t n;
	int ret;

	switch (migf->step) {
	case VGPU_MIG_LOAD_HEADER:
		n = vgpu_mig_gather(migf->buf, &migf->buf_len,
				    sizeof(struct vgpu_mig_header), ubuf, len);
		if (n < 0 || migf->buf_len < sizeof(struct vgpu_mig_header))
			return n;
		migf->crc = crc32_le(migf->crc, migf->buf, migf->buf_len);
		migf->buf_len = 0;
		migf->step = VGPU_MIG_LOAD_RECORD;
		ret = vgpu_mig_check_header(migf);
		return ret ? ret : n;
	case VGPU_MIG_LOAD_RECORD:
		n = vgpu_mig_gather(migf->buf, &migf->buf_len,
				    sizeof(struct vgpu_mig_record), ubuf, len);
		if (n < 0 || migf->buf_len < sizeof(struct vgpu_mig_record))
			return n;
		migf->buf_len = 0;
		ret = vgpu_mig_check_record(migf);
		/* the end record is not in the CRC it carries */
		if (!ret && migf->step != VGPU_MIG_LOAD_DONE)
			migf->crc = crc32_le(migf->crc, migf->buf,
					     sizeof(struct vgpu_mig_record));
		return ret ? ret : n;
	case VGPU_MIG_LOAD_VRAM:
		n = min_t(u64, min_t(u64, len, migf->rec_left), VGPU_MIG_STAGE);
		if (copy_from_user(migf->buf, ubuf, n))
			return -EFAULT;
		migf->crc = crc32_le(migf->crc, migf->buf, n);
		ret = vgpu_mig_vram(migf->mig, migf->rec_off, migf->buf, n, true);
		if (ret) {
			dev_err(migf->mig->vdev->dev, "migration: cannot write the vGPU's VRAM: %d\n",
				ret);
			return ret;
		}
		migf->rec_off += n;
		migf->rec_left -= n;
		if (!migf->rec_left)
			migf->step = VGPU_MIG_LOAD_RECORD;
		return n;
	case VGPU_MIG_LOAD_CTX:
		n = vgpu_mig_gather(migf->ctx, &migf->buf_len, migf->ctx_size,
				    ubuf, len);
		if (n >= 0 && migf->buf_len == migf->ctx_size) {
			migf->crc = crc32_le(migf->crc, migf->ctx,
					     migf->ctx_size);
			migf->buf_len = 0;
			migf->ctx_seen = true;
			migf->step = VGPU_MIG_LOAD_RECORD;
		}
		return n;
	default:
		dev_err(migf->mig->vdev->dev, "migration: %zu bytes after the end of the stream\n",
			len);
		return -EINVAL;
	}
}

static ssize_t vgpu_mig_write(struct file *filp, const char __user *ubuf,
			      size_t len, loff_t *pos)
{
	struct vgpu_mig_file *migf = filp->private_data;
	ssize_t done = 0, n = 0;

	if (pos)	/* a stream: no pwrite */
		return -ESPIPE;
	mutex_lock(&migf->lock);
	if (migf->disabled || migf->error) {
		n = migf->disabled ? -ENODEV : migf->error;
		goto out;
	}
	while ((size_t)done < len) {
		n = vgpu_mig_take(migf, ubuf + done, len - done);
		if (n < 0) {
			/* refused (the kernel log says why): for good */
			if (n != -EFAULT)
				migf->error = n;
			break;
		}
		done += n;
		migf->received += n;
		filp->f_pos += n;
		cond_resched();
	}
out:
	mutex_unlock(&migf->lock);
	return done ? done : n;
}

static const struct file_operations vgpu_mig_save_fops = {
	.owner = THIS_MODULE,
	.read = vgpu_mig_read,
	.unlocked_ioctl = vgpu_mig_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.release = vgpu_mig_release,
};

static const struct file_operations vgpu_mig_resume_fops = {
	.owner = THIS_MODULE,
	.write = vgpu_mig_write,
	.release = vgpu_mig_release,
};

static struct vgpu_mig_file *vgpu_mig_file_new(struct vgpu_mig *mig,
					       bool save)
{
	struct vgpu_mig_file *migf;
	struct file *filp;

	migf = kzalloc(sizeof(*migf), GFP_KERNEL);
	if (!migf)
		return ERR_PTR(-ENOMEM);
	mutex_init(&migf->lock);
	migf->mig = mig;
	migf->crc = ~0U;
	migf->vram_size = mig->vram_size;
	migf->ctx_size = vgpu_mig_ctx_size(mig);
	migf->init_total = sizeof(struct vgpu_mig_header) +
			   sizeof(struct vgpu_mig_record) + migf->vram_size;
	/* a context record is staged whole */
	if (!migf->ctx_size || migf->ctx_size >
	    VGPU_MIG_STAGE - sizeof(struct vgpu_mig_record)) {
		filp = ERR_PTR(-EINVAL);
		goto err;
	}
	migf->buf = kvzalloc(VGPU_MIG_STAGE, GFP_KERNEL);
	migf->ctx = kzalloc(migf->ctx_size, GFP_KERNEL);
	if (!migf->buf || !migf->ctx) {
		filp = ERR_PTR(-ENOMEM);
		goto err;
	}
	filp = anon_inode_getfile(save ? "vgpu_mig_save" : "vgpu_mig_resume",
				  save ? &vgpu_mig_save_fops :
				  &vgpu_mig_resume_fops,
				  migf, save ? O_RDONLY : O_WRONLY);
	if (IS_ERR(filp))
		goto err;
	stream_open(filp->f_inode, filp);
	migf->filp = filp;
	return migf;
err:
	kfree(migf->ctx);
	kvfree(migf->buf);
	mutex_destroy(&migf->lock);
	kfree(migf);
	return ERR_CAST(filp);
}

/* The stopped vGPU's context into the file; it is final from then on. */
static int vgpu_mig_finish(struct vgpu_mig_file *migf)
{
	ssize_t n;

	mutex_lock(&migf->lock);
	vgpu_mig_collect(migf);	/* the last pages, after the stop */
	n = migf->mig->rm->mig_save(migf->mig->vgpu, migf->ctx,
				    migf->ctx_size);
	if (n >= 0)
		migf->final = true;
	mutex_unlock(&migf->lock);
	if (n < 0)
		dev_err(migf->mig->vdev->dev, "migration: cannot save the vGPU's context: %zd\n",
			n);
	return n < 0 ? n : 0;
}

/* STOP -> STOP_COPY: the header, the slice, the context, read as asked. */
static struct file *vgpu_mig_save(struct vgpu_mig *mig)
{
	struct vgpu_mig_file *migf;
	int ret;

	migf = vgpu_mig_file_new(mig, true);
	if (IS_ERR(migf))
		return ERR_CAST(migf);
	ret = vgpu_mig_finish(migf);
	if (ret) {
		fput(migf->filp);
		return ERR_PTR(ret);
	}
	get_file(migf->filp);
	mig->saving = migf;
	return migf->filp;
}

/*
 * RUNNING -> PRE_COPY: the VRAM log starts before any of the slice is
 * read, so every page written from now on is read again after its write.
 */
static struct file *vgpu_mig_precopy(struct vgpu_mig *mig)
{
	struct vgpu_mig_file *migf;
	u64 page, span;
	int ret;

	migf = vgpu_mig_file_new(mig, true);
	if (IS_ERR(migf))
		return ERR_CAST(migf);
	ret = mig->rm->dirty_start(mig->vgpu, &page, &span);
	if (ret) {
		fput(migf->filp);
		return ERR_PTR(ret);
	}
	migf->page = page;
	migf->npages = page ? migf->vram_size / page : 0;
	if (!page || migf->vram_size % page) {
		ret = -EINVAL;
	} else {
		migf->dirty = kvcalloc(BITS_TO_LONGS(migf->npages),
				       sizeof(unsigned long), GFP_KERNEL);
		if (!migf->dirty)
			ret = -ENOMEM;
	}
	if (ret) {
		mig->rm->dirty_stop(mig->vgpu);
		fput(migf->filp);
		return ERR_PTR(ret);
	}
	mig->saving_log = true;
	get_file(migf->filp);
	mig->saving = migf;
	return migf->filp;
}

/* Drops the VRAM log pre-copy holds, if it does. */
static void vgpu_mig_put_log(struct vgpu_mig *mig)
{
	lockdep_assert_held(&mig->lock);
	if (mig->saving_log)
		mig->rm->dirty_stop(mig->vgpu);
	mig->saving_log = false;
}

/*
 * PRE_COPY_P2P -> STOP_COPY: stop, drain the log, save the context; the
 * same file goes on with the last pages, the context and the end. A
 * failure leaves the vGPU running in PRE_COPY_P2P.
 */
static int vgpu_mig_stop_copy(struct vgpu_mig *mig)
{
	int ret;

	if (WARN_ON_ONCE(!mig->saving))
		return -EINVAL;
	ret = mig->rm->mig_stop(mig->vgpu);
	if (ret)
		return ret;
	ret = vgpu_mig_finish(mig->saving);
	if (ret) {
		mig->rm->mig_resume(mig->vgpu);
		return ret;
	}
	vgpu_mig_put_log(mig);
	return 0;
}

/* RESUMING -> STOP: the whole stream arrived; the context goes in last. */
static int vgpu_mig_load(struct vgpu_mig *mig)
{
	struct vgpu_mig_file *migf = mig->resuming;
	int ret = -EINVAL;

	if (!migf)
		return -EINVAL;
	mutex_lock(&migf->lock);
	if (migf->error) {
		/* refused as it came; the kernel log said why */
	} else if (migf->step != VGPU_MIG_LOAD_DONE) {
		dev_err(mig->vdev->dev, "migration: the stream is cut: %llu bytes without its end\n",
			migf->received);
	} else {
		/* the device checks the image whole, and says why it refuses */
		ret = mig->rm->mig_restore(mig->vgpu, migf->ctx,
					   migf->ctx_size);
	}
	mutex_unlock(&migf->lock);
	return ret;
}

static void vgpu_mig_drop_files(struct vgpu_mig *mig)
{
	lockdep_assert_held(&mig->lock);
	if (mig->saving) {
		vgpu_mig_file_disable(mig->saving);
		fput(mig->saving->filp);
		mig->saving = NULL;
	}
	vgpu_mig_put_log(mig);
	if (mig->resuming) {
		vgpu_mig_file_disable(mig->resuming);
		fput(mig->resuming->filp);
		mig->resuming = NULL;
	}
}

static bool vgpu_mig_is(enum vfio_device_mig_state cur,
			enum vfio_device_mig_state next,
			enum vfio_device_mig_state from,
			enum vfio_device_mig_state to)
{
	return cur == from && next == to;
}

/* One arc of the state machine (vfio_mig_get_next_state() chose it). */
static struct file *vgpu_mig_step(struct vgpu_mig *mig,
				  enum vfio_device_mig_state next)
{
	enum vfio_device_mig_state cur = mig->state;
	struct vgpu_mig_file *migf;
	int ret = 0;

	lockdep_assert_held(&mig->lock);
	/* the vGPU starts no peer-to-peer DMA: P2P states are the same */
	if (vgpu_mig_is(cur, next, VFIO_DEVICE_STATE_RUNNING,
			VFIO_DEVICE_STATE_RUNNING_P2P) ||
	    vgpu_mig_is(cur, next, VFIO_DEVICE_STATE_RUNNING_P2P,
			VFIO_DEVICE_STATE_RUNNING) ||
	    vgpu_mig_is(cur, next, VFIO_DEVICE_STATE_PRE_COPY,
			VFIO_DEVICE_STATE_PRE_COPY_P2P) ||
	    vgpu_mig_is(cur, next, VFIO_DEVICE_STATE_PRE_COPY_P2P,
			VFIO_DEVICE_STATE_PRE_COPY))
		return NULL;
	if (vgpu_mig_is(cur, next, VFIO_DEVICE_STATE_RUNNING,
			VFIO_DEVICE_STATE_PRE_COPY) ||
	    vgpu_mig_is(cur, next, VFIO_DEVICE_STATE_RUNNING_P2P,
			VFIO_DEVICE_STATE_PRE_COPY_P2P)) {
		return vgpu_mig_precopy(mig);
	} else if (vgpu_mig_is(cur, next, VFIO_DEVICE_STATE_PRE_COPY,
			       VFIO_DEVICE_STATE_RUNNING) ||
		   vgpu_mig_is(cur, next, VFIO_DEVICE_STATE_PRE_COPY_P2P,
			       VFIO_DEVICE_STATE_RUNNING_P2P)) {
		vgpu_mig_drop_files(mig);	/* cancelled: it never stopped */
	} else if (vgpu_mig_is(cur, next, VFIO_DEVICE_STATE_PRE_COPY_P2P,
			       VFIO_DEVICE_STATE_STOP_COPY)) {
		ret = vgpu_mig_stop_copy(mig);
	} else if (vgpu_mig_is(cur, next, VFIO_DEVICE_STATE_RUNNING_P2P,
			       VFIO_DEVICE_STATE_STOP)) {
		ret = mig->rm->mig_stop(mig->vgpu);
	} else if (vgpu_mig_is(cur, next, VFIO_DEVICE_STATE_STOP,
			       VFIO_DEVICE_STATE_RUNNING_P2P)) {
		ret = mig->rm->mig_resume(mig->vgpu);
	} else if (vgpu_mig_is(cur, next, VFIO_DEVICE_STATE_STOP,
			       VFIO_DEVICE_STATE_STOP_COPY)) {
		return vgpu_mig_save(mig);
	} else if (vgpu_mig_is(cur, next, VFIO_DEVICE_STATE_STOP_COPY,
			       VFIO_DEVICE_STATE_STOP)) {
		vgpu_mig_drop_files(mig);
	} else if (vgpu_mig_is(cur, next, VFIO_DEVICE_STATE_STOP,
			       VFIO_DEVICE_STATE_RESUMING)) {
		migf = vgpu_mig_file_new(mig, false);
		if (IS_ERR(migf))
			return ERR_CAST(migf);
		get_file(migf->filp);
		mig->resuming = migf;
		return migf->filp;
	} else if (vgpu_mig_is(cur, next, VFIO_DEVICE_STATE_RESUMING,
			       VFIO_DEVICE_STATE_STOP)) {
		/* on failure the state stays RESUMING */
		ret = vgpu_mig_load(mig);
		if (!ret)
			vgpu_mig_drop_files(mig);
	} else {
		WARN_ON_ONCE(1);	/* an arc the flags do not allow */
		ret = -EINVAL;
	}
	return ret ? ERR_PTR(ret) : NULL;
}

/* The frontend's vgpu_mig of @vdev (VGPU_MIG_OPS()'s accessor). */
static struct vgpu_mig *vgpu_mig_of(struct vfio_device *vdev)
{
	return container_of(vdev->mig_ops, struct vgpu_mig_ops, mig)->of(vdev);
}

static struct vgpu_mig *vgpu_mig_log_of(struct vfio_device *vdev)
{
	return container_of(vdev->log_ops, struct vgpu_mig_ops, log)->of(vdev);
}

/*
 * The started vGPU was reset, or (@started false) its user goes: the
 * device is RUNNING again, its data files go and a stopped partition runs
 * (a reset keeps CTRL.STOP: SPEC 11 and 15).
 */
static void vgpu_mig_end(struct vgpu_mig *mig, bool started)
{
	enum vfio_device_mig_state st = mig->state;

	lockdep_assert_held(&mig->lock);
	/* a pre-copy's VRAM log goes with its file */
	vgpu_mig_drop_files(mig);
	if (started && mig->vgpu && (st == VFIO_DEVICE_STATE_STOP ||
				     st == VFIO_DEVICE_STATE_STOP_COPY ||
				     st == VFIO_DEVICE_STATE_RESUMING))
		mig->rm->mig_resume(mig->vgpu);
	mig->state = VFIO_DEVICE_STATE_RUNNING;
	/* DMA logging ends with its user (close), a reset keeps it */
	if (!started) {
		if (mig->logging && mig->vgpu)
			mig->rm->dirty_stop(mig->vgpu);
		mig->logging = false;
		xa_destroy(&mig->log_carry);
	}
}

/* Lets go of mig->lock, applying a reset reported meanwhile. */
static void vgpu_mig_unlock(struct vgpu_mig *mig)
{
again:
	spin_lock(&mig->reset_lock);
	if (mig->deferred_reset) {
		mig->deferred_reset = false;
		spin_unlock(&mig->reset_lock);
		vgpu_mig_end(mig, true);
		goto again;
	}
	mutex_unlock(&mig->lock);
	spin_unlock(&mig->reset_lock);
}

struct file *vgpu_mig_set_state(struct vfio_device *vdev,
				enum vfio_device_mig_state new_state)
{
	struct vgpu_mig *mig = vgpu_mig_of(vdev);
	enum vfio_device_mig_state next;
	struct file *res = NULL;
	int ret;

	mutex_lock(&mig->lock);
	/* nobody has the vGPU (not opened, or its frontend could not bind it) */
	if (!mig->vgpu)
		res = ERR_PTR(-ENODEV);
	while (!res && mig->state != new_state) {
		ret = vfio_mig_get_next_state(vdev, mig->state, new_state,
					      &next);
		if (ret) {
			res = ERR_PTR(ret);
			break;
		}
		res = vgpu_mig_step(mig, next);
		if (IS_ERR(res))
			break;
		mig->state = next;
		if (res && next != new_state) {
			/* a data file is only ever the last arc's */
			fput(res);
			res = ERR_PTR(-EINVAL);
			break;
		}
	}
	vgpu_mig_unlock(mig);
	return res;
}
EXPORT_SYMBOL_NS_GPL(vgpu_mig_set_state, VGPU_MIG);

int vgpu_mig_get_state(struct vfio_device *vdev,
		       enum vfio_device_mig_state *state)
{
	struct vgpu_mig *mig = vgpu_mig_of(vdev);

	mutex_lock(&mig->lock);
	*state = mig->state;
	vgpu_mig_unlock(mig);
	return 0;
}
EXPORT_SYMBOL_NS_GPL(vgpu_mig_get_state, VGPU_MIG);

static bool vgpu_mig_precopying(enum vfio_device_mig_state st)
{
	return st == VFIO_DEVICE_STATE_PRE_COPY ||
	       st == VFIO_DEVICE_STATE_PRE_COPY_P2P;
}

/*
 * What STOP_COPY would send: in PRE_COPY, what is not read yet (the rest
 * of the initial data, the dirty pages) and the context; else a whole
 * stream.
 */
int vgpu_mig_get_data_size(struct vfio_device *vdev,
			   unsigned long *stop_copy_length)
{
	struct vgpu_mig *mig = vgpu_mig_of(vdev);
	struct vgpu_mig_file *migf;
	u64 initial, dirty;

	mutex_lock(&mig->lock);
	if (!mig->vgpu) {
		vgpu_mig_unlock(mig);
		return -ENODEV;
	}
	migf = mig->saving;
	*stop_copy_length = vgpu_mig_stream_size(mig);
	if (migf && vgpu_mig_precopying(mig->state)) {
		mutex_lock(&migf->lock);
		vgpu_mig_pending(migf, &initial, &dirty);
		mutex_unlock(&migf->lock);
		*stop_copy_length = initial + dirty + migf->ctx_size +
				    2 * sizeof(struct vgpu_mig_record);
	}
	vgpu_mig_unlock(mig);
	return 0;
}
EXPORT_SYMBOL_NS_GPL(vgpu_mig_get_data_size, VGPU_MIG);

/* ---- DMA logging: the device's SYSMEM dirty log, in VFIO's terms ------- */

int vgpu_mig_log_start(struct vfio_device *vdev,
		       struct rb_root_cached *ranges, u32 nnodes,
		       u64 *page_size)
{
	struct vgpu_mig *mig = vgpu_mig_log_of(vdev);
	int ret;

	/*
	 * The log covers every IOVA below log_span; ranges above it are
	 * reported whole (the device says when it wrote there).
	 */
	mutex_lock(&mig->lock);
	xa_destroy(&mig->log_carry);
	/* a second START goes on with the one reference it holds */
	if (mig->logging)
		ret = 0;
	else if (!mig->vgpu)
		ret = -ENODEV;
	else
		ret = mig->rm->dirty_start(mig->vgpu, &mig->log_page,
					   &mig->log_span);
	if (!ret) {
		mig->logging = true;
		*page_size = mig->log_page;
	}
	vgpu_mig_unlock(mig);
	return ret;
}
EXPORT_SYMBOL_NS_GPL(vgpu_mig_log_start, VGPU_MIG);

int vgpu_mig_log_stop(struct vfio_device *vdev)
{
	struct vgpu_mig *mig = vgpu_mig_log_of(vdev);

	mutex_lock(&mig->lock);
	if (mig->logging)
		mig->rm->dirty_stop(mig->vgpu);
	mig->logging = false;
	xa_destroy(&mig->log_carry);
	vgpu_mig_unlock(mig);
	return 0;
}
EXPORT_SYMBOL_NS_GPL(vgpu_mig_log_stop, VGPU_MIG);

/*
 * Report the pages of [@iova, @iova + @length) the vGPU wrote. Device
 * words are read and cleared whole; bits of a word outside the range are
 * kept in log_carry for the call that asks for them.
 */
int vgpu_mig_log_read_and_clear(struct vfio_device *vdev,
				unsigned long iova, unsigned long length,
				struct iova_bitmap *dirty)
{
	struct vgpu_mig *mig = vgpu_mig_log_of(vdev);
	u64 pg, first, last, span, w, w_end, page;
	u32 words[VGPU_LOG_CHUNK];
	int ret = 0, i, n;

	if (!length || iova + length - 1 < iova)
		return -EINVAL;
	mutex_lock(&mig->lock);
	if (!mig->logging) {
		ret = -EINVAL;
		goto out;
	}
	pg = mig->log_page;
	first = iova / pg;
	last = (iova + length - 1) / pg;
	span = mig->log_span / pg;
	if (last >= span) {
		/* beyond the device's log: everything there may be dirty */
		u64 from = max_t(u64, iova, mig->log_span);

		iova_bitmap_set(dirty, from, iova + length - from);
		if (first >= span)
			goto out;
		last = span - 1;
	}
	w_end = last / VGPU_LOG_PAGES_PER_WORD + 1;
	for (w = first / VGPU_LOG_PAGES_PER_WORD; w < w_end; w += n) {
		n = min_t(u64, VGPU_LOG_CHUNK, w_end - w);
		if (mig->rm->dirty_read(mig->vgpu, false, w, words, n)) {
			/* a write beyond the log: report the range whole */
			iova_bitmap_set(dirty, iova, length);
			goto out;
		}
		for (i = 0; i < n; i++) {
			u32 bits = words[i];
			void *old = xa_load(&mig->log_carry, w + i);
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
				xa_store(&mig->log_carry, w + i, xa_mk_value(keep),
					 GFP_KERNEL);
			else if (old)
				xa_erase(&mig->log_carry, w + i);
		}
		cond_resched();
	}
out:
	vgpu_mig_unlock(mig);
	return ret;
}
EXPORT_SYMBOL_NS_GPL(vgpu_mig_log_read_and_clear, VGPU_MIG);

/*
 * From the frontend's vfio_device init: migration is offered when the
 * RM's ops have it, pre-copy and DMA logging when they have dirty logs.
 */
void vgpu_mig_init(struct vgpu_mig *mig, struct vfio_device *vdev,
		   const struct vgpu_mig_ops *ops,
		   const struct vgpu_rm_ops *rm)
{
	mig->vdev = vdev;
	mig->rm = rm;
	mutex_init(&mig->lock);
	spin_lock_init(&mig->reset_lock);
	mig->state = VFIO_DEVICE_STATE_RUNNING;
	xa_init(&mig->log_carry);
	if (!rm || !rm->mig_stop || !rm->mig_resume || !rm->mig_save ||
	    !rm->mig_restore || !rm->mig_state_size || !rm->vgpu_vram_rw)
		return;
	vdev->migration_flags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P;
	vdev->mig_ops = &ops->mig;
	if (rm->dirty_start && rm->dirty_stop && rm->dirty_read) {
		/* pre-copy resends what the VRAM log reports */
		vdev->migration_flags |= VFIO_MIGRATION_PRE_COPY;
		vdev->log_ops = &ops->log;
	}
}
EXPORT_SYMBOL_NS_GPL(vgpu_mig_init, VGPU_MIG);

/*
 * A user has the started vGPU @vgpu (of GPU @gpu, type @type, @vram_size
 * bytes of VRAM): the engine migrates it until vgpu_mig_close().
 */
void vgpu_mig_open(struct vgpu_mig *mig, struct vgpu_rm_gpu *gpu,
		   struct vgpu_rm_vgpu *vgpu, const char *type, u64 vram_size)
{
	mutex_lock(&mig->lock);
	vgpu_mig_end(mig, false);
	mig->gpu = gpu;
	mig->vgpu = vgpu;
	strscpy(mig->type, type, sizeof(mig->type));
	mig->vram_size = vram_size;
	vgpu_mig_unlock(mig);
}
EXPORT_SYMBOL_NS_GPL(vgpu_mig_open, VGPU_MIG);

/*
 * The user goes, before the vGPU stops: a migration in or out of it ends
 * (its data files fail with -ENODEV from now on), DMA logging too.
 */
void vgpu_mig_close(struct vgpu_mig *mig)
{
	mutex_lock(&mig->lock);
	vgpu_mig_end(mig, false);
	mig->vgpu = NULL;
	vgpu_mig_unlock(mig);
}
EXPORT_SYMBOL_NS_GPL(vgpu_mig_close, VGPU_MIG);

/* The started vGPU was reset: a migration ends, the partition runs. */
void vgpu_mig_reset(struct vgpu_mig *mig)
{
	mutex_lock(&mig->lock);
	vgpu_mig_end(mig, true);
	vgpu_mig_unlock(mig);
}
EXPORT_SYMBOL_NS_GPL(vgpu_mig_reset, VGPU_MIG);

/*
 * The same, reported where waiting could deadlock: a PCI reset_done, under
 * the device lock and (VFIO_DEVICE_RESET) vfio-pci-core's memory_lock.
 * Applied now if mig->lock is free and no data file is open, else left to
 * the next holder of mig->lock: a read() or write() of a data file holds
 * its file's lock and may be faulting on the VF's mmap'ed BARs, which wait
 * for memory_lock, so the reset must not wait for that file's lock.
 * vgpu_mig_reset_flush() applies it once the reset's locks are let go.
 */
void vgpu_mig_reset_done(struct vgpu_mig *mig)
{
	spin_lock(&mig->reset_lock);
	mig->deferred_reset = true;
	if (!mutex_trylock(&mig->lock)) {
		spin_unlock(&mig->reset_lock);
		return;
	}
	spin_unlock(&mig->reset_lock);
	if (mig->saving || mig->resuming) {
		mutex_unlock(&mig->lock);	/* deferred_reset stays set */
		return;
	}
	vgpu_mig_unlock(mig);
}
EXPORT_SYMBOL_NS_GPL(vgpu_mig_reset_done, VGPU_MIG);

/* Applies a reset vgpu_mig_reset_done() left deferred, if any. */
void vgpu_mig_reset_flush(struct vgpu_mig *mig)
{
	mutex_lock(&mig->lock);
	vgpu_mig_unlock(mig);
}
EXPORT_SYMBOL_NS_GPL(vgpu_mig_reset_flush, VGPU_MIG);

/*
 * Removal of the vGPU is waiting for its user (vfio_device_ops.request):
 * a migration in or out of it cannot finish any more. Its data file fails
 * from now on with -ENODEV, so the VMM's load (or save) fails, it closes
 * the device, and the removal goes on; the source of a refused incoming
 * migration runs on.
 */
void vgpu_mig_request(struct vgpu_mig *mig)
{
	struct vgpu_mig_file *files[2];
	unsigned int i;

	mutex_lock(&mig->lock);
	files[0] = mig->resuming;
	files[1] = mig->saving;
	for (i = 0; i < ARRAY_SIZE(files); i++) {
		if (!files[i])
			continue;
		mutex_lock(&files[i]->lock);
		if (!files[i]->error) {
			files[i]->error = -ENODEV;
			dev_warn(mig->vdev->dev, "migration: the vGPU is being removed; its %s stream is refused from now on\n",
				 i ? "outgoing" : "incoming");
		}
		mutex_unlock(&files[i]->lock);
	}
	vgpu_mig_unlock(mig);
}
EXPORT_SYMBOL_NS_GPL(vgpu_mig_request, VGPU_MIG);

void vgpu_mig_exit(struct vgpu_mig *mig)
{
	xa_destroy(&mig->log_carry);
	mutex_destroy(&mig->lock);
}
EXPORT_SYMBOL_NS_GPL(vgpu_mig_exit, VGPU_MIG);
