// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vgpu_vfio_irq.c - a vGPU's interrupts as VFIO eventfds: MSI-X (one per
 * vGPU vector), MSI and INTx (vector-agnostic, INTx auto-masked), and the
 * device request channel.
 *
 * The backend injects from hard-irq context. Triggers are read and replaced
 * under irq_lock, but signalled after dropping it, inside rcu_read_lock():
 * a replaced eventfd is put only after synchronize_rcu(). No eventfd is
 * signalled under irq_lock, so an INTx unmask eventfd that is also the
 * trigger (or any other eventfd chain) cannot deadlock on it.
 */
#include <linux/eventfd.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "vgpu_vfio.h"

#define VGPU_VFIO_MAX_TRIGGERS	VGPU_VGPU_VECTORS

static unsigned int vgpu_vfio_irq_count(unsigned int index)
{
	switch (index) {
	case VFIO_PCI_INTX_IRQ_INDEX:
	case VFIO_PCI_MSI_IRQ_INDEX:
	case VFIO_PCI_REQ_IRQ_INDEX:
		return 1;
	case VFIO_PCI_MSIX_IRQ_INDEX:
		return VGPU_VGPU_VECTORS;
	default:
		return 0;
	}
}

static struct eventfd_ctx **vgpu_vfio_trigger_slot(struct vgpu_vfio_state *s,
						   unsigned int index,
						   unsigned int vector)
{
	switch (index) {
	case VFIO_PCI_INTX_IRQ_INDEX:
		return &s->intx_trigger;
	case VFIO_PCI_MSI_IRQ_INDEX:
		return &s->msi_trigger;
	case VFIO_PCI_MSIX_IRQ_INDEX:
		return &s->msix_trigger[vector];
	default:
		return &s->req_trigger;
	}
}

void vgpu_vfio_irq_init(struct vgpu_vfio_state *s)
{
	spin_lock_init(&s->irq_lock);
	s->irq_type = VGPU_VFIO_IRQ_NONE;
}

/* Put eventfds taken out of the state, once no signaller can hold them. */
static void vgpu_vfio_put_triggers(struct eventfd_ctx **old, unsigned int n)
{
	unsigned int i;
	bool any = false;

	for (i = 0; i < n; i++)
		any |= !!old[i];
	if (!any)
		return;

	synchronize_rcu();
	for (i = 0; i < n; i++)
		if (old[i])
			eventfd_ctx_put(old[i]);
}

/* Which eventfd a raise of @index/@vector signals; irq_lock held. */
static struct eventfd_ctx *vgpu_vfio_pick_locked(struct vgpu_vfio_state *s,
						 int index, unsigned int vector)
{
	if (index != s->irq_type)
		return NULL;

	switch (index) {
	case VFIO_PCI_MSIX_IRQ_INDEX:
		return vector < VGPU_VGPU_VECTORS ? s->msix_trigger[vector] :
						    NULL;
	case VFIO_PCI_MSI_IRQ_INDEX:
		return s->msi_trigger;
	case VFIO_PCI_INTX_IRQ_INDEX:
		if (!s->intx_trigger)
			return NULL;
		/* level-like: one interrupt until the user unmasks */
		if (s->intx_masked) {
			s->intx_pending = true;
			return NULL;
		}
		s->intx_masked = true;
		return s->intx_trigger;
	default:
		return NULL;
	}
}

static void vgpu_vfio_raise(struct vgpu_vfio_state *s, int index,
			    unsigned int vector)
{
	struct eventfd_ctx *ctx;
	unsigned long flags;

	rcu_read_lock();
	spin_lock_irqsave(&s->irq_lock, flags);
	if (index == VGPU_VFIO_IRQ_NONE)
		index = s->irq_type;
	ctx = vgpu_vfio_pick_locked(s, index, vector);
	spin_unlock_irqrestore(&s->irq_lock, flags);
	if (ctx)
		eventfd_signal(ctx);
	rcu_read_unlock();
}

/*
 * callbacks.inject_interrupt, hard-irq context: vGPU vector @vector goes to
 * its MSI-X eventfd, or to the single MSI/INTx eventfd; dropped if the user
 * enabled nothing.
 */
void vgpu_vfio_inject_interrupt(void *frontend_priv, unsigned int vector)
{
	struct vgpu_vfio_state *s = frontend_priv;

	if (s)
		vgpu_vfio_raise(s, VGPU_VFIO_IRQ_NONE, vector);
}

