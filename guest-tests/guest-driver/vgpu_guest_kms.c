// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vgpu_guest_kms.c - the vGPU's display head under KMS: one CRTC with one
 * XRGB8888 primary plane scanning out a buffer in the partition's VRAM, one
 * virtual encoder and connector whose modes come from the EDID the host put
 * in DISP_EDID (SPEC.md, display head).
 *
 * The head has pending and active registers: KMS writes the pending ones
 * and DISP_COMMIT; a commit to an active head is a page flip, latched at the
 * next vblank, and FLIP_DONE says when it took effect. That interrupt
 * completes the commit's event, so the atomic helpers wait for flip_done,
 * not for a vblank.
 */
#include <linux/bitfield.h>
#include <linux/pci.h>
#include <linux/unaligned.h>

#include <drm/drm_atomic.h>
#include <drm/drm_atomic_helper.h>
#include <drm/drm_edid.h>
#include <drm/drm_fourcc.h>
#include <drm/drm_framebuffer.h>
#include <drm/drm_gem_framebuffer_helper.h>
#include <drm/drm_gem_vram_helper.h>
#include <drm/drm_managed.h>
#include <drm/drm_modeset_helper_vtables.h>
#include <drm/drm_probe_helper.h>
#include <drm/drm_simple_kms_helper.h>
#include <drm/drm_vblank.h>

#include "vgpu_guest.h"

/* What a mode has when the host gave no EDID. */
#define VGPU_GUEST_NOEDID_WIDTH		1024
#define VGPU_GUEST_NOEDID_HEIGHT	768

static const u32 vgpu_guest_formats[] = {
	DRM_FORMAT_XRGB8888,
};

/* Write the pending registers and COMMIT them. Called with vg->lock. */
static void vgpu_guest_disp_commit(struct vgpu_guest *vg)
{
	const struct vgpu_guest_disp *d = &vg->disp;

	if (d->ctrl & VGPU_W_DISP_CTRL_ENABLE) {
		vgpu_wr32(vg, VGPU_W_DISP_FORMAT, DRM_FORMAT_XRGB8888);
		vgpu_wr32(vg, VGPU_W_DISP_MODE, d->mode);
		vgpu_wr32(vg, VGPU_W_DISP_STRIDE, d->stride);
		vgpu_wr64(vg, VGPU_W_DISP_BASE, d->base);
	}
	vgpu_wr32(vg, VGPU_W_DISP_CTRL, d->ctrl);
	vgpu_wr32(vg, VGPU_W_DISP_COMMIT, 1);
}

/*
 * After a partition reset (which turns the head off): show what KMS last
 * set. The head is off, so the commit takes effect at once and its
 * FLIP_DONE completes a flip the reset cut short. Called with vg->lock.
 */
void vgpu_guest_disp_restore(struct vgpu_guest *vg)
{
	if (vg->disp.ctrl & VGPU_W_DISP_CTRL_ENABLE)
		vgpu_guest_disp_commit(vg);
}

/* The engine vector's display causes, in its interrupt handler. */
void vgpu_guest_disp_irq(struct vgpu_guest *vg, u32 status)
{
	struct drm_device *drm = &vg->drm;

	if (status & VGPU_W_INTR_STATUS_VBLANK)
		drm_crtc_handle_vblank(&vg->crtc);
	if (status & VGPU_W_INTR_STATUS_FLIP_DONE) {
		spin_lock(&drm->event_lock);
		if (vg->flip_event)
			drm_crtc_send_vblank_event(&vg->crtc, vg->flip_event);
		vg->flip_event = NULL;
		spin_unlock(&drm->event_lock);
	}
	if ((status & VGPU_W_INTR_STATUS_HOTPLUG) && !READ_ONCE(vg->gone))
		schedule_work(&vg->hotplug_work);
}

static void vgpu_guest_hotplug_work(struct work_struct *work)
{
	struct vgpu_guest *vg = container_of(work, struct vgpu_guest, hotplug_work);

	/* The link or the EDID changed: user space and fbdev probe again. */
	drm_kms_helper_hotplug_event(&vg->drm);
}

/* ---- dumb buffers -------------------------------------------------------- */

