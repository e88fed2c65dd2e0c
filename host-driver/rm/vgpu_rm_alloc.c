// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The resources a vGPU is made of: VRAM slices (a bitmap
 * of 64 KiB granules), partitions, and the vGPU type table built from them.
 */
#include <linux/kernel.h>
#include <linux/log2.h>
#include <linux/minmax.h>
#include <linux/slab.h>
#include <linux/sizes.h>
#include <linux/string.h>

#include "vgpu_rm.h"

void vgpu_rm_format_size(char *buf, size_t len, u64 bytes)
{
	if (bytes && !(bytes % SZ_1G))
		scnprintf(buf, len, "%lluG", bytes / SZ_1G);
	else if (bytes && !(bytes % SZ_1M))
		scnprintf(buf, len, "%lluM", bytes / SZ_1M);
	else
		scnprintf(buf, len, "%lluK", bytes / SZ_1K);
}

/*
 * First fit; a power-of-two slice is aligned to its size so that equal
 * slices pack without holes and a freed slice fits its successor.
 */
int vgpu_rm_vram_alloc(struct vgpu_rm_gpu *gpu, unsigned long *map,
		       u64 size, u64 *base)
{
	unsigned long nr, align_mask, idx;

	if (!size || size % VGPU_VRAM_ALIGN || size > gpu->vram_size)
		return -EINVAL;
	nr = size / VGPU_VRAM_ALIGN;
	align_mask = is_power_of_2(nr) ? nr - 1 : 0;
	idx = bitmap_find_next_zero_area(map, gpu->vram_granules, 0, nr,
					 align_mask);
	if (idx >= gpu->vram_granules)
		return -ENOSPC;
	bitmap_set(map, idx, nr);
	*base = (u64)idx * VGPU_VRAM_ALIGN;
	return 0;
}

void vgpu_rm_vram_free(struct vgpu_rm_gpu *gpu, u64 base, u64 size)
{
	bitmap_clear(gpu->vram_map, base / VGPU_VRAM_ALIGN,
		     size / VGPU_VRAM_ALIGN);
}

/*
 * How many more vGPUs of @t could be created right now. The VRAM part is
 * found by placing slices in a scratch copy of the allocator with the
 * allocator itself, so alignment and the free extents left between slices
 * of other sizes count exactly as they will when the vGPUs are created:
 * for one size, placing first-fit over aligned positions places the most
 * that fit. Caller holds gpu->lock.
 */
unsigned int vgpu_rm_available(struct vgpu_rm_gpu *gpu,
			       struct vgpu_rm_type *t)
{
	unsigned int free_parts, limit, n = 0;
	u64 base;

	lockdep_assert_held(&gpu->lock);
	if (!t || gpu->mode != VGPU_RM_MODE_MDEV)
		return 0;
	/* mdev vGPUs only: the VFs' partitions are never theirs */
	free_parts = gpu->partitions - gpu->vf_partitions -
		     bitmap_weight(gpu->part_map, gpu->partitions);
	limit = min(free_parts, t->max_instances - min(t->created,
						       t->max_instances));
	bitmap_copy(gpu->vram_scratch, gpu->vram_map, gpu->vram_granules);
	while (n < limit &&
	       !vgpu_rm_vram_alloc(gpu, gpu->vram_scratch,
				   t->framebuffer_bytes, &base))
		n++;
	return n;
}

/* The table's @index-th type (the ops' type index), or NULL. */
struct vgpu_rm_type *vgpu_rm_type_at(struct vgpu_rm_gpu *gpu,
				     unsigned int index)
{
	return index < gpu->nr_types ? gpu->types[index] : NULL;
}

struct vgpu_rm_type *vgpu_rm_type_by_name(struct vgpu_rm_gpu *gpu,
					  const char *name)
{
	unsigned int i;

	for (i = 0; i < gpu->nr_types; i++)
		if (!strcmp(gpu->types[i]->name, name))
			return gpu->types[i];
	return NULL;
}

struct vgpu_rm_type *vgpu_rm_type_by_id(struct vgpu_rm_gpu *gpu,
					unsigned int id)
{
	unsigned int i;

	for (i = 0; i < gpu->nr_types; i++)
		if (gpu->types[i]->id == id)
			return gpu->types[i];
	return NULL;
}

/* fb_str and the human-readable name, from the framebuffer size. */
void vgpu_rm_type_describe(struct vgpu_rm_type *t)
{
	vgpu_rm_format_size(t->fb_str, sizeof(t->fb_str),
			    t->framebuffer_bytes);
	if (t->runtime)
		scnprintf(t->human_name, sizeof(t->human_name),
			  "vGPU %s (%s, runtime-defined)", t->name, t->fb_str);
	else
		scnprintf(t->human_name, sizeof(t->human_name),
			  "vGPU %s (1/%u GPU)", t->fb_str, t->max_instances);
}

/*
 * Put @t into the table with a new ID. Caller holds vgpu_rm_lock; the
 * table changes under gpu->lock too, for readers holding only that.
 */
int vgpu_rm_type_publish(struct vgpu_rm_gpu *gpu, struct vgpu_rm_type *t)
{
	int ret = 0;

	mutex_lock(&gpu->lock);
	if (gpu->nr_types >= VGPU_RM_MAX_TYPES) {
		ret = -ENOSPC;
	} else if (vgpu_rm_type_by_name(gpu, t->name)) {
		ret = -EEXIST;
	} else {
		t->id = ++gpu->next_type_id;
		t->created = 0;
		gpu->types[gpu->nr_types++] = t;
	}
	mutex_unlock(&gpu->lock);
	return ret;
}

/*
 * Take @t out of the table, unless a vGPU of it exists (-EBUSY). Caller
 * holds vgpu_rm_lock.
 */
