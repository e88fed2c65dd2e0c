// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vgpu_rm_mig.c - the hardware side of a vGPU's migration (SPEC 16) for
 * the frontend: stop and resume a partition, save its context into a
 * buffer and restore one, and the dirty logs of its engine's writes. The
 * device has one context buffer and one dirty-log window, so the GPU's
 * ctx_lock serialises their use; a vGPU's xlate_lock serialises its CTRL
 * writes (STOP, DIRTY_LOG) with start, stop and reset.
 */
#include <linux/bitfield.h>
#include <linux/io.h>
#include <linux/pci.h>

#include "vgpu_rm.h"

/* CTRL of a started vGPU, with or without STOP. */
static u32 vgpu_rm_mig_ctrl(struct vgpu_rm_vgpu *vgpu, bool stop)
{
	u32 ctrl = vgpu->vf ? VGPU_PT_CTRL_ENABLE :
		   VGPU_PT_CTRL_ENABLE | VGPU_PT_CTRL_XLATE |
		   VGPU_PT_CTRL_XLATE_REPLAY;

	if (stop)
		ctrl |= VGPU_PT_CTRL_STOP;
	if (vgpu->dirty_users)
		ctrl |= VGPU_PT_CTRL_DIRTY_LOG;
	return ctrl;
}

/*
 * CTRL as @stop and dirty_users say; caller holds xlate_lock and checked
 * that the vGPU is started. A refused write leaves the partition running
 * without logs (what the device falls back to), and says so.
 */
static int vgpu_rm_mig_write_ctrl(struct vgpu_rm_vgpu *vgpu, bool stop)
{
	struct vgpu_rm_gpu *gpu = vgpu->gpu;
	u32 want, ctrl;

	lockdep_assert_held(&vgpu->xlate_lock);
	want = vgpu_rm_mig_ctrl(vgpu, stop);
	/* returns once no engine runs the partition (STOP) */
	writel(want, vgpu_rm_pt_reg(gpu, vgpu->partition, VGPU_PT_CTRL));
	ctrl = readl(vgpu_rm_pt_reg(gpu, vgpu->partition, VGPU_PT_CTRL));
	if (ctrl != want) {
		dev_err(&gpu->pdev->dev, "partition %u refused CTRL 0x%x (reads 0x%x)\n",
			vgpu->partition, want, ctrl);
		vgpu->dirty_users = 0;
		vgpu->stopped = false;
		return -EIO;
	}
	vgpu->stopped = stop;
	return 0;
}

static int vgpu_rm_mig_set_stop(struct vgpu_rm_vgpu *vgpu, bool stop)
{
	int ret = -EINVAL;

	mutex_lock(&vgpu->xlate_lock);
	if (vgpu->started)
		ret = vgpu_rm_mig_write_ctrl(vgpu, stop);
	mutex_unlock(&vgpu->xlate_lock);
	return ret;
}

/* The partition stops at a chunk boundary; doorbells are still taken. */
int vgpu_rm_mig_stop(struct vgpu_rm_vgpu *vgpu)
{
	return vgpu_rm_mig_set_stop(vgpu, true);
}

/* It runs again where it stopped. */
int vgpu_rm_mig_resume(struct vgpu_rm_vgpu *vgpu)
{
	return vgpu_rm_mig_set_stop(vgpu, false);
}

/*
 * The partition has one DIRTY_LOG bit for its two logs, and the frontend
 * has two users of them (VFIO DMA logging reads SYSMEM, pre-copy reads
 * VRAM): each holds a reference, the first sets the bit (empty logs), the
 * last clears it (logs dropped). A later user finds the logs running and
 * may be told of pages written before it started: resending them is
 * harmless, losing one is not, so nothing is cleared under a user.
 */
int vgpu_rm_dirty_start(struct vgpu_rm_vgpu *vgpu, u64 *page_size, u64 *span)
{
	int ret = 0;

	*page_size = VGPU_DIRTY_PAGE;
	*span = VGPU_DIRTY_SYS_SPAN;
	mutex_lock(&vgpu->xlate_lock);
	if (!vgpu->started) {
		ret = -EINVAL;
	} else if (!vgpu->dirty_users) {
		/* off first: the bit may be left on by a refused write */
		ret = vgpu_rm_mig_write_ctrl(vgpu, vgpu->stopped);
		if (!ret) {
			vgpu->dirty_users = 1;
			ret = vgpu_rm_mig_write_ctrl(vgpu, vgpu->stopped);
		}
	} else {
		vgpu->dirty_users++;
	}
	mutex_unlock(&vgpu->xlate_lock);
	return ret;
}

/* Drops one reference; the last turns the logs off. */
void vgpu_rm_dirty_stop(struct vgpu_rm_vgpu *vgpu)
{
	mutex_lock(&vgpu->xlate_lock);
	/* none after vgpu_rm_stop() or a refused CTRL write: nothing to drop */
	if (vgpu->started && vgpu->dirty_users && !--vgpu->dirty_users)
		vgpu_rm_mig_write_ctrl(vgpu, vgpu->stopped);
	mutex_unlock(&vgpu->xlate_lock);
}

/*
 * Words [@first, @first + @n) of the vGPU's SYSMEM (or VRAM) dirty log
 * into @words, cleared in the device: bit b of word i is page 32 * i + b.
 * An empty log (DIRTY_COUNT 0) is not scanned. For SYSMEM, returns 1 if
 * an engine write fell beyond the log since the last SYSMEM read (its
 * host must then treat everything as dirty), else 0; a VRAM read leaves
 * that flag to the SYSMEM reader and returns 0.
 */
