// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Runtime-defined vGPU types, through configfs:
 *
 *   mkdir /sys/kernel/config/vgpu/<PF PCI name>        (a GPU bound to vgpu_rm)
 *   mkdir /sys/kernel/config/vgpu/<PF>/types/<name>    (a type, disabled)
 *   echo 96M > .../<name>/framebuffer                  (multiple of 64K)
 *   echo 2 > .../<name>/max_instances; echo 8 > .../<name>/weight
 *   echo 1 > .../<name>/enable                         (in the GPU's table)
 *   echo 0 > .../<name>/enable; rmdir .../<name>       (once it has no vGPU)
 *
 * An enabled type is pinned (configfs_depend_item), so rmdir says EBUSY
 * until it is disabled; disabling says EBUSY while vGPUs of it exist.
 * Items find their GPU by name at each call, under vgpu_rm_lock, so a GPU
 * that goes away leaves its directories behind, disabled and harmless.
 */
#include <linux/configfs.h>
#include <linux/ctype.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "vgpu_rm.h"

/* /sys/kernel/config/vgpu/<PF PCI name>/ */
struct vgpu_rm_cfs_gpu {
	struct config_group group;
	struct config_group types;	/* default group "types" */
};

/* /sys/kernel/config/vgpu/<PF>/types/<name>/ */
struct vgpu_rm_cfs_type {
	struct config_item item;
	struct vgpu_rm_cfs_gpu *cg;
	/* name, size, limits; id and created while in the GPU's table */
	struct vgpu_rm_type type;
	/* the GPU whose table holds it (enabled), or NULL; vgpu_rm_lock */
	struct vgpu_rm_gpu *gpu;
};

static struct configfs_subsystem vgpu_rm_cfs;

static inline struct vgpu_rm_cfs_type *to_cfs_type(struct config_item *item)
{
	return container_of(item, struct vgpu_rm_cfs_type, item);
}

static inline struct vgpu_rm_cfs_gpu *to_cfs_gpu(struct config_group *group)
{
	return container_of(group, struct vgpu_rm_cfs_gpu, group);
}

/* The GPU a type directory belongs to, if bound. Holds vgpu_rm_lock. */
static struct vgpu_rm_gpu *vgpu_rm_cfs_find(struct vgpu_rm_cfs_type *ct)
{
	struct vgpu_rm_gpu *gpu;

	lockdep_assert_held(&vgpu_rm_lock);
	gpu = vgpu_rm_find_gpu(config_item_name(&ct->cg->group.cg_item));
	if (!gpu)
		pr_err("vgpu_rm: type %s: GPU %s is not bound to vgpu_rm\n",
		       ct->type.name, config_item_name(&ct->cg->group.cg_item));
	return gpu;
}

/* A type name becomes an mdev type directory: keep it plain. */
static bool vgpu_rm_cfs_name_ok(const char *name)
{
	if (!*name || strlen(name) >= VGPU_TYPE_NAME_LEN)
		return false;
	for (; *name; name++)
		if (!isalnum(*name) && !strchr("-_.+", *name))
			return false;
	return true;
}

/*
 * Look the GPU up and refuse a change of an enabled type. Returns the GPU
 * with vgpu_rm_lock held, or an ERR_PTR without it.
 */
static struct vgpu_rm_gpu *vgpu_rm_cfs_lock_disabled(struct vgpu_rm_cfs_type *ct)
{
	struct vgpu_rm_gpu *gpu;

	mutex_lock(&vgpu_rm_lock);
	gpu = vgpu_rm_cfs_find(ct);
	if (!gpu) {
		mutex_unlock(&vgpu_rm_lock);
		return ERR_PTR(-ENODEV);
	}
	if (ct->gpu) {
		dev_err(&gpu->pdev->dev, "type %s is enabled: echo 0 > enable before changing it\n",
			ct->type.name);
		mutex_unlock(&vgpu_rm_lock);
		return ERR_PTR(-EBUSY);
	}
	return gpu;
}

static ssize_t vgpu_rm_cfs_framebuffer_show(struct config_item *item,
					    char *page)
{
	struct vgpu_rm_cfs_type *ct = to_cfs_type(item);

	return sysfs_emit(page, "%s\n", ct->type.framebuffer_bytes ?
			  ct->type.fb_str : "0");
}

static ssize_t vgpu_rm_cfs_framebuffer_store(struct config_item *item,
					     const char *page, size_t count)
{
	struct vgpu_rm_cfs_type *ct = to_cfs_type(item);
	struct vgpu_rm_gpu *gpu;
	char what[VGPU_TYPE_NAME_LEN + 8];
	u64 fb;
	int ret;

	gpu = vgpu_rm_cfs_lock_disabled(ct);
	if (IS_ERR(gpu))
		return PTR_ERR(gpu);
	scnprintf(what, sizeof(what), "type %s", ct->type.name);
	ret = vgpu_rm_parse_framebuffer(gpu, what, page, false, &fb);
	if (!ret) {
		ct->type.framebuffer_bytes = fb;
		vgpu_rm_type_describe(&ct->type);
	}
	mutex_unlock(&vgpu_rm_lock);
	return ret ? ret : count;
}

static ssize_t vgpu_rm_cfs_max_instances_show(struct config_item *item,
					      char *page)
{
	return sysfs_emit(page, "%u\n", to_cfs_type(item)->type.max_instances);
}

/*
 * Store a number in 1..limit into a disabled type's field: limit is the
 * GPU's partition count for max_instances, VGPU_MAX_WEIGHT for weight.
 */
static ssize_t vgpu_rm_cfs_store_uint(struct config_item *item,
				      const char *page, size_t count,
				      const char *attr, bool per_partition,
				      unsigned int *(*field)(struct vgpu_rm_type *t))
{
	struct vgpu_rm_cfs_type *ct = to_cfs_type(item);
	struct vgpu_rm_gpu *gpu;
	unsigned int n, limit;
	int ret = 0;

	gpu = vgpu_rm_cfs_lock_disabled(ct);
	if (IS_ERR(gpu))
		return PTR_ERR(gpu);
	limit = per_partition ? gpu->partitions : VGPU_MAX_WEIGHT;
	if (kstrtouint(page, 0, &n) || !n || n > limit) {
		dev_err(&gpu->pdev->dev, "type %s: %s must be 1..%u%s\n",
			ct->type.name, attr, limit,
			per_partition ? " (partitions)" : "");
		ret = -EINVAL;
	} else {
		*field(&ct->type) = n;
	}
	mutex_unlock(&vgpu_rm_lock);
	return ret ? ret : count;
}

static unsigned int *vgpu_rm_type_max_instances(struct vgpu_rm_type *t)
{
	return &t->max_instances;
}

static unsigned int *vgpu_rm_type_weight(struct vgpu_rm_type *t)
{
	return &t->weight;
}

static ssize_t vgpu_rm_cfs_max_instances_store(struct config_item *item,
					       const char *page, size_t count)
{
	return vgpu_rm_cfs_store_uint(item, page, count, "max_instances", true,
				      vgpu_rm_type_max_instances);
}

static ssize_t vgpu_rm_cfs_weight_show(struct config_item *item, char *page)
{
	return sysfs_emit(page, "%u\n", to_cfs_type(item)->type.weight);
}

static ssize_t vgpu_rm_cfs_weight_store(struct config_item *item,
					const char *page, size_t count)
{
	return vgpu_rm_cfs_store_uint(item, page, count, "weight", false,
				      vgpu_rm_type_weight);
}

static ssize_t vgpu_rm_cfs_id_show(struct config_item *item, char *page)
{
	struct vgpu_rm_cfs_type *ct = to_cfs_type(item);
	unsigned int id;

	mutex_lock(&vgpu_rm_lock);
	id = ct->gpu ? ct->type.id : 0;
	mutex_unlock(&vgpu_rm_lock);
	return sysfs_emit(page, "%u\n", id);
}

static ssize_t vgpu_rm_cfs_enable_show(struct config_item *item, char *page)
{
	struct vgpu_rm_cfs_type *ct = to_cfs_type(item);
	bool on;

	mutex_lock(&vgpu_rm_lock);
	on = ct->gpu;
	mutex_unlock(&vgpu_rm_lock);
	return sysfs_emit(page, "%d\n", on);
}

/* Put the type into its GPU's table. Holds vgpu_rm_lock. */
static int vgpu_rm_cfs_enable(struct vgpu_rm_cfs_type *ct,
			      struct vgpu_rm_gpu *gpu)
{
	struct device *dev = &gpu->pdev->dev;
	struct vgpu_rm_type *t = &ct->type;
	int ret;

	if (!t->framebuffer_bytes) {
		dev_err(dev, "type %s: write its framebuffer size before enabling it\n",
			t->name);
		return -EINVAL;
	}
	if (t->max_instances > gpu->partitions) {
		dev_err(dev, "type %s: max_instances %u is more than the %u partitions\n",
			t->name, t->max_instances, gpu->partitions);
		return -EINVAL;
	}
	if (vgpu_rm_type_by_name(gpu, t->name)) {
		dev_err(dev, "type %s: a type of that name exists already\n",
			t->name);
		return -EEXIST;
	}
	if (gpu->nr_types >= VGPU_RM_MAX_TYPES) {
		dev_err(dev, "type %s: the GPU has %u types, the most it can have\n",
			t->name, gpu->nr_types);
		return -ENOSPC;
	}
	ret = vgpu_rm_types_change_begin(gpu);
	if (ret)
		return ret;
	/* rmdir of an enabled type says EBUSY until it is disabled */
	ret = configfs_depend_item_unlocked(&vgpu_rm_cfs, &ct->item);
	if (!ret) {
		ret = vgpu_rm_type_publish(gpu, t);
		if (ret)
			configfs_undepend_item_unlocked(&ct->item);
	}
	vgpu_rm_types_change_end(gpu);
	if (ret) {
		dev_err(dev, "type %s not enabled: %d\n", t->name, ret);
		return ret;
	}
	ct->gpu = gpu;
	dev_info(dev, "vGPU type %s enabled: id %u, framebuffer %s, max_instances %u, weight %u\n",
		 t->name, t->id, t->fb_str, t->max_instances, t->weight);
	return 0;
}

/* Take the type out of its GPU's table. Holds vgpu_rm_lock. */
static int vgpu_rm_cfs_disable(struct vgpu_rm_cfs_type *ct)
{
	struct vgpu_rm_gpu *gpu = ct->gpu;
	struct vgpu_rm_type *t = &ct->type;
	unsigned int created;
	int ret;

	mutex_lock(&gpu->lock);
	created = t->created;
	mutex_unlock(&gpu->lock);
	if (created) {
		dev_err(&gpu->pdev->dev, "type %s is in use by %u vGPU(s): remove them before disabling it\n",
			t->name, created);
		return -EBUSY;
	}
	ret = vgpu_rm_types_change_begin(gpu);
	if (ret)
		return ret;
	/* a vGPU made meanwhile (SR-IOV, debugfs) keeps it: -EBUSY */
	ret = vgpu_rm_type_unpublish(gpu, t);
	vgpu_rm_types_change_end(gpu);
	if (ret) {
		dev_err(&gpu->pdev->dev, "type %s is in use: remove its vGPUs before disabling it\n",
			t->name);
		return ret;
	}
	ct->gpu = NULL;
	configfs_undepend_item_unlocked(&ct->item);
	dev_info(&gpu->pdev->dev, "vGPU type %s disabled\n", t->name);
	return 0;
}

static ssize_t vgpu_rm_cfs_enable_store(struct config_item *item,
					const char *page, size_t count)
{
	struct vgpu_rm_cfs_type *ct = to_cfs_type(item);
	struct vgpu_rm_gpu *gpu;
	bool on;
	int ret = 0;

	if (kstrtobool(page, &on)) {
		pr_err("vgpu_rm: type %s: enable takes 0 or 1\n", ct->type.name);
		return -EINVAL;
	}
	mutex_lock(&vgpu_rm_lock);
	gpu = vgpu_rm_cfs_find(ct);
	if (!gpu)
		ret = -ENODEV;
	else if (on && !ct->gpu)
		ret = vgpu_rm_cfs_enable(ct, gpu);
	else if (!on && ct->gpu)
		ret = vgpu_rm_cfs_disable(ct);
	mutex_unlock(&vgpu_rm_lock);
	return ret ? ret : count;
}

CONFIGFS_ATTR(vgpu_rm_cfs_, framebuffer);
CONFIGFS_ATTR(vgpu_rm_cfs_, max_instances);
CONFIGFS_ATTR(vgpu_rm_cfs_, weight);
CONFIGFS_ATTR(vgpu_rm_cfs_, enable);
CONFIGFS_ATTR_RO(vgpu_rm_cfs_, id);

static struct configfs_attribute *vgpu_rm_cfs_type_attrs[] = {
	&vgpu_rm_cfs_attr_framebuffer,
	&vgpu_rm_cfs_attr_max_instances,
	&vgpu_rm_cfs_attr_weight,
	&vgpu_rm_cfs_attr_enable,
	&vgpu_rm_cfs_attr_id,
	NULL,
};

static void vgpu_rm_cfs_type_release(struct config_item *item)
{
	kfree(to_cfs_type(item));
}

static struct configfs_item_operations vgpu_rm_cfs_type_ops = {
	.release = vgpu_rm_cfs_type_release,
};

static const struct config_item_type vgpu_rm_cfs_type_type = {
	.ct_item_ops = &vgpu_rm_cfs_type_ops,
	.ct_attrs = vgpu_rm_cfs_type_attrs,
	.ct_owner = THIS_MODULE,
};

/* mkdir .../types/<name>: a disabled type with defaults. */
static struct config_item *vgpu_rm_cfs_make_type(struct config_group *group,
						 const char *name)
{
	struct vgpu_rm_cfs_gpu *cg =
		container_of(group, struct vgpu_rm_cfs_gpu, types);
	struct vgpu_rm_cfs_type *ct;
	struct vgpu_rm_gpu *gpu;
	int ret = 0;

	if (!vgpu_rm_cfs_name_ok(name)) {
		pr_err("vgpu_rm: type name '%s': 1 to %u letters, digits and -_.+\n",
		       name, VGPU_TYPE_NAME_LEN - 1);
		return ERR_PTR(-EINVAL);
	}
	mutex_lock(&vgpu_rm_lock);
	gpu = vgpu_rm_find_gpu(config_item_name(&cg->group.cg_item));
	if (!gpu) {
		pr_err("vgpu_rm: type %s: GPU %s is not bound to vgpu_rm\n",
		       name, config_item_name(&cg->group.cg_item));
		ret = -ENODEV;
	} else if (vgpu_rm_type_by_name(gpu, name)) {
		dev_err(&gpu->pdev->dev, "type %s: a built-in type has that name\n",
			name);
		ret = -EEXIST;
	}
	mutex_unlock(&vgpu_rm_lock);
	if (ret)
		return ERR_PTR(ret);

	ct = kzalloc(sizeof(*ct), GFP_KERNEL);
	if (!ct)
		return ERR_PTR(-ENOMEM);
	ct->cg = cg;
	strscpy(ct->type.name, name, sizeof(ct->type.name));
	ct->type.runtime = true;
	ct->type.max_instances = 1;
	ct->type.weight = VGPU_PT_WEIGHT_RESET;
	vgpu_rm_type_describe(&ct->type);
	config_item_init_type_name(&ct->item, name, &vgpu_rm_cfs_type_type);
	return &ct->item;
}

static struct configfs_group_operations vgpu_rm_cfs_types_group_ops = {
	.make_item = vgpu_rm_cfs_make_type,
};

static const struct config_item_type vgpu_rm_cfs_types_type = {
	.ct_group_ops = &vgpu_rm_cfs_types_group_ops,
	.ct_owner = THIS_MODULE,
};

static void vgpu_rm_cfs_gpu_release(struct config_item *item)
{
	kfree(to_cfs_gpu(to_config_group(item)));
}

static struct configfs_item_operations vgpu_rm_cfs_gpu_ops = {
	.release = vgpu_rm_cfs_gpu_release,
};

static const struct config_item_type vgpu_rm_cfs_gpu_type = {
	.ct_item_ops = &vgpu_rm_cfs_gpu_ops,
	.ct_owner = THIS_MODULE,
};

/* mkdir /sys/kernel/config/vgpu/<PF PCI name>: a GPU bound to vgpu_rm. */
static struct config_group *vgpu_rm_cfs_make_gpu(struct config_group *group,
						 const char *name)
{
	struct vgpu_rm_cfs_gpu *cg;
	bool found;

	mutex_lock(&vgpu_rm_lock);
	found = vgpu_rm_find_gpu(name);
	mutex_unlock(&vgpu_rm_lock);
	if (!found) {
		pr_err("vgpu_rm: no GPU %s bound to vgpu_rm (the PF's PCI name, e.g. 0000:00:02.0)\n",
		       name);
		return ERR_PTR(-ENODEV);
	}
	cg = kzalloc(sizeof(*cg), GFP_KERNEL);
	if (!cg)
		return ERR_PTR(-ENOMEM);
	config_group_init_type_name(&cg->group, name, &vgpu_rm_cfs_gpu_type);
	config_group_init_type_name(&cg->types, "types",
				    &vgpu_rm_cfs_types_type);
	configfs_add_default_group(&cg->types, &cg->group);
	return &cg->group;
}

static struct configfs_group_operations vgpu_rm_cfs_root_ops = {
	.make_group = vgpu_rm_cfs_make_gpu,
};

static const struct config_item_type vgpu_rm_cfs_root_type = {
	.ct_group_ops = &vgpu_rm_cfs_root_ops,
	.ct_owner = THIS_MODULE,
};

static struct configfs_subsystem vgpu_rm_cfs = {
	.su_group = {
		.cg_item = {
			.ci_namebuf = "vgpu",
			.ci_type = &vgpu_rm_cfs_root_type,
		},
	},
};

/*
 * @gpu goes away, with no vGPU left: its runtime types leave its table and
 * become disabled directories. Holds vgpu_rm_lock; @gpu is off the list.
 */
void vgpu_rm_configfs_gpu_gone(struct vgpu_rm_gpu *gpu)
{
	struct vgpu_rm_cfs_type *ct;
	unsigned int i;

	lockdep_assert_held(&vgpu_rm_lock);
	for (i = gpu->nr_types; i-- > 0;) {
		if (!gpu->types[i]->runtime)
			continue;
		ct = container_of(gpu->types[i], struct vgpu_rm_cfs_type, type);
		vgpu_rm_type_unpublish(gpu, &ct->type);
		ct->gpu = NULL;
		configfs_undepend_item(&ct->item);
	}
}

int vgpu_rm_configfs_init(void)
{
	config_group_init(&vgpu_rm_cfs.su_group);
	mutex_init(&vgpu_rm_cfs.su_mutex);
	return configfs_register_subsystem(&vgpu_rm_cfs);
}

void vgpu_rm_configfs_exit(void)
{
	configfs_unregister_subsystem(&vgpu_rm_cfs);
}