int vgpu_rm_type_unpublish(struct vgpu_rm_gpu *gpu, struct vgpu_rm_type *t)
{
	unsigned int i;

	mutex_lock(&gpu->lock);
	if (t->created) {
		mutex_unlock(&gpu->lock);
		return -EBUSY;
	}
	for (i = 0; i < gpu->nr_types; i++) {
		if (gpu->types[i] != t)
			continue;
		memmove(&gpu->types[i], &gpu->types[i + 1],
			(gpu->nr_types - i - 1) * sizeof(gpu->types[0]));
		gpu->types[--gpu->nr_types] = NULL;
		break;
	}
	t->id = 0;
	mutex_unlock(&gpu->lock);
	return 0;
}

/*
 * A framebuffer size from @str ("96M", "1G", bytes): a multiple of the
 * slice granule (64K), at most the VRAM size, a power of two if @pow2.
 * Says why in the kernel log when it is not.
 */
int vgpu_rm_parse_framebuffer(struct vgpu_rm_gpu *gpu, const char *what,
			      const char *str, bool pow2, u64 *bytes)
{
	struct device *dev = &gpu->pdev->dev;
	char *end;
	u64 fb;

	fb = memparse(str, &end);
	if (end == str || (*end && *end != '\n' && *end != ':')) {
		dev_err(dev, "%s: framebuffer '%s' is not a size (e.g. 96M)\n",
			what, str);
		return -EINVAL;
	}
	if (fb < VGPU_VRAM_ALIGN || fb % VGPU_VRAM_ALIGN ||
	    fb > gpu->vram_size || (pow2 && !is_power_of_2(fb))) {
		dev_err(dev, "%s: framebuffer %llu bytes: must be %sa multiple of 64K from 64K to the VRAM size (%lluM)\n",
			what, fb, pow2 ? "a power of two and " : "",
			gpu->vram_size / SZ_1M);
		return -EINVAL;
	}
	*bytes = fb;
	return 0;
}

static int vgpu_rm_type_add(struct vgpu_rm_gpu *gpu, u64 fb, unsigned int n)
{
	struct vgpu_rm_type *t;
	char fb_str[16];

	if (gpu->nr_types >= VGPU_RM_MAX_TYPES)
		return -E2BIG;
	vgpu_rm_format_size(fb_str, sizeof(fb_str), fb);
	t = devm_kzalloc(&gpu->pdev->dev, sizeof(*t), GFP_KERNEL);
	if (!t)
		return -ENOMEM;
	t->framebuffer_bytes = fb;
	t->max_instances = n;
	t->weight = clamp(64 / n, 1U, 255U);
	scnprintf(t->name, sizeof(t->name), "vgpu-%s", fb_str);
	vgpu_rm_type_describe(t);
	if (vgpu_rm_type_by_name(gpu, t->name)) {
		devm_kfree(&gpu->pdev->dev, t);
		return -EEXIST;
	}
	t->id = ++gpu->next_type_id;
	gpu->types[gpu->nr_types++] = t;
	return 0;
}

/* The default table: 1/n of the GPU for n = 1, 2, 4 ... partitions. */
static int vgpu_rm_types_default(struct vgpu_rm_gpu *gpu)
{
	unsigned int n;
	u64 fb;
	int ret;

	for (n = 1; n <= min(gpu->partitions, 64U); n *= 2) {
		fb = max_t(u64, rounddown_pow_of_two(div_u64(gpu->vram_size, n)),
			   VGPU_VRAM_ALIGN);
		ret = vgpu_rm_type_add(gpu, fb, n);
		if (ret && ret != -EEXIST)
			return ret;
	}
	return 0;
}

/* "256M:2,64M:8": framebuffer:max_instances, framebuffer a power of two. */
static int vgpu_rm_types_parse(struct vgpu_rm_gpu *gpu, const char *spec)
{
	struct device *dev = &gpu->pdev->dev;
	char *copy, *cursor, *item, *colon;
	unsigned int n;
	u64 fb;
	int ret = 0;

	copy = kstrdup(spec, GFP_KERNEL);
	if (!copy)
		return -ENOMEM;
	cursor = strim(copy);
	while ((item = strsep(&cursor, ",")) != NULL) {
		item = strim(item);
		colon = strchr(item, ':');
		if (!colon || kstrtouint(colon + 1, 10, &n)) {
			dev_err(dev, "types: '%s' is not <framebuffer>:<max_instances> (e.g. 256M:2)\n",
				item);
			ret = -EINVAL;
			break;
		}
		ret = vgpu_rm_parse_framebuffer(gpu, "types", item, true, &fb);
		if (ret)
			break;
		if (!n || n > gpu->partitions) {
			dev_err(dev, "types: max_instances in '%s' must be 1..%u (partitions)\n",
				item, gpu->partitions);
			ret = -EINVAL;
			break;
		}
		ret = vgpu_rm_type_add(gpu, fb, n);
		if (ret) {
			dev_err(dev, "types: '%s': %s\n", item,
				ret == -EEXIST ? "framebuffer listed twice" :
				ret == -E2BIG ? "too many types" : "no memory");
			ret = ret == -ENOMEM ? ret : -EINVAL;
			break;
		}
	}
	kfree(copy);
	if (!ret && !gpu->nr_types) {
		dev_err(dev, "types: empty list\n");
		ret = -EINVAL;
	}
	return ret;
}

int vgpu_rm_types_init(struct vgpu_rm_gpu *gpu, const char *spec)
{
	gpu->nr_types = 0;
	if (spec && *spec)
		return vgpu_rm_types_parse(gpu, spec);
	return vgpu_rm_types_default(gpu);
}
