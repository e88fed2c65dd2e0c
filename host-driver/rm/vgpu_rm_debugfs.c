// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The RM's debugfs view, /sys/kernel/debug/vgpu_rm/<pci-name>/: its state
 * as stable "key=value ..." lines (vgpuctl parses them; a leading '#' line
 * names the keys), and a "control" file that creates and drives vGPUs
 * without a frontend, to test the allocators and partition programming.
 */
#include <linux/bitfield.h>
#include <linux/debugfs.h>
#include <linux/io.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/seq_file.h>
#include <linux/uaccess.h>

#include "vgpu_rm.h"

static struct dentry *vgpu_rm_debugfs_root;
/* control writes, so that two of them never delete one vGPU twice */
static DEFINE_MUTEX(vgpu_rm_control_lock);

/* Value names, from the register table's lists in vgpu_regs.h. */
struct vgpu_rm_value_name {
	unsigned int value;
	const char *name;
};

#define VGPU_RM_VALUE_NAME(value, name) { value, #name },

static const struct vgpu_rm_value_name vgpu_rm_state_names[] = {
	VGPU_STATE_VALUES(VGPU_RM_VALUE_NAME)
};

static const struct vgpu_rm_value_name vgpu_rm_fault_names[] = {
	VGPU_FAULT_VALUES(VGPU_RM_VALUE_NAME)
};

static const char *vgpu_rm_value_name(const struct vgpu_rm_value_name *names,
				      size_t count, unsigned int value)
{
	size_t i;

	for (i = 0; i < count; i++)
		if (names[i].value == value)
			return names[i].name;
	return "UNKNOWN";
}

const char *vgpu_rm_state_name(unsigned int state)
{
	return vgpu_rm_value_name(vgpu_rm_state_names,
				  ARRAY_SIZE(vgpu_rm_state_names), state);
}

const char *vgpu_rm_fault_name(unsigned int code)
{
	return vgpu_rm_value_name(vgpu_rm_fault_names,
				  ARRAY_SIZE(vgpu_rm_fault_names), code);
}

/* The head as it shows: mode@base or off, the link, the EDID's header. */
static void vgpu_rm_partition_display_show(struct seq_file *s,
					   struct vgpu_rm_gpu *gpu,
					   unsigned int p)
{
	u32 status = readl(vgpu_rm_win_reg(gpu, p, VGPU_W_DISP_STATUS));
	u32 mode = readl(vgpu_rm_win_reg(gpu, p, VGPU_W_DISP_ACTIVE_MODE));

	if (status & VGPU_W_DISP_STATUS_ACTIVE)
		seq_printf(s, " display=%llux%llu@0x%llx",
			   FIELD_GET(VGPU_W_DISP_ACTIVE_MODE_WIDTH, mode),
			   FIELD_GET(VGPU_W_DISP_ACTIVE_MODE_HEIGHT, mode),
			   readq(vgpu_rm_win_reg(gpu, p,
						 VGPU_W_DISP_ACTIVE_BASE)));
	else
		seq_puts(s, " display=off");
	seq_printf(s, " link=%s edid=%08x%08x vblanks=%llu\n",
		   status & VGPU_W_DISP_STATUS_CONNECTED ? "up" : "down",
		   readl(vgpu_rm_win_reg(gpu, p, VGPU_W_DISP_EDID(0))),
		   readl(vgpu_rm_win_reg(gpu, p, VGPU_W_DISP_EDID(1))),
		   readq(vgpu_rm_win_reg(gpu, p, VGPU_W_DISP_VBLANK_COUNT)));
}