/* Clear a new dumb buffer with the engine (FILL_RECT), in VRAM. */
static void vgpu_guest_clear_bo(struct vgpu_guest *vg, struct drm_gem_vram_object *gbo,
				u32 pitch, u32 height)
{
	struct drm_vgpu_cmd fill = {
		.opcode = VGPU_OP_FILL_RECT,
		.width = cpu_to_le32(pitch),
		.height = cpu_to_le32(height),
		.dst_pitch = cpu_to_le32(pitch),
	};
	s64 offset;
	int ret;

	/* Pinned only while the engine writes it; TTM keeps the contents. */
	ret = drm_gem_vram_pin(gbo, DRM_GEM_VRAM_PL_FLAG_VRAM);
	if (ret)
		goto out;
	offset = drm_gem_vram_offset(gbo);
	if (offset < 0) {
		ret = offset;
	} else {
		fill.dst = cpu_to_le64(offset);
		ret = vgpu_guest_run(vg, 0, &fill, 1);
	}
	drm_gem_vram_unpin(gbo);
out:
	/* Not fatal: TTM hands out zeroed memory, the engine only makes sure. */
	if (ret)
		drm_dbg_driver(&vg->drm, "dumb buffer not cleared by the engine: %d\n", ret);
}

int vgpu_guest_dumb_create(struct drm_file *file, struct drm_device *drm,
			   struct drm_mode_create_dumb *args)
{
	struct drm_gem_object *obj;
	int ret;

	ret = drm_gem_vram_driver_dumb_create(file, drm, args);
	if (ret)
		return ret;
	if (args->pitch % 4)
		return 0;	/* FILL_RECT rows are whole words */
	obj = drm_gem_object_lookup(file, args->handle);
	if (!obj)
		return 0;
	vgpu_guest_clear_bo(to_vgpu_guest(drm), drm_gem_vram_of_gem(obj),
			    args->pitch, args->height);
	drm_gem_object_put(obj);
	return 0;
}

/* ---- plane ----------------------------------------------------------------- */

/* The scanout start's offset inside the framebuffer's buffer. */
static u64 vgpu_guest_fb_offset(const struct drm_plane_state *state)
{
	const struct drm_framebuffer *fb = state->fb;

	return fb->offsets[0] + (u64)(state->src.y1 >> 16) * fb->pitches[0] +
	       (state->src.x1 >> 16) * fb->format->cpp[0];
}

static int vgpu_guest_plane_atomic_check(struct drm_plane *plane,
					 struct drm_atomic_state *state)
{
	struct drm_plane_state *new = drm_atomic_get_new_plane_state(state, plane);
	struct drm_crtc_state *crtc_state = NULL;
	int ret;

	if (new->crtc)
		crtc_state = drm_atomic_get_new_crtc_state(state, new->crtc);
	ret = drm_atomic_helper_check_plane_state(new, crtc_state, DRM_PLANE_NO_SCALING,
						  DRM_PLANE_NO_SCALING, false, true);
	if (ret || !new->visible)
		return ret;
	/* DISP_BASE is 4 KiB aligned (buffers in VRAM are), DISP_STRIDE whole words. */
	if (!IS_ALIGNED(vgpu_guest_fb_offset(new), SZ_4K) || new->fb->pitches[0] % 4) {
		drm_dbg_atomic(plane->dev, "scanout start or pitch not aligned\n");
		return -EINVAL;
	}
	return 0;
}

/* The pending mode, stride and base; the CRTC's flush commits them. */
static void vgpu_guest_plane_atomic_update(struct drm_plane *plane,
					   struct drm_atomic_state *state)
{
	struct vgpu_guest *vg = to_vgpu_guest(plane->dev);
	struct drm_plane_state *new = drm_atomic_get_new_plane_state(state, plane);
	struct drm_gem_vram_object *gbo;
	s64 base;