/* Unmask INTx; true if a pending interrupt must be sent now. */
static bool vgpu_vfio_intx_unmask_locked(struct vgpu_vfio_state *s)
{
	if (s->irq_type != VFIO_PCI_INTX_IRQ_INDEX || !s->intx_masked)
		return false;
	if (s->intx_pending) {
		s->intx_pending = false;
		return true;	/* stays masked: the interrupt is re-sent */
	}
	s->intx_masked = false;
	return false;
}

static void vgpu_vfio_intx_send(struct vgpu_vfio_state *s)
{
	struct eventfd_ctx *ctx = NULL;
	unsigned long flags;

	rcu_read_lock();
	spin_lock_irqsave(&s->irq_lock, flags);
	if (s->irq_type == VFIO_PCI_INTX_IRQ_INDEX)
		ctx = s->intx_trigger;
	spin_unlock_irqrestore(&s->irq_lock, flags);
	if (ctx)
		eventfd_signal(ctx);
	rcu_read_unlock();
}

static void vgpu_vfio_intx_unmask(struct vgpu_vfio_state *s)
{
	unsigned long flags;
	bool send;

	spin_lock_irqsave(&s->irq_lock, flags);
	send = vgpu_vfio_intx_unmask_locked(s);
	spin_unlock_irqrestore(&s->irq_lock, flags);
	if (send)
		vgpu_vfio_intx_send(s);
}

/* virqfd handler, atomic (inside the unmask eventfd's wakeup) */
static int vgpu_vfio_intx_unmask_handler(void *opaque, void *unused)
{
	struct vgpu_vfio_state *s = opaque;
	unsigned long flags;
	bool send;

	spin_lock_irqsave(&s->irq_lock, flags);
	send = vgpu_vfio_intx_unmask_locked(s);
	spin_unlock_irqrestore(&s->irq_lock, flags);
	return send;	/* nonzero: the thread below sends it */
}

static void vgpu_vfio_intx_unmask_thread(void *opaque, void *unused)
{
	vgpu_vfio_intx_send(opaque);
}

/* Drop the enabled interrupt type and its eventfds; s->lock held. */
static void vgpu_vfio_irq_disable(struct vgpu_vfio_state *s)
{
	struct eventfd_ctx *old[VGPU_VGPU_VECTORS + 2] = {};
	unsigned long flags;
	unsigned int i;

	vfio_virqfd_disable(&s->intx_unmask);

	spin_lock_irqsave(&s->irq_lock, flags);
	for (i = 0; i < VGPU_VGPU_VECTORS; i++) {
		old[i] = s->msix_trigger[i];
		s->msix_trigger[i] = NULL;
	}
	old[i++] = s->msi_trigger;
	s->msi_trigger = NULL;
	old[i++] = s->intx_trigger;
	s->intx_trigger = NULL;
	s->intx_masked = false;
	s->intx_pending = false;
	s->irq_type = VGPU_VFIO_IRQ_NONE;
	spin_unlock_irqrestore(&s->irq_lock, flags);

	vgpu_vfio_put_triggers(old, ARRAY_SIZE(old));
}

/* close_device: the next user starts with nothing enabled. */
void vgpu_vfio_irq_release_all(struct vgpu_vfio_state *s)
{
	struct eventfd_ctx *req;
	unsigned long flags;

	vgpu_vfio_irq_disable(s);

	spin_lock_irqsave(&s->irq_lock, flags);
	req = s->req_trigger;
	s->req_trigger = NULL;
	spin_unlock_irqrestore(&s->irq_lock, flags);
	vgpu_vfio_put_triggers(&req, 1);
}

/* VFIO_DEVICE_RESET: eventfds stay (as with vfio-pci), INTx unmasks. */
void vgpu_vfio_irq_reset(struct vgpu_vfio_state *s)
{
	unsigned long flags;

	spin_lock_irqsave(&s->irq_lock, flags);
	s->intx_masked = false;
	s->intx_pending = false;
	spin_unlock_irqrestore(&s->irq_lock, flags);
}