static int vgpu_rm_partitions_show(struct seq_file *s, void *unused)
{
	struct vgpu_rm_gpu *gpu = s->private;
	struct vgpu_rm_vgpu *vgpu;
	unsigned int p, state;

	seq_puts(s, "# index state origin owner type vram_base vram_size weight pinned_pages irqs xlate_faults xlate_cancels commands bytes busy_ns faults display link edid vblanks\n");
	mutex_lock(&gpu->lock);
	for (p = 0; p < gpu->partitions; p++) {
		vgpu = gpu->parts[p].vgpu;
		state = FIELD_GET(VGPU_PT_STATE_STATE,
				  readl(vgpu_rm_pt_reg(gpu, p, VGPU_PT_STATE)));
		seq_printf(s, "index=%u state=%s", p, vgpu_rm_state_name(state));
		if (vgpu)
			seq_printf(s, " origin=%s owner=%pUl type=%s",
				   vgpu->vf ? "vf" :
				   vgpu->cb ? "frontend" : "debugfs",
				   &vgpu->uuid, vgpu->type->name);
		else
			seq_puts(s, " origin=- owner=- type=-");
		seq_printf(s, " vram_base=0x%llx vram_size=0x%llx weight=%u pinned_pages=%lu",
			   readq(vgpu_rm_pt_reg(gpu, p, VGPU_PT_VRAM_BASE)),
			   readq(vgpu_rm_pt_reg(gpu, p, VGPU_PT_VRAM_SIZE)),
			   readl(vgpu_rm_pt_reg(gpu, p, VGPU_PT_WEIGHT)),
			   vgpu ? READ_ONCE(vgpu->nr_pins) : 0);
		seq_printf(s, " irqs=%lld xlate_faults=%lld xlate_cancels=%lld",
			   vgpu ? atomic64_read(&vgpu->irqs_injected) : 0,
			   vgpu ? atomic64_read(&vgpu->xlate_faults) : 0,
			   vgpu ? atomic64_read(&vgpu->xlate_cancels) : 0);
		seq_printf(s, " commands=%llu bytes=%llu busy_ns=%llu faults=%u",
			   readq(vgpu_rm_win_reg(gpu, p, VGPU_W_STAT_COMMANDS)),
			   readq(vgpu_rm_win_reg(gpu, p, VGPU_W_STAT_BYTES)),
			   readq(vgpu_rm_win_reg(gpu, p, VGPU_W_STAT_BUSY_NS)),
			   readl(vgpu_rm_win_reg(gpu, p, VGPU_W_STAT_FAULTS)));
		vgpu_rm_partition_display_show(s, gpu, p);
	}
	mutex_unlock(&gpu->lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(vgpu_rm_partitions);

static int vgpu_rm_vram_show(struct seq_file *s, void *unused)
{
	struct vgpu_rm_gpu *gpu = s->private;
	unsigned long start, end, free = 0, largest = 0;
	struct vgpu_rm_vgpu *vgpu;
	unsigned int p;

	seq_puts(s, "# first line: total_bytes free_bytes largest_free_bytes granule_bytes; then one line per slice: partition vram_base vram_size type owner\n");
	mutex_lock(&gpu->lock);
	for_each_clear_bitrange(start, end, gpu->vram_map, gpu->vram_granules) {
		free += end - start;
		largest = max(largest, end - start);
	}
	seq_printf(s, "total_bytes=%llu free_bytes=%llu largest_free_bytes=%llu granule_bytes=%llu\n",
		   gpu->vram_size, (u64)free * VGPU_VRAM_ALIGN,
		   (u64)largest * VGPU_VRAM_ALIGN, VGPU_VRAM_ALIGN);
	for (p = 0; p < gpu->partitions; p++) {
		vgpu = gpu->parts[p].vgpu;
		if (!vgpu)
			continue;
		seq_printf(s, "partition=%u vram_base=0x%llx vram_size=0x%llx type=%s owner=%pUl\n",
			   p, vgpu->vram_base, vgpu->vram_size,
			   vgpu->type->name, &vgpu->uuid);
	}
	mutex_unlock(&gpu->lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(vgpu_rm_vram);

static int vgpu_rm_types_show(struct seq_file *s, void *unused)
{
	struct vgpu_rm_gpu *gpu = s->private;
	struct vgpu_rm_type *t;
	unsigned int i;

	seq_puts(s, "# index id name origin framebuffer framebuffer_bytes max_instances weight created available\n");
	mutex_lock(&gpu->lock);
	for (i = 0; i < gpu->nr_types; i++) {
		t = gpu->types[i];
		seq_printf(s, "index=%u id=%u name=%s origin=%s framebuffer=%s framebuffer_bytes=%llu max_instances=%u weight=%u created=%u available=%u\n",
			   i, t->id, t->name, t->runtime ? "configfs" : "built-in",
			   t->fb_str, t->framebuffer_bytes,
			   t->max_instances, t->weight, t->created,
			   vgpu_rm_available(gpu, t));
	}
	mutex_unlock(&gpu->lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(vgpu_rm_types);

static int vgpu_rm_faults_show(struct seq_file *s, void *unused)
{
	struct vgpu_rm_fault_entry hist[VGPU_RM_FAULT_HISTORY];
	struct vgpu_rm_gpu *gpu = s->private;
	u64 seen, first, seq;
	u32 lost, access;
	unsigned long flags;
	struct vgpu_rm_fault_entry *e;

	spin_lock_irqsave(&gpu->fault_lock, flags);
	seen = gpu->faults_seen;
	lost = gpu->faults_lost;
	memcpy(hist, gpu->fault_history, sizeof(hist));
	spin_unlock_irqrestore(&gpu->fault_lock, flags);

	access = readl(gpu->regs + VGPU_G_ACCESS_ERROR_COUNT);

	seq_puts(s, "# first line: seen lost access_errors; then the latest fault-log entries, oldest first: seq partition code ring write addr\n");
	seq_printf(s, "seen=%llu lost=%u access_errors=%u\n",
		   seen, lost, access);
	first = seen > VGPU_RM_FAULT_HISTORY ? seen - VGPU_RM_FAULT_HISTORY : 0;
	for (seq = first; seq < seen; seq++) {
		e = &hist[seq % VGPU_RM_FAULT_HISTORY];
		seq_printf(s, "seq=%llu partition=%llu code=%s ring=%llu write=%d addr=0x%llx\n",
			   e->seq, FIELD_GET(VGPU_G_FAULT_LOG_INFO_PARTITION, e->info),
			   vgpu_rm_fault_name(FIELD_GET(VGPU_G_FAULT_LOG_INFO_CODE, e->info)),
			   FIELD_GET(VGPU_G_FAULT_LOG_INFO_RING, e->info),
			   !!(e->info & VGPU_G_FAULT_LOG_INFO_WRITE), e->addr);
	}
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(vgpu_rm_faults);

struct vgpu_rm_reg_desc {
	const char *name;
	u64 offset;
	unsigned int bytes;
	unsigned int access;
};

#define VGPU_RM_REG(name, offset, bytes, access) \
	{ #name, offset, bytes, VGPU_REG_ACCESS_##access },

/* The global registers, from the register table; write-only ones are skipped. */
static const struct vgpu_rm_reg_desc vgpu_rm_global_regs[] = {
	VGPU_GLOBAL_REGS(VGPU_RM_REG)
};

static int vgpu_rm_regs_show(struct seq_file *s, void *unused)
{
	const struct vgpu_rm_reg_desc *r;
	struct vgpu_rm_gpu *gpu = s->private;
	u64 val;

	seq_puts(s, "# global registers (SPEC.md 14): name offset value\n");
	for (r = vgpu_rm_global_regs;
	     r < vgpu_rm_global_regs + ARRAY_SIZE(vgpu_rm_global_regs); r++) {
		if (!(r->access & VGPU_REG_READABLE))
			continue;
		val = r->bytes == 8 ? readq(gpu->regs + r->offset) :
				      readl(gpu->regs + r->offset);
		seq_printf(s, "name=%s offset=0x%03llx value=0x%0*llx\n",
			   r->name, r->offset, r->bytes * 2, val);
	}
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(vgpu_rm_regs);

/* A vGPU this file created, by partition; NULL otherwise. */
static struct vgpu_rm_vgpu *vgpu_rm_debugfs_vgpu(struct vgpu_rm_gpu *gpu,
						 unsigned int p)
{
	struct vgpu_rm_vgpu *vgpu = NULL;

	mutex_lock(&gpu->lock);
	if (p < gpu->partitions && gpu->parts[p].vgpu &&
	    !gpu->parts[p].vgpu->cb && !gpu->parts[p].vgpu->vf)
		vgpu = gpu->parts[p].vgpu;
	mutex_unlock(&gpu->lock);
	return vgpu;
}

static int vgpu_rm_control_cmd(struct vgpu_rm_gpu *gpu, char *cmd)
{
	struct vgpu_rm_vgpu *vgpu;
	char *verb, *arg;
	unsigned int n, i;
	u64 iova, val;
	guid_t uuid;
	int ret;

	cmd = strim(cmd);
	verb = strsep(&cmd, " \t");
	arg = cmd ? strim(cmd) : "";

	if (!strcmp(verb, "create")) {
		struct vgpu_rm_type *t;

		/* a type name, or a table index */
		mutex_lock(&gpu->lock);
		t = vgpu_rm_type_by_name(gpu, arg);
		if (!t && !kstrtouint(arg, 0, &i))
			t = vgpu_rm_type_at(gpu, i);
		i = t ? t->id : 0;
		mutex_unlock(&gpu->lock);
		if (!i)
			return -EINVAL;
		guid_gen(&uuid);
		return vgpu_rm_create(gpu, i, VGPU_RM_ANY_PARTITION, &uuid,
				      NULL, NULL, &vgpu);
	}

	if (!strcmp(verb, "peek")) {
		if (sscanf(arg, "%u %llx", &n, &iova) != 2)
			return -EINVAL;
		vgpu = vgpu_rm_debugfs_vgpu(gpu, n);
		if (!vgpu)
			return -ENOENT;
		ret = vgpu_rm_xlate_peek(vgpu, iova, &val);
		if (!ret)
			dev_info(&gpu->pdev->dev, "peek partition %u 0x%llx: 0x%llx\n",
				 n, iova, val);
		return ret;
	}

	if (kstrtouint(arg, 0, &n))
		return -EINVAL;
	vgpu = vgpu_rm_debugfs_vgpu(gpu, n);
	if (!vgpu)
		return -ENOENT;
	if (!strcmp(verb, "delete")) {
		vgpu_rm_delete(vgpu);
		return 0;
	}
	if (!strcmp(verb, "start"))
		return vgpu_rm_start(vgpu);
	if (!strcmp(verb, "stop")) {
		vgpu_rm_stop(vgpu);
		return 0;
	}
	if (!strcmp(verb, "reset"))
		return vgpu_rm_reset(vgpu);
	return -EINVAL;
}

/*
 * A debugging aid that touches only vGPUs made here, never a frontend's:
 *   create <type name|index>            a vGPU on the first free partition
 *   start|stop|reset|delete <partition> (delete stops it first)
 *   peek <partition> <hex iova>         log the u64 the GPU wrote there
 * A debugfs vGPU's system memory is zeroed pages the RM allocates when the
 * partition first touches them (translation faults), freed on stop.
 */
static ssize_t vgpu_rm_control_write(struct file *file,
				     const char __user *ubuf, size_t len,
				     loff_t *ppos)
{
	struct vgpu_rm_gpu *gpu = file_inode(file)->i_private;
	char buf[64];
	int ret;

	if (*ppos || len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = '\0';

	mutex_lock(&vgpu_rm_control_lock);
	ret = vgpu_rm_control_cmd(gpu, buf);
	mutex_unlock(&vgpu_rm_control_lock);
	return ret ? ret : len;
}

static const struct file_operations vgpu_rm_control_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = vgpu_rm_control_write,
	.llseek = noop_llseek,
};

static int vgpu_rm_xlate_delay_show(struct seq_file *s, void *unused)
{
	struct vgpu_rm_gpu *gpu = s->private;
	struct vgpu_rm_vgpu *vgpu;
	unsigned int p;

	seq_puts(s, "# partition delay_ms: hold-up of each vGPU's translation-fault service; write \"<partition> <ms>\" to set\n");
	mutex_lock(&gpu->lock);
	for (p = 0; p < gpu->partitions; p++) {
		vgpu = gpu->parts[p].vgpu;
		if (vgpu)
			seq_printf(s, "partition=%u delay_ms=%u\n", p,
				   READ_ONCE(vgpu->xlate_delay_ms));
	}
	mutex_unlock(&gpu->lock);
	return 0;
}

static int vgpu_rm_xlate_delay_open(struct inode *inode, struct file *file)
{
	return single_open(file, vgpu_rm_xlate_delay_show, inode->i_private);
}

/*
 * "<partition> <ms>": the vGPU on that partition (a frontend's too) sleeps
 * that long before it services each translation fault, standing in for a
 * tenant whose pins take long, so a test can check that other vGPUs'
 * faults do not wait for it. The setting dies with the vGPU.
 */
static ssize_t vgpu_rm_xlate_delay_write(struct file *file,
					 const char __user *ubuf, size_t len,
					 loff_t *ppos)
{
	struct vgpu_rm_gpu *gpu = file_inode(file)->i_private;
	unsigned int p, ms;
	char buf[32];
	int ret = -ENOENT;

	if (*ppos || len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = '\0';
	if (sscanf(buf, "%u %u", &p, &ms) != 2 ||
	    ms > VGPU_RM_MAX_XLATE_DELAY_MS)
		return -EINVAL;

	mutex_lock(&gpu->lock);
	if (p < gpu->partitions && gpu->parts[p].vgpu) {
		WRITE_ONCE(gpu->parts[p].vgpu->xlate_delay_ms, ms);
		ret = 0;
	}
	mutex_unlock(&gpu->lock);
	return ret ? ret : len;
}

static const struct file_operations vgpu_rm_xlate_delay_fops = {
	.owner = THIS_MODULE,
	.open = vgpu_rm_xlate_delay_open,
	.read = seq_read,
	.write = vgpu_rm_xlate_delay_write,
	.llseek = seq_lseek,
	.release = single_release,
};

void vgpu_rm_debugfs_add(struct vgpu_rm_gpu *gpu)
{
	struct dentry *dir;

	dir = debugfs_create_dir(pci_name(gpu->pdev), vgpu_rm_debugfs_root);
	gpu->debugfs = dir;
	debugfs_create_file("partitions", 0444, dir, gpu,
			    &vgpu_rm_partitions_fops);
	debugfs_create_file("vram", 0444, dir, gpu, &vgpu_rm_vram_fops);
	debugfs_create_file("types", 0444, dir, gpu, &vgpu_rm_types_fops);
	debugfs_create_file("faults", 0444, dir, gpu, &vgpu_rm_faults_fops);
	debugfs_create_file("regs", 0444, dir, gpu, &vgpu_rm_regs_fops);
	debugfs_create_file("control", 0200, dir, gpu, &vgpu_rm_control_fops);
	debugfs_create_file("xlate_delay_ms", 0600, dir, gpu,
			    &vgpu_rm_xlate_delay_fops);
}

void vgpu_rm_debugfs_remove(struct vgpu_rm_gpu *gpu)
{
	debugfs_remove_recursive(gpu->debugfs);
	gpu->debugfs = NULL;
}

void vgpu_rm_debugfs_init(void)
{
	vgpu_rm_debugfs_root = debugfs_create_dir(VGPU_RM_NAME, NULL);
}

void vgpu_rm_debugfs_exit(void)
{
	debugfs_remove_recursive(vgpu_rm_debugfs_root);
}