	if (!new->visible || !new->fb)
		return;
	gbo = drm_gem_vram_of_gem(new->fb->obj[0]);
	base = drm_gem_vram_offset(gbo);
	if (WARN_ON_ONCE(base < 0))
		return;	/* prepare_fb pins to VRAM: cannot happen */
	mutex_lock(&vg->lock);
	vg->disp.mode = FIELD_PREP(VGPU_W_DISP_MODE_WIDTH, drm_rect_width(&new->dst)) |
			FIELD_PREP(VGPU_W_DISP_MODE_HEIGHT, drm_rect_height(&new->dst));
	vg->disp.stride = new->fb->pitches[0];
	vg->disp.base = base + vgpu_guest_fb_offset(new);
	mutex_unlock(&vg->lock);
}

static const struct drm_plane_helper_funcs vgpu_guest_plane_helper_funcs = {
	DRM_GEM_VRAM_PLANE_HELPER_FUNCS,
	.atomic_check = vgpu_guest_plane_atomic_check,
	.atomic_update = vgpu_guest_plane_atomic_update,
};

static const struct drm_plane_funcs vgpu_guest_plane_funcs = {
	.update_plane = drm_atomic_helper_update_plane,
	.disable_plane = drm_atomic_helper_disable_plane,
	.destroy = drm_plane_cleanup,
	.reset = drm_atomic_helper_plane_reset,
	.atomic_duplicate_state = drm_atomic_helper_plane_duplicate_state,
	.atomic_destroy_state = drm_atomic_helper_plane_destroy_state,
};

/* ---- CRTC ------------------------------------------------------------------ */

static enum drm_mode_status vgpu_guest_crtc_mode_valid(struct drm_crtc *crtc,
						       const struct drm_display_mode *mode)
{
	const struct drm_mode_config *mc = &crtc->dev->mode_config;

	if (mode->hdisplay > mc->max_width || mode->vdisplay > mc->max_height)
		return MODE_BAD;
	return MODE_OK;
}

static int vgpu_guest_crtc_atomic_check(struct drm_crtc *crtc, struct drm_atomic_state *state)
{
	struct drm_crtc_state *new = drm_atomic_get_new_crtc_state(state, crtc);

	/* The head scans out the primary plane, or nothing. */
	if (new->active && !(new->plane_mask & drm_plane_mask(crtc->primary)))
		return -EINVAL;
	return 0;
}

static void vgpu_guest_crtc_atomic_enable(struct drm_crtc *crtc, struct drm_atomic_state *state)
{
	drm_crtc_vblank_on(crtc);
}

static void vgpu_guest_crtc_atomic_disable(struct drm_crtc *crtc, struct drm_atomic_state *state)
{
	drm_crtc_vblank_off(crtc);
}

/*
 * Commit the head's state: enabled with what the plane set, or off. The
 * commit's event goes out on FLIP_DONE: at once when the head was off or
 * goes off, at the next vblank for a flip.
 */
static void vgpu_guest_crtc_atomic_flush(struct drm_crtc *crtc, struct drm_atomic_state *state)
{
	struct vgpu_guest *vg = to_vgpu_guest(crtc->dev);
	struct drm_crtc_state *new = drm_atomic_get_new_crtc_state(state, crtc);
	struct drm_pending_vblank_event *event = new->event;
	struct drm_device *drm = crtc->dev;

	new->event = NULL;
	mutex_lock(&vg->lock);
	vg->disp.ctrl = new->active ? VGPU_W_DISP_CTRL_ENABLE : 0;
	spin_lock_irq(&drm->event_lock);
	/* One FLIP_DONE per commit, and commits wait for the previous one. */
	if (vg->flip_event)
		drm_crtc_send_vblank_event(crtc, vg->flip_event);
	vg->flip_event = event;
	if (vg->gone && event) {
		drm_crtc_send_vblank_event(crtc, event);
		vg->flip_event = NULL;
	}
	spin_unlock_irq(&drm->event_lock);
	if (!vg->gone)
		vgpu_guest_disp_commit(vg);
	mutex_unlock(&vg->lock);
}

static int vgpu_guest_enable_vblank(struct drm_crtc *crtc)
{
	vgpu_guest_set_intr(to_vgpu_guest(crtc->dev), VGPU_W_INTR_MASK_VBLANK, true);
	return 0;
}