int vgpu_rm_dirty_read(struct vgpu_rm_vgpu *vgpu, bool vram, u32 first,
		       u32 *words, u32 n)
{
	struct vgpu_rm_gpu *gpu = vgpu->gpu;
	u64 bit = BIT_ULL(vgpu->partition);
	int overflow = 0;
	u32 i;

	mutex_lock(&gpu->ctx_lock);
	writel(FIELD_PREP(VGPU_G_DIRTY_SEL_PARTITION, vgpu->partition) |
	       FIELD_PREP(VGPU_G_DIRTY_SEL_LOG, vram ? VGPU_DIRTY_VRAM :
				      VGPU_DIRTY_SYSMEM),
	       gpu->regs + VGPU_G_DIRTY_SEL);
	if (!readl(gpu->regs + VGPU_G_DIRTY_COUNT)) {
		memset(words, 0, n * sizeof(*words));
	} else {
		writel(first, gpu->regs + VGPU_G_DIRTY_INDEX);
		for (i = 0; i < n; i++)
			words[i] = readl(gpu->regs + VGPU_G_DIRTY_WORD);
	}
	if (!vram) {
		overflow = !!(readq(gpu->regs + VGPU_G_DIRTY_OVERFLOW) & bit);
		if (overflow)
			writeq(bit, gpu->regs + VGPU_G_DIRTY_OVERFLOW);
	}
	mutex_unlock(&gpu->ctx_lock);
	return overflow;
}

size_t vgpu_rm_mig_state_size(struct vgpu_rm_gpu *gpu)
{
	return readl(gpu->regs + VGPU_G_CTX_SIZE);
}

static const char *const vgpu_rm_ctx_results[] = {
	[VGPU_CTX_OK] = "OK",
	[VGPU_CTX_NOT_STOPPED] = "the partition is not stopped",
	[VGPU_CTX_BAD_FORMAT] = "not a context image (format)",
	[VGPU_CTX_BAD_VERSION] = "a context image of another major version",
	[VGPU_CTX_BAD_CHECKSUM] = "the image's checksum does not match (corrupted)",
	[VGPU_CTX_SLICE_MISMATCH] = "the image's VRAM slice size differs from this vGPU's",
	[VGPU_CTX_BAD_STATE] = "the image holds a state the device cannot take",
};

/* CTX_CMD @op on the vGPU's partition; its result, with ctx_lock held. */
static u32 vgpu_rm_ctx_cmd(struct vgpu_rm_vgpu *vgpu, u32 op)
{
	struct vgpu_rm_gpu *gpu = vgpu->gpu;

	lockdep_assert_held(&gpu->ctx_lock);
	writel(FIELD_PREP(VGPU_G_CTX_CMD_PARTITION, vgpu->partition) |
	       FIELD_PREP(VGPU_G_CTX_CMD_OP, op), gpu->regs + VGPU_G_CTX_CMD);
	return FIELD_GET(VGPU_G_CTX_STATUS_RESULT,
			 readl(gpu->regs + VGPU_G_CTX_STATUS));
}

static int vgpu_rm_ctx_errno(struct vgpu_rm_vgpu *vgpu, u32 result,
			     const char *what)
{
	const char *why = result < ARRAY_SIZE(vgpu_rm_ctx_results) ?
			  vgpu_rm_ctx_results[result] : "an unknown result";

	if (result == VGPU_CTX_OK)
		return 0;
	dev_err(&vgpu->gpu->pdev->dev, "partition %u: context %s refused: %s (CTX_STATUS %u)\n",
		vgpu->partition, what, why, result);
	return result == VGPU_CTX_NOT_STOPPED ? -EBUSY : -EINVAL;
}

/* The stopped vGPU's context into @buf; its length, or -errno. */
ssize_t vgpu_rm_mig_save(struct vgpu_rm_vgpu *vgpu, void *buf, size_t len)
{
	struct vgpu_rm_gpu *gpu = vgpu->gpu;
	size_t size = vgpu_rm_mig_state_size(gpu), i;
	u32 *w = buf;
	int ret;

	if (len < size || size % 4)
		return -ENOSPC;
	mutex_lock(&gpu->ctx_lock);
	ret = vgpu_rm_ctx_errno(vgpu, vgpu_rm_ctx_cmd(vgpu, VGPU_CTX_OP_SAVE),
				"save");
	for (i = 0; !ret && i < size / 4; i++)
		w[i] = cpu_to_le32(readl(gpu->regs + VGPU_G_CTX_DATA));
	mutex_unlock(&gpu->ctx_lock);
	return ret ? ret : size;
}

/* A context image into the stopped vGPU; checked whole by the device. */
int vgpu_rm_mig_restore(struct vgpu_rm_vgpu *vgpu, const void *buf,
			size_t len)
{
	struct vgpu_rm_gpu *gpu = vgpu->gpu;
	size_t size = vgpu_rm_mig_state_size(gpu), i;
	const u32 *w = buf;
	int ret;

	if (len != size) {
		dev_err(&gpu->pdev->dev, "partition %u: a context image of %zu bytes, the device's are %zu\n",
			vgpu->partition, len, size);
		return -EINVAL;
	}
	mutex_lock(&gpu->ctx_lock);
	writel(0, gpu->regs + VGPU_G_CTX_POS);
	for (i = 0; i < size / 4; i++)
		writel(le32_to_cpu(w[i]), gpu->regs + VGPU_G_CTX_DATA);
	ret = vgpu_rm_ctx_errno(vgpu,
				vgpu_rm_ctx_cmd(vgpu, VGPU_CTX_OP_RESTORE),
				"restore");
	mutex_unlock(&gpu->ctx_lock);
	return ret;
}