/* Install or clear eventfds start..start+count-1; all or nothing. */
static int vgpu_vfio_set_eventfds(struct vgpu_vfio_state *s,
				  unsigned int index, unsigned int start,
				  unsigned int count, const s32 *fds)
{
	struct eventfd_ctx *new[VGPU_VFIO_MAX_TRIGGERS] = {};
	struct eventfd_ctx *old[VGPU_VFIO_MAX_TRIGGERS] = {};
	unsigned long flags;
	unsigned int i;
	int ret;

	if (!count)
		return 0;
	if (count > VGPU_VFIO_MAX_TRIGGERS)
		return -EINVAL;

	for (i = 0; i < count; i++) {
		if (fds[i] < 0)
			continue;	/* -1: clear this vector */
		new[i] = eventfd_ctx_fdget(fds[i]);
		if (IS_ERR(new[i])) {
			ret = PTR_ERR(new[i]);
			new[i] = NULL;
			while (i--)
				if (new[i])
					eventfd_ctx_put(new[i]);
			return ret;
		}
	}

	spin_lock_irqsave(&s->irq_lock, flags);
	for (i = 0; i < count; i++) {
		struct eventfd_ctx **slot =
			vgpu_vfio_trigger_slot(s, index, start + i);

		old[i] = *slot;
		*slot = new[i];
	}
	if (index != VFIO_PCI_REQ_IRQ_INDEX && s->irq_type != (int)index) {
		s->irq_type = index;
		s->intx_masked = false;
		s->intx_pending = false;
	}
	spin_unlock_irqrestore(&s->irq_lock, flags);

	vgpu_vfio_put_triggers(old, count);
	return 0;
}

static void vgpu_vfio_loopback(struct vgpu_vfio_state *s, unsigned int index,
			       unsigned int vector)
{
	struct eventfd_ctx *ctx = NULL;
	unsigned long flags;

	if (index != VFIO_PCI_REQ_IRQ_INDEX) {
		vgpu_vfio_raise(s, index, vector);
		return;
	}
	rcu_read_lock();
	spin_lock_irqsave(&s->irq_lock, flags);
	ctx = s->req_trigger;
	spin_unlock_irqrestore(&s->irq_lock, flags);
	if (ctx)
		eventfd_signal(ctx);
	rcu_read_unlock();
}

/* ACTION_TRIGGER for INTx, MSI, MSI-X and REQ; s->lock held. */
static int vgpu_vfio_set_trigger(struct vgpu_vfio_state *s, unsigned int index,
				 u32 dtype, unsigned int start,
				 unsigned int count, const void *data)
{
	bool is_req = index == VFIO_PCI_REQ_IRQ_INDEX;
	const u8 *bools = data;
	unsigned int i;

	if (dtype == VFIO_IRQ_SET_DATA_NONE && !count) {
		if (is_req)
			return vgpu_vfio_set_eventfds(s, index, 0, 1,
						      (const s32[]){ -1 });
		if (s->irq_type == (int)index)
			vgpu_vfio_irq_disable(s);
		return 0;
	}

	if (dtype == VFIO_IRQ_SET_DATA_EVENTFD) {
		if (!is_req && s->irq_type != VGPU_VFIO_IRQ_NONE &&
		    s->irq_type != (int)index)
			return -EINVAL;	/* disable the other type first */
		return vgpu_vfio_set_eventfds(s, index, start, count, data);
	}

	/* DATA_NONE or DATA_BOOL: fire the vectors, as the device would */
	if (!is_req && s->irq_type != (int)index)
		return -EINVAL;
	for (i = 0; i < count; i++)
		if (dtype == VFIO_IRQ_SET_DATA_NONE || bools[i])
			vgpu_vfio_loopback(s, index, start + i);
	return 0;
}

/* ACTION_MASK / ACTION_UNMASK, INTx only; s->lock held. */
static int vgpu_vfio_set_intx_mask(struct vgpu_vfio_state *s, bool mask,
				   u32 dtype, unsigned int count,
				   const void *data)
{
	unsigned long flags;
	s32 fd;

	if (s->irq_type != VFIO_PCI_INTX_IRQ_INDEX || count != 1)
		return -EINVAL;

	if (dtype == VFIO_IRQ_SET_DATA_EVENTFD) {
		if (mask)
			return -ENOTTY;	/* no mask eventfd, as vfio-pci */
		fd = *(const s32 *)data;
		vfio_virqfd_disable(&s->intx_unmask);
		if (fd < 0)
			return 0;
		return vfio_virqfd_enable(s, vgpu_vfio_intx_unmask_handler,
					  vgpu_vfio_intx_unmask_thread, NULL,
					  &s->intx_unmask, fd);
	}

	if (dtype == VFIO_IRQ_SET_DATA_BOOL && !*(const u8 *)data)
		return 0;

	if (!mask) {
		vgpu_vfio_intx_unmask(s);
		return 0;
	}
	spin_lock_irqsave(&s->irq_lock, flags);
	s->intx_masked = true;
	spin_unlock_irqrestore(&s->irq_lock, flags);
	return 0;
}