static void vgpu_guest_disable_vblank(struct drm_crtc *crtc)
{
	vgpu_guest_set_intr(to_vgpu_guest(crtc->dev), VGPU_W_INTR_MASK_VBLANK, false);
}

static const struct drm_crtc_helper_funcs vgpu_guest_crtc_helper_funcs = {
	.mode_valid = vgpu_guest_crtc_mode_valid,
	.atomic_check = vgpu_guest_crtc_atomic_check,
	.atomic_flush = vgpu_guest_crtc_atomic_flush,
	.atomic_enable = vgpu_guest_crtc_atomic_enable,
	.atomic_disable = vgpu_guest_crtc_atomic_disable,
};

static const struct drm_crtc_funcs vgpu_guest_crtc_funcs = {
	.set_config = drm_atomic_helper_set_config,
	.page_flip = drm_atomic_helper_page_flip,
	.destroy = drm_crtc_cleanup,
	.reset = drm_atomic_helper_crtc_reset,
	.atomic_duplicate_state = drm_atomic_helper_crtc_duplicate_state,
	.atomic_destroy_state = drm_atomic_helper_crtc_destroy_state,
	.enable_vblank = vgpu_guest_enable_vblank,
	.disable_vblank = vgpu_guest_disable_vblank,
};

/* ---- connector --------------------------------------------------------------- */

static enum drm_connector_status
vgpu_guest_connector_detect(struct drm_connector *connector, bool force)
{
	struct vgpu_guest *vg = to_vgpu_guest(connector->dev);

	if (READ_ONCE(vg->gone))
		return connector_status_disconnected;
	return vgpu_rd32(vg, VGPU_W_DISP_STATUS) & VGPU_W_DISP_STATUS_CONNECTED ?
	       connector_status_connected : connector_status_disconnected;
}

/* DISP_EDID as bytes; NULL when it holds no EDID (the host gave none). */
static const struct drm_edid *vgpu_guest_read_edid(struct vgpu_guest *vg)
{
	u8 edid[VGPU_GUEST_EDID_BYTES];
	const struct drm_edid *drm_edid;
	unsigned int i;

	for (i = 0; i < VGPU_GUEST_EDID_BYTES / 4; i++)
		put_unaligned_le32(vgpu_rd32(vg, VGPU_W_DISP_EDID(i)), &edid[4 * i]);
	if (drm_edid_header_is_valid(edid) != 8)
		return NULL;
	/* The base block and at most one extension fit. */
	drm_edid = drm_edid_alloc(edid, EDID_LENGTH * (1 + min_t(u8, edid[0x7e], 1)));
	if (drm_edid && !drm_edid_valid(drm_edid)) {
		drm_edid_free(drm_edid);
		return NULL;
	}
	return drm_edid;
}

static int vgpu_guest_connector_get_modes(struct drm_connector *connector)
{
	struct vgpu_guest *vg = to_vgpu_guest(connector->dev);
	const struct drm_mode_config *mc = &connector->dev->mode_config;
	const struct drm_edid *drm_edid = NULL;
	int count;

	if (!READ_ONCE(vg->gone))
		drm_edid = vgpu_guest_read_edid(vg);
	drm_edid_connector_update(connector, drm_edid);
	if (drm_edid) {
		count = drm_edid_connector_add_modes(connector);
		drm_edid_free(drm_edid);
		return count;
	}
	count = drm_add_modes_noedid(connector, mc->max_width, mc->max_height);
	drm_set_preferred_mode(connector, VGPU_GUEST_NOEDID_WIDTH, VGPU_GUEST_NOEDID_HEIGHT);
	return count;
}

static const struct drm_connector_helper_funcs vgpu_guest_connector_helper_funcs = {
	.get_modes = vgpu_guest_connector_get_modes,
};

static const struct drm_connector_funcs vgpu_guest_connector_funcs = {
	.detect = vgpu_guest_connector_detect,
	.fill_modes = drm_helper_probe_single_connector_modes,
	.destroy = drm_connector_cleanup,
	.reset = drm_atomic_helper_connector_reset,
	.atomic_duplicate_state = drm_atomic_helper_connector_duplicate_state,
	.atomic_destroy_state = drm_atomic_helper_connector_destroy_state,
};

