// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The display head of a vGPU (issue 14): its scanout as the window shows
 * it, the EDID and link the host gives it (EDID_SEL/EDID_DATA, the
 * partition's DISP_LINK), the RM's own default EDID, and the largest mode
 * a vGPU type is meant for.
 */
#include <linux/bitfield.h>
#include <linux/io.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/kernel.h>
#include <linux/string.h>
#include <linux/unaligned.h>

#include "vgpu_rm.h"

#define VGPU_RM_XRGB8888	0x34325258	/* DRM_FORMAT_XRGB8888 */
#define VGPU_RM_EDID_BLOCK	128
/* a flip may land between the reads of one plane: read it again */
#define VGPU_RM_PLANE_TRIES	4

/* One video mode's timing, as an EDID detailed timing descriptor has it. */
struct vgpu_rm_timing {
	u32 clock_khz;
	u16 hactive, hfront, hsync, hback;
	u16 vactive, vfront, vsync, vback;
	bool hsync_pos, vsync_pos;
};

/* VESA DMT 1024x768@60: what a guest gets until the VMM says otherwise. */
static const struct vgpu_rm_timing vgpu_rm_default_timing = {
	.clock_khz = 65000,
	.hactive = 1024, .hfront = 24, .hsync = 136, .hback = 160,
	.vactive = 768, .vfront = 3, .vsync = 6, .vback = 29,
};

/* Physical size the EDID claims: 96 dpi at 1024x768 is about 270x203 mm. */
#define VGPU_RM_EDID_WIDTH_MM	270
#define VGPU_RM_EDID_HEIGHT_MM	203

static void vgpu_rm_edid_dtd(u8 *d, const struct vgpu_rm_timing *t,
			     u16 width_mm, u16 height_mm)
{
	u16 hblank = t->hfront + t->hsync + t->hback;
	u16 vblank = t->vfront + t->vsync + t->vback;

	put_unaligned_le16(t->clock_khz / 10, d);
	d[2] = t->hactive & 0xff;
	d[3] = hblank & 0xff;
	d[4] = (t->hactive >> 8) << 4 | (hblank >> 8);
	d[5] = t->vactive & 0xff;
	d[6] = vblank & 0xff;
	d[7] = (t->vactive >> 8) << 4 | (vblank >> 8);
	d[8] = t->hfront & 0xff;
	d[9] = t->hsync & 0xff;
	d[10] = (t->vfront & 0xf) << 4 | (t->vsync & 0xf);
	d[11] = (t->hfront >> 8) << 6 | (t->hsync >> 8) << 4 |
		(t->vfront >> 4) << 2 | (t->vsync >> 4);
	d[12] = width_mm & 0xff;
	d[13] = height_mm & 0xff;
	d[14] = (width_mm >> 8) << 4 | (height_mm >> 8);
	d[15] = 0;	/* no borders */
	d[16] = 0;
	/* digital separate sync, and the polarities */
	d[17] = 0x18 | (t->vsync_pos ? 0x04 : 0) | (t->hsync_pos ? 0x02 : 0);
}

/* A display descriptor (not a timing): tag, then 13 bytes of payload. */
static void vgpu_rm_edid_descriptor(u8 *d, u8 tag)
{
	memset(d, 0, 18);
	d[3] = tag;
}

static void vgpu_rm_edid_text(u8 *d, u8 tag, const char *text)
{
	size_t n = min_t(size_t, strlen(text), 13);

	vgpu_rm_edid_descriptor(d, tag);
	memset(d + 5, ' ', 13);
	memcpy(d + 5, text, n);
	if (n < 13)
		d[5 + n] = '\n';
}

/*
 * An EDID 1.4 base block (VESA E-EDID A2): header, vendor "VGP" and the
 * vGPU's product code, a digital 8 bpc sRGB display whose preferred mode
 * is the first detailed timing (1024x768@60), 640x480 and 800x600 among
 * the established timings, range limits wide enough for all of them and a
 * name; no extension, and the checksum last.
 */
static void vgpu_rm_edid_generate(u8 *e, unsigned int serial)
{
	/* sRGB primaries and white point, 10-bit binary fractions */
	static const u16 xy[8] = { 655, 338, 307, 614, 154, 61, 320, 337 };
	u8 sum = 0;
	int i;

	memset(e, 0, VGPU_RM_EDID_BLOCK);
	memset(e + 1, 0xff, 6);
	/* three 5-bit letters, 'A' = 1, big-endian */
	put_unaligned_be16(('V' - '@') << 10 | ('G' - '@') << 5 | ('P' - '@'),
			   e + 8);
	put_unaligned_le16(VGPU_PCI_VGPU_DEVICE_ID, e + 10);
	put_unaligned_le32(serial, e + 12);
	e[16] = 0;		/* no week */
	e[17] = 2024 - 1990;	/* model year */
	e[18] = 1;		/* EDID 1.4 */
	e[19] = 4;
	e[20] = 0x80 | 0x20;	/* digital, 8 bits per colour, no interface */
	e[21] = DIV_ROUND_CLOSEST(VGPU_RM_EDID_WIDTH_MM, 10);
	e[22] = DIV_ROUND_CLOSEST(VGPU_RM_EDID_HEIGHT_MM, 10);
	e[23] = 120;		/* gamma 2.2: (2.2 - 1) * 100 */
	/* RGB 4:4:4, sRGB default colour space, preferred timing is native */
	e[24] = 0x04 | 0x02;
	e[25] = (xy[0] & 3) << 6 | (xy[1] & 3) << 4 | (xy[2] & 3) << 2 |
		(xy[3] & 3);
	e[26] = (xy[4] & 3) << 6 | (xy[5] & 3) << 4 | (xy[6] & 3) << 2 |
		(xy[7] & 3);
	for (i = 0; i < 8; i++)
		e[27 + i] = xy[i] >> 2;
	e[35] = 0x20 | 0x01;	/* 640x480@60, 800x600@60 */
	e[36] = 0x08;		/* 1024x768@60 */
	e[37] = 0;
	memset(e + 38, 0x01, 16);	/* no standard timings */

	vgpu_rm_edid_dtd(e + 54, &vgpu_rm_default_timing,
			 VGPU_RM_EDID_WIDTH_MM, VGPU_RM_EDID_HEIGHT_MM);

	/* range limits: 50-75 Hz, 30-83 kHz, 170 MHz, no formula */
	vgpu_rm_edid_descriptor(e + 72, 0xfd);
	e[72 + 5] = 50;
	e[72 + 6] = 75;
	e[72 + 7] = 30;
	e[72 + 8] = 83;
	e[72 + 9] = 17;
	e[72 + 10] = 0x01;
	e[72 + 11] = '\n';
	memset(e + 72 + 12, ' ', 6);

	vgpu_rm_edid_text(e + 90, 0xfc, "vGPU display");
	vgpu_rm_edid_descriptor(e + 108, 0x10);	/* dummy */

	e[126] = 0;		/* no extension blocks */
	for (i = 0; i < VGPU_RM_EDID_BLOCK - 1; i++)
		sum += e[i];
	e[127] = (u8)(0x100 - sum);
}

/*
 * The EDID into the partition's DISP_EDID through the device's one EDID
 * cursor, then the link, whose write tells the guest (HOTPLUG).
 */
int vgpu_rm_display_set_edid(struct vgpu_rm_vgpu *vgpu, const u8 *edid,
			     size_t len, bool connected)
{
	struct vgpu_rm_gpu *gpu = vgpu->gpu;
	u8 buf[VGPU_EDID_MAX_BYTES] = { 0 };
	int i;

	if (len > VGPU_EDID_MAX_BYTES)
		return -EINVAL;

	mutex_lock(&gpu->edid_lock);
	if (edid) {
		memcpy(buf, edid, len);
		writel(vgpu->partition, gpu->regs + VGPU_G_EDID_SEL);
		for (i = 0; i < VGPU_EDID_MAX_BYTES; i += 4)
			writel(get_unaligned_le32(buf + i),
			       gpu->regs + VGPU_G_EDID_DATA);
	}
	writel(connected ? VGPU_PT_DISP_LINK_CONNECTED : 0,
	       vgpu_rm_pt_reg(gpu, vgpu->partition, VGPU_PT_DISP_LINK));
	mutex_unlock(&gpu->edid_lock);
	return 0;
}

/* What every vGPU starts with: the RM's EDID, connected. */
void vgpu_rm_display_default(struct vgpu_rm_vgpu *vgpu)
{
	u8 edid[VGPU_RM_EDID_BLOCK];

	vgpu_rm_edid_generate(edid, vgpu->partition);
	vgpu_rm_display_set_edid(vgpu, edid, sizeof(edid), true);
}

/*
 * The head's registers are read one by one, so a flip at a vblank can
 * fall between them: the vblank count before and after tells.
 */
int vgpu_rm_display_plane(struct vgpu_rm_vgpu *vgpu,
			  struct vgpu_display_plane *plane)
{
	struct vgpu_rm_gpu *gpu = vgpu->gpu;
	unsigned int p = vgpu->partition;
	u64 vblank, base, extent;
	u32 status, mode, stride, format;
	int tries;

	memset(plane, 0, sizeof(*plane));
	for (tries = 0; tries < VGPU_RM_PLANE_TRIES; tries++) {
		vblank = readq(vgpu_rm_win_reg(gpu, p, VGPU_W_DISP_VBLANK_COUNT));
		status = readl(vgpu_rm_win_reg(gpu, p, VGPU_W_DISP_STATUS));
		base = readq(vgpu_rm_win_reg(gpu, p, VGPU_W_DISP_ACTIVE_BASE));
		mode = readl(vgpu_rm_win_reg(gpu, p, VGPU_W_DISP_ACTIVE_MODE));
		stride = readl(vgpu_rm_win_reg(gpu, p,
					       VGPU_W_DISP_ACTIVE_STRIDE));
		format = readl(vgpu_rm_win_reg(gpu, p,
					       VGPU_W_DISP_ACTIVE_FORMAT));
		if (vblank == readq(vgpu_rm_win_reg(gpu, p,
						    VGPU_W_DISP_VBLANK_COUNT)))
			break;
	}
	if (!(status & VGPU_W_DISP_STATUS_ACTIVE) || format != VGPU_RM_XRGB8888)
		return 0;

	plane->width = FIELD_GET(VGPU_W_DISP_ACTIVE_MODE_WIDTH, mode);
	plane->height = FIELD_GET(VGPU_W_DISP_ACTIVE_MODE_HEIGHT, mode);
	plane->stride = stride;
	plane->base = base;
	/* the device checked it at COMMIT; a torn read is shown as off */
	extent = (u64)stride * (plane->height - 1) + (u64)plane->width * 4;
	if (!plane->width || !plane->height || stride < plane->width * 4 ||
	    base > vgpu->vram_size || extent > vgpu->vram_size - base) {
		memset(plane, 0, sizeof(*plane));
		return 0;
	}
	plane->drm_format = format;
	return 0;
}

/* Common modes; the largest (by area) that fits wins. */
static const struct {
	u16 width, height;
} vgpu_rm_modes[] = {
	{ 640, 480 }, { 800, 600 }, { 1024, 768 }, { 1280, 720 },
	{ 1280, 800 }, { 1280, 1024 }, { 1440, 900 }, { 1600, 900 },
	{ 1600, 1200 }, { 1680, 1050 }, { 1920, 1080 }, { 1920, 1200 },
	{ 2560, 1440 }, { 2560, 1600 }, { 3840, 2160 }, { 4096, 2160 },
};

void vgpu_rm_display_max_mode(struct vgpu_rm_vgpu *vgpu, u32 *width,
			      u32 *height)
{
	u32 max = readl(vgpu_rm_win_reg(vgpu->gpu, vgpu->partition,
					VGPU_W_DISP_MAX_MODE));
	u32 max_w = FIELD_GET(VGPU_W_DISP_MAX_MODE_WIDTH, max);
	u32 max_h = FIELD_GET(VGPU_W_DISP_MAX_MODE_HEIGHT, max);
	u64 best = 0;
	int i;

	*width = 0;
	*height = 0;
	for (i = 0; i < ARRAY_SIZE(vgpu_rm_modes); i++) {
		u64 w = vgpu_rm_modes[i].width, h = vgpu_rm_modes[i].height;

		/* double buffered: two framebuffers in half the VRAM */
		if (w > max_w || h > max_h || w * h <= best ||
		    2 * w * h * 4 > vgpu->vram_size / 2)
			continue;
		best = w * h;
		*width = w;
		*height = h;
	}
}