static int vgpu_vfio_set_irqs(struct vgpu_vfio_state *s, u32 flags,
			      unsigned int index, unsigned int start,
			      unsigned int count, const void *data)
{
	u32 action = flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
	u32 dtype = flags & VFIO_IRQ_SET_DATA_TYPE_MASK;

	switch (action) {
	case VFIO_IRQ_SET_ACTION_TRIGGER:
		return vgpu_vfio_set_trigger(s, index, dtype, start, count,
					     data);
	case VFIO_IRQ_SET_ACTION_MASK:
	case VFIO_IRQ_SET_ACTION_UNMASK:
		if (index != VFIO_PCI_INTX_IRQ_INDEX)
			return -ENOTTY;	/* no MSI/MSI-X masking, as vfio-pci */
		return vgpu_vfio_set_intx_mask(s,
					       action == VFIO_IRQ_SET_ACTION_MASK,
					       dtype, count, data);
	default:
		return -EINVAL;
	}
}

long vgpu_vfio_ioctl_set_irqs(struct vgpu_vfio_state *s, void __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_irq_set, count);
	struct vfio_irq_set hdr;
	size_t data_size = 0;
	void *data = NULL;
	int ret;

	if (copy_from_user(&hdr, arg, minsz))
		return -EFAULT;

	ret = vfio_set_irqs_validate_and_prepare(&hdr,
						 vgpu_vfio_irq_count(hdr.index),
						 VFIO_PCI_NUM_IRQS, &data_size);
	if (ret)
		return ret;

	if (data_size) {
		data = memdup_user(arg + minsz, data_size);
		if (IS_ERR(data))
			return PTR_ERR(data);
	}

	mutex_lock(&s->lock);
	ret = vgpu_vfio_set_irqs(s, hdr.flags, hdr.index, hdr.start,
				 hdr.count, data);
	mutex_unlock(&s->lock);

	kfree(data);
	return ret;
}

long vgpu_vfio_ioctl_irq_info(struct vgpu_vfio_state *s, void __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_irq_info, count);
	struct vfio_irq_info info;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz || info.index >= VFIO_PCI_NUM_IRQS)
		return -EINVAL;

	info.count = vgpu_vfio_irq_count(info.index);
	info.flags = info.count ? VFIO_IRQ_INFO_EVENTFD : 0;
	if (info.index == VFIO_PCI_INTX_IRQ_INDEX)
		info.flags |= VFIO_IRQ_INFO_MASKABLE |
			      VFIO_IRQ_INFO_AUTOMASKED;
	else if (info.index == VFIO_PCI_MSI_IRQ_INDEX)
		info.flags |= VFIO_IRQ_INFO_NORESIZE;
	/* MSI-X vectors can be added and removed one by one */

	return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
}

/*
 * vfio_device_ops.request: removal is waiting for the user to close the
 * device. Say so once, and ask the user through the REQ eventfd (QEMU
 * hot-unplugs the device from its guest when it gets it).
 */
void vgpu_vfio_request(struct vfio_device *vdev, unsigned int count)
{
	struct vgpu_vfio_state *s = vgpu_vfio_state_of(vdev);
	bool asked;

	rcu_read_lock();
	asked = !!READ_ONCE(s->req_trigger);
	rcu_read_unlock();

	if (!count)
		dev_info(vdev->dev, "vGPU %pUl busy: %s\n", &s->mdev->uuid,
			 asked ? "asking its user to release it" :
				 "waiting for its user to close it");
	/* a migration in or out cannot finish: its stream fails now */
	vgpu_mig_request(&s->mig);
	if (asked)
		vgpu_vfio_loopback(s, VFIO_PCI_REQ_IRQ_INDEX, 0);
}
