// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vgpu_vfio_config.c - the emulated PCI configuration space of a vGPU: a
 * 256-byte image plus a per-byte writable mask, so BAR sizing, the command
 * register and the MSI/MSI-X capabilities all follow from one merge rule.
 */
#include <linux/bits.h>
#include <linux/pci_regs.h>
#include <linux/string.h>
#include <linux/unaligned.h>

#include "vgpu_regs.h"
#include "vgpu_vfio.h"

/* Capability layout: MSI (64-bit, one vector) then MSI-X. */
#define VGPU_VFIO_CAP_MSI	0x40
#define VGPU_VFIO_CAP_MSIX	0x50

#define VGPU_VFIO_COMMAND_WMASK	(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | \
				 PCI_COMMAND_PARITY | PCI_COMMAND_SERR | \
				 PCI_COMMAND_INTX_DISABLE)

static void vgpu_vfio_cfg_set16(struct vgpu_vfio_state *s, unsigned int off,
				u16 val, u16 wmask)
{
	put_unaligned_le16(val, &s->config[off]);
	put_unaligned_le16(wmask, &s->config_wmask[off]);
}

static void vgpu_vfio_cfg_set32(struct vgpu_vfio_state *s, unsigned int off,
				u32 val, u32 wmask)
{
	put_unaligned_le32(val, &s->config[off]);
	put_unaligned_le32(wmask, &s->config_wmask[off]);
}

/*
 * A memory BAR: the low flag bits are read-only and the address bits below
 * the (power of two) size are read-only zero, so writing all ones reads back
 * the size mask with no special case, for 32- and 64-bit BARs alike.
 */
static unsigned int vgpu_vfio_config_bar(struct vgpu_vfio_state *s,
					 unsigned int bar)
{
	const struct vgpu_vfio_bar *b = &s->bars[bar];
	unsigned int off = PCI_BASE_ADDRESS_0 + bar * 4;
	u64 addr_mask;
	u32 flags = PCI_BASE_ADDRESS_SPACE_MEMORY;

	if (!b->region_size)
		return 1;

	addr_mask = ~(b->region_size - 1);
	if (b->info.flags & VGPU_BAR_F_PREFETCH)
		flags |= PCI_BASE_ADDRESS_MEM_PREFETCH;

	if ((b->info.flags & VGPU_BAR_F_64BIT) &&
	    bar + 1 < VGPU_VFIO_NUM_BARS) {
		flags |= PCI_BASE_ADDRESS_MEM_TYPE_64;
		vgpu_vfio_cfg_set32(s, off, flags,
				    lower_32_bits(addr_mask) &
				    PCI_BASE_ADDRESS_MEM_MASK);
		vgpu_vfio_cfg_set32(s, off + 4, 0, upper_32_bits(addr_mask));
		return 2;
	}

	vgpu_vfio_cfg_set32(s, off, flags,
			    lower_32_bits(addr_mask) & PCI_BASE_ADDRESS_MEM_MASK);
	return 1;
}

/* Build the power-on image; called at creation and at every open. */
void vgpu_vfio_config_init(struct vgpu_vfio_state *s)
{
	unsigned int bar, off;

	memset(s->config, 0, sizeof(s->config));
	memset(s->config_wmask, 0, sizeof(s->config_wmask));

	vgpu_vfio_cfg_set16(s, PCI_VENDOR_ID, VGPU_PCI_VENDOR_ID, 0);
	vgpu_vfio_cfg_set16(s, PCI_DEVICE_ID, VGPU_PCI_VGPU_DEVICE_ID, 0);
	vgpu_vfio_cfg_set16(s, PCI_COMMAND, 0, VGPU_VFIO_COMMAND_WMASK);
	vgpu_vfio_cfg_set16(s, PCI_STATUS, PCI_STATUS_CAP_LIST, 0);
	/* revision in the low byte, then the 24-bit class code */
	vgpu_vfio_cfg_set32(s, PCI_CLASS_REVISION,
			    (VGPU_PCI_CLASS << 8) | 0x01, 0);
	s->config_wmask[PCI_CACHE_LINE_SIZE] = 0xff;
	s->config[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_NORMAL;

	for (bar = 0; bar < VGPU_VFIO_NUM_BARS; )
		bar += vgpu_vfio_config_bar(s, bar);

	vgpu_vfio_cfg_set16(s, PCI_SUBSYSTEM_VENDOR_ID,
			    VGPU_PCI_SUBSYSTEM_VENDOR_ID, 0);
	vgpu_vfio_cfg_set16(s, PCI_SUBSYSTEM_ID, VGPU_PCI_SUBSYSTEM_ID, 0);
	s->config[PCI_CAPABILITY_LIST] = VGPU_VFIO_CAP_MSI;
	s->config_wmask[PCI_INTERRUPT_LINE] = 0xff;
	s->config[PCI_INTERRUPT_PIN] = 1;	/* INTA# */

	/* MSI: 64-bit address, one vector, no per-vector masking */
	off = VGPU_VFIO_CAP_MSI;
	s->config[off + PCI_CAP_LIST_ID] = PCI_CAP_ID_MSI;
	s->config[off + PCI_CAP_LIST_NEXT] = VGPU_VFIO_CAP_MSIX;
	vgpu_vfio_cfg_set16(s, off + PCI_MSI_FLAGS, PCI_MSI_FLAGS_64BIT,
			    PCI_MSI_FLAGS_ENABLE);
	vgpu_vfio_cfg_set32(s, off + PCI_MSI_ADDRESS_LO, 0, 0xfffffffc);
	vgpu_vfio_cfg_set32(s, off + PCI_MSI_ADDRESS_HI, 0, 0xffffffff);
	vgpu_vfio_cfg_set16(s, off + PCI_MSI_DATA_64, 0, 0xffff);

	/* MSI-X: table at BAR4 + 0, PBA at BAR4 + 0x800 */
	off = VGPU_VFIO_CAP_MSIX;
	s->config[off + PCI_CAP_LIST_ID] = PCI_CAP_ID_MSIX;
	s->config[off + PCI_CAP_LIST_NEXT] = 0;
	vgpu_vfio_cfg_set16(s, off + PCI_MSIX_FLAGS, VGPU_VGPU_VECTORS - 1,
			    PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	vgpu_vfio_cfg_set32(s, off + PCI_MSIX_TABLE, VGPU_VBAR_MSIX, 0);
	vgpu_vfio_cfg_set32(s, off + PCI_MSIX_PBA,
			    VGPU_VFIO_MSIX_PBA | VGPU_VBAR_MSIX, 0);
}

/* Caller holds s->lock and has bounds-checked offset/count. */
void vgpu_vfio_config_read(struct vgpu_vfio_state *s, unsigned int offset,
			   u8 *buf, unsigned int count)
{
	memcpy(buf, &s->config[offset], count);
}

/* Caller holds s->lock and has bounds-checked offset/count. */
void vgpu_vfio_config_write(struct vgpu_vfio_state *s, unsigned int offset,
			    const u8 *buf, unsigned int count)
{
	unsigned int i;

	for (i = 0; i < count; i++) {
		u8 wmask = s->config_wmask[offset + i];
		u8 *reg = &s->config[offset + i];

		*reg = (*reg & ~wmask) | (buf[i] & wmask);
	}
}
