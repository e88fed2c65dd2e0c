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
 * How many more vGPUs of @type could be created right now. The VRAM part
 * is found by placing slices in a scratch copy of the allocator, so that
 * fragmentation is accounted for honestly. Caller holds gpu->lock.
 */
unsigned int vgpu_rm_available(struct vgpu_rm_gpu *gpu, unsigned int type)
{
	struct vgpu_rm_type *t;
	unsigned int free_parts, limit, n = 0;
	u64 base;

	lockdep_assert_held(&gpu->lock);
	if (type >= gpu->nr_types)
		return 0;
	t = &gpu->types[type];
	free_parts = gpu->partitions -
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

static int vgpu_rm_type_add(struct vgpu_rm_gpu *gpu, u64 fb, unsigned int n)
{
	struct vgpu_rm_type *t;
	unsigned int i;

	if (gpu->nr_types >= VGPU_RM_MAX_TYPES)
		return -E2BIG;
	t = &gpu->types[gpu->nr_types];
	memset(t, 0, sizeof(*t));
	t->framebuffer_bytes = fb;
	t->max_instances = n;
	t->weight = clamp(64 / n, 1U, 255U);
	vgpu_rm_format_size(t->fb_str, sizeof(t->fb_str), fb);
	scnprintf(t->name, sizeof(t->name), "vgpu-%s", t->fb_str);
	scnprintf(t->human_name, sizeof(t->human_name), "vGPU %s (1/%u GPU)",
		  t->fb_str, n);
	for (i = 0; i < gpu->nr_types; i++)
		if (!strcmp(gpu->types[i].name, t->name))
			return -EEXIST;
	gpu->nr_types++;
	return 0;
}

/* The default table: 1/n of the GPU for n = 1, 2, 4 ... partitions. */
static void vgpu_rm_types_default(struct vgpu_rm_gpu *gpu)
{
	unsigned int n;
	u64 fb;

	for (n = 1; n <= min(gpu->partitions, 64U); n *= 2) {
		fb = max_t(u64, rounddown_pow_of_two(div_u64(gpu->vram_size, n)),
			   VGPU_VRAM_ALIGN);
		vgpu_rm_type_add(gpu, fb, n);
	}
}

/* "256M:2,64M:8": framebuffer:max_instances, framebuffer a power of two. */
static int vgpu_rm_types_parse(struct vgpu_rm_gpu *gpu, const char *spec)
{
	struct device *dev = &gpu->pdev->dev;
	char *copy, *cursor, *item, *end;
	unsigned int n;
	u64 fb;
	int ret = 0;

	copy = kstrdup(spec, GFP_KERNEL);
	if (!copy)
		return -ENOMEM;
	cursor = strim(copy);
	while ((item = strsep(&cursor, ",")) != NULL) {
		item = strim(item);
		fb = memparse(item, &end);
		if (end == item || *end != ':' || kstrtouint(end + 1, 10, &n)) {
			dev_err(dev, "types: '%s' is not <framebuffer>:<max_instances> (e.g. 256M:2)\n",
				item);
			ret = -EINVAL;
			break;
		}
		if (fb < VGPU_VRAM_ALIGN || !is_power_of_2(fb) ||
		    fb > gpu->vram_size) {
			dev_err(dev, "types: framebuffer in '%s' must be a power of two from 64K to the VRAM size (%lluM)\n",
				item, gpu->vram_size / SZ_1M);
			ret = -EINVAL;
			break;
		}
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
				"too many types");
			ret = -EINVAL;
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
	vgpu_rm_types_default(gpu);
	return 0;
}