/* ---- mode config ------------------------------------------------------------ */

/* drm_atomic_helper_commit_tail, waiting for FLIP_DONE rather than a vblank. */
static void vgpu_guest_commit_tail(struct drm_atomic_state *state)
{
	struct drm_device *drm = state->dev;

	drm_atomic_helper_commit_modeset_disables(drm, state);
	drm_atomic_helper_commit_planes(drm, state, 0);
	drm_atomic_helper_commit_modeset_enables(drm, state);
	drm_atomic_helper_commit_hw_done(state);
	drm_atomic_helper_wait_for_flip_done(drm, state);
	drm_atomic_helper_cleanup_planes(drm, state);
}

static const struct drm_mode_config_helper_funcs vgpu_guest_mode_config_helpers = {
	.atomic_commit_tail = vgpu_guest_commit_tail,
};

static const struct drm_mode_config_funcs vgpu_guest_mode_config_funcs = {
	.fb_create = drm_gem_fb_create,
	.mode_valid = drm_vram_helper_mode_valid,
	.atomic_check = drm_atomic_helper_check,
	.atomic_commit = drm_atomic_helper_commit,
};

int vgpu_guest_kms_init(struct vgpu_guest *vg)
{
	struct drm_device *drm = &vg->drm;
	struct drm_mode_config *mc = &drm->mode_config;
	u32 max = vgpu_rd32(vg, VGPU_W_DISP_MAX_MODE);
	int ret;

	INIT_WORK(&vg->hotplug_work, vgpu_guest_hotplug_work);
	ret = drmm_mode_config_init(drm);
	if (ret)
		return ret;
	mc->min_width = 1;
	mc->min_height = 1;
	mc->max_width = FIELD_GET(VGPU_W_DISP_MAX_MODE_WIDTH, max);
	mc->max_height = FIELD_GET(VGPU_W_DISP_MAX_MODE_HEIGHT, max);
	if (!mc->max_width || !mc->max_height)
		return dev_err_probe(drm->dev, -ENODEV, "bad DISP_MAX_MODE %#x\n", max);
	mc->preferred_depth = 24;
	mc->funcs = &vgpu_guest_mode_config_funcs;
	mc->helper_private = &vgpu_guest_mode_config_helpers;

	ret = drm_universal_plane_init(drm, &vg->plane, 0, &vgpu_guest_plane_funcs,
				       vgpu_guest_formats, ARRAY_SIZE(vgpu_guest_formats),
				       NULL, DRM_PLANE_TYPE_PRIMARY, NULL);
	if (ret)
		return ret;
	drm_plane_helper_add(&vg->plane, &vgpu_guest_plane_helper_funcs);

	ret = drm_crtc_init_with_planes(drm, &vg->crtc, &vg->plane, NULL,
					&vgpu_guest_crtc_funcs, NULL);
	if (ret)
		return ret;
	drm_crtc_helper_add(&vg->crtc, &vgpu_guest_crtc_helper_funcs);

	ret = drm_simple_encoder_init(drm, &vg->encoder, DRM_MODE_ENCODER_VIRTUAL);
	if (ret)
		return ret;
	vg->encoder.possible_crtcs = drm_crtc_mask(&vg->crtc);

	ret = drm_connector_init(drm, &vg->connector, &vgpu_guest_connector_funcs,
				 DRM_MODE_CONNECTOR_VIRTUAL);
	if (ret)
		return ret;
	drm_connector_helper_add(&vg->connector, &vgpu_guest_connector_helper_funcs);
	/*
	 * A virtual connector has no EDID property unless the driver attaches
	 * it; without it drm_edid_connector_update() cannot store the EDID and
	 * the connector gets no modes from it.
	 */
	drm_connector_attach_edid_property(&vg->connector);
	vg->connector.polled = DRM_CONNECTOR_POLL_HPD;
	ret = drm_connector_attach_encoder(&vg->connector, &vg->encoder);
	if (ret)
		return ret;

	ret = drm_vblank_init(drm, 1);
	if (ret)
		return ret;
	drm_mode_config_reset(drm);
	return 0;
}
