/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vgpu_regs.h - register map of vgpu-pci, GENERATED from vdevice/src/regs/.
 * Do not edit: run UPDATE_SPEC=1 cargo test -p vdevice --test spec
 */
#ifndef VGPU_REGS_H
#define VGPU_REGS_H

#define VGPU_PCI_VENDOR_ID                       0x1234ULL
#define VGPU_PCI_DEVICE_ID                       0x7690ULL
#define VGPU_PCI_VGPU_DEVICE_ID                  0x7691ULL
#define VGPU_PCI_SUBSYSTEM_VENDOR_ID             0x1234ULL
#define VGPU_PCI_SUBSYSTEM_ID                    0x1ULL
#define VGPU_PCI_CLASS                           0x30200ULL
#define VGPU_REG_BAR                             0x0ULL
#define VGPU_VRAM_BAR                            0x2ULL
#define VGPU_MSIX_BAR                            0x4ULL
#define VGPU_REG_BAR_SIZE                        0x100000ULL
#define VGPU_PTABLE_BASE                         0x1000ULL
#define VGPU_PTABLE_STRIDE                       0x40ULL
#define VGPU_WINDOW_BASE                         0x10000ULL
#define VGPU_WINDOW_STRIDE                       0x2000ULL
#define VGPU_DOORBELL_PAGE                       0x1000ULL
#define VGPU_MAX_PARTITIONS                      0x40ULL
#define VGPU_RINGS_PER_PARTITION                 0x2ULL
#define VGPU_HOST_VECTORS                        0x2ULL
#define VGPU_VECTORS_PER_PARTITION               0x2ULL
#define VGPU_HOST_VECTOR_EVENTS                  0x0ULL
#define VGPU_HOST_VECTOR_XLATE                   0x1ULL
#define VGPU_PART_VECTOR_ENGINE                  0x0ULL
#define VGPU_PART_VECTOR_FAULT                   0x1ULL
#define VGPU_DEVICE_MAGIC                        0x55504756ULL
#define VGPU_WINDOW_MAGIC                        0x55504776ULL
#define VGPU_VRAM_ALIGN                          0x10000ULL
#define VGPU_XLATE_PAGE_SIZE                     0x1000ULL
#define VGPU_XLATE_PTES_PER_TABLE                0x200ULL
#define VGPU_XLATE_DIR_ENTRY_SPAN                0x200000ULL
#define VGPU_XLATE_MAX_DIR_ENTRIES               0x1000ULL
#define VGPU_XLATE_VALID                         0x1ULL
#define VGPU_XLATE_WRITABLE                      0x2ULL
#define VGPU_XLATE_RESUME_RETRY                  0x0ULL
#define VGPU_XLATE_RESUME_CANCEL                 0x1ULL
#define VGPU_COMMAND_BYTES                       0x40ULL
#define VGPU_VERSION                             0x10001ULL
#define VGPU_FAULT_LOG_DEPTH                     0x40ULL
#define VGPU_MAX_RING_SIZE                       0x10000ULL
#define VGPU_MAX_WEIGHT                          0xffULL
#define VGPU_CTX_BYTES                           0x200ULL
#define VGPU_CTX_MAGIC                           0x58544356ULL
#define VGPU_DIRTY_PAGE                          0x1000ULL
#define VGPU_DIRTY_SYS_SPAN                      0x400000000ULL

/* First MSI-X vector of partition p. */
#define VGPU_PARTITION_VECTOR_BASE(p) (VGPU_HOST_VECTORS + VGPU_VECTORS_PER_PARTITION * (p))

/* Global registers: offsets in BAR0 */
#define VGPU_G_ID                                0x0ULL /* 32 bits, RO */
#define VGPU_G_VERSION                           0x4ULL /* 32 bits, RO */
#define VGPU_G_VERSION_MINOR                     0xffffULL
#define VGPU_G_VERSION_MINOR_SHIFT               0
#define VGPU_G_VERSION_MAJOR                     0xffff0000ULL
#define VGPU_G_VERSION_MAJOR_SHIFT               16
#define VGPU_G_CAPS                              0x8ULL /* 32 bits, RO */
#define VGPU_G_CAPS_PARTITIONS                   0xffULL
#define VGPU_G_CAPS_PARTITIONS_SHIFT             0
#define VGPU_G_CAPS_ENGINES                      0xf00ULL
#define VGPU_G_CAPS_ENGINES_SHIFT                8
#define VGPU_G_CAPS_RINGS_PER_PARTITION          0xf000ULL
#define VGPU_G_CAPS_RINGS_PER_PARTITION_SHIFT    12
#define VGPU_G_CAPS_VECTORS_PER_PARTITION        0xf0000ULL
#define VGPU_G_CAPS_VECTORS_PER_PARTITION_SHIFT  16
#define VGPU_G_CAPS_HOST_VECTORS                 0xf00000ULL
#define VGPU_G_CAPS_HOST_VECTORS_SHIFT           20
#define VGPU_G_CAPS_XLATE_REPLAY                 0x1000000ULL
#define VGPU_G_CAPS_XLATE_REPLAY_SHIFT           24
#define VGPU_G_CAPS_FAULT_INJECT                 0x2000000ULL
#define VGPU_G_CAPS_FAULT_INJECT_SHIFT           25
#define VGPU_G_PARTITION_STRIDE                  0xcULL /* 32 bits, RO */
#define VGPU_G_VRAM_SIZE                         0x10ULL /* 64 bits, RO */
#define VGPU_G_PARTITION_BASE                    0x18ULL /* 32 bits, RO */
#define VGPU_G_SCRATCH                           0x1cULL /* 32 bits, RW */
#define VGPU_G_INTR_STATUS                       0x20ULL /* 32 bits, RW1C */
#define VGPU_G_INTR_STATUS_PARTITION_FAULT       0x1ULL
#define VGPU_G_INTR_STATUS_PARTITION_FAULT_SHIFT 0
#define VGPU_G_INTR_STATUS_XLATE_FAULT           0x2ULL
#define VGPU_G_INTR_STATUS_XLATE_FAULT_SHIFT     1
#define VGPU_G_INTR_STATUS_ACCESS_ERROR          0x4ULL
#define VGPU_G_INTR_STATUS_ACCESS_ERROR_SHIFT    2
#define VGPU_G_INTR_STATUS_FAULT_LOG_OVERFLOW    0x8ULL
#define VGPU_G_INTR_STATUS_FAULT_LOG_OVERFLOW_SHIFT 3
#define VGPU_G_INTR_MASK                         0x24ULL /* 32 bits, RW */
#define VGPU_G_INTR_MASK_PARTITION_FAULT         0x1ULL
#define VGPU_G_INTR_MASK_PARTITION_FAULT_SHIFT   0
#define VGPU_G_INTR_MASK_XLATE_FAULT             0x2ULL
#define VGPU_G_INTR_MASK_XLATE_FAULT_SHIFT       1
#define VGPU_G_INTR_MASK_ACCESS_ERROR            0x4ULL
#define VGPU_G_INTR_MASK_ACCESS_ERROR_SHIFT      2
#define VGPU_G_INTR_MASK_FAULT_LOG_OVERFLOW      0x8ULL
#define VGPU_G_INTR_MASK_FAULT_LOG_OVERFLOW_SHIFT 3
#define VGPU_G_FAULTED_PARTITIONS                0x28ULL /* 64 bits, RO */
#define VGPU_G_DEVICE_RESET                      0x30ULL /* 32 bits, WO */
#define VGPU_G_TIMESTAMP                         0x38ULL /* 64 bits, RO */
#define VGPU_G_FAULT_LOG_COUNT                   0x40ULL /* 32 bits, RO */
#define VGPU_G_FAULT_LOG_POP                     0x44ULL /* 32 bits, WO */
#define VGPU_G_FAULT_LOG_INFO                    0x48ULL /* 32 bits, RO */
#define VGPU_G_FAULT_LOG_INFO_PARTITION          0xffULL
#define VGPU_G_FAULT_LOG_INFO_PARTITION_SHIFT    0
#define VGPU_G_FAULT_LOG_INFO_CODE               0xff00ULL
#define VGPU_G_FAULT_LOG_INFO_CODE_SHIFT         8
#define VGPU_G_FAULT_LOG_INFO_RING               0xf0000ULL
#define VGPU_G_FAULT_LOG_INFO_RING_SHIFT         16
#define VGPU_G_FAULT_LOG_INFO_WRITE              0x100000ULL
#define VGPU_G_FAULT_LOG_INFO_WRITE_SHIFT        20
#define VGPU_G_FAULT_LOG_INFO_VALID              0x80000000ULL
#define VGPU_G_FAULT_LOG_INFO_VALID_SHIFT        31
#define VGPU_G_FAULT_LOG_ADDR                    0x50ULL /* 64 bits, RO */
#define VGPU_G_FAULT_LOG_LOST                    0x58ULL /* 32 bits, RO */
#define VGPU_G_ACCESS_ERROR_COUNT                0x60ULL /* 32 bits, RO */
#define VGPU_G_ACCESS_ERROR_INFO                 0x64ULL /* 32 bits, RO */
#define VGPU_G_ACCESS_ERROR_INFO_SIZE            0xfULL
#define VGPU_G_ACCESS_ERROR_INFO_SIZE_SHIFT      0
#define VGPU_G_ACCESS_ERROR_INFO_WRITE           0x10ULL
#define VGPU_G_ACCESS_ERROR_INFO_WRITE_SHIFT     4
#define VGPU_G_ACCESS_ERROR_INFO_REASON          0xf00ULL
#define VGPU_G_ACCESS_ERROR_INFO_REASON_SHIFT    8
#define VGPU_G_ACCESS_ERROR_INFO_BAR             0x7000ULL
#define VGPU_G_ACCESS_ERROR_INFO_BAR_SHIFT       12
#define VGPU_G_ACCESS_ERROR_INFO_FUNCTION        0x7f0000ULL
#define VGPU_G_ACCESS_ERROR_INFO_FUNCTION_SHIFT  16
#define VGPU_G_ACCESS_ERROR_OFFSET               0x68ULL /* 64 bits, RO */
#define VGPU_G_XLATE_FAULT_COUNT                 0x80ULL /* 32 bits, RO */
#define VGPU_G_XLATE_FAULT_POP                   0x84ULL /* 32 bits, WO */
#define VGPU_G_XLATE_FAULT_INFO                  0x88ULL /* 32 bits, RO */
#define VGPU_G_XLATE_FAULT_INFO_PARTITION        0xffULL
#define VGPU_G_XLATE_FAULT_INFO_PARTITION_SHIFT  0
#define VGPU_G_XLATE_FAULT_INFO_WRITE            0x100ULL
#define VGPU_G_XLATE_FAULT_INFO_WRITE_SHIFT      8
#define VGPU_G_XLATE_FAULT_INFO_VALID            0x80000000ULL
#define VGPU_G_XLATE_FAULT_INFO_VALID_SHIFT      31
#define VGPU_G_XLATE_FAULT_ADDR                  0x90ULL /* 64 bits, RO */
#define VGPU_G_XLATE_RESUME                      0x98ULL /* 32 bits, WO */
#define VGPU_G_XLATE_RESUME_PARTITION            0xffULL
#define VGPU_G_XLATE_RESUME_PARTITION_SHIFT      0
#define VGPU_G_XLATE_RESUME_ACTION               0x300ULL
#define VGPU_G_XLATE_RESUME_ACTION_SHIFT         8
#define VGPU_G_INJECT_DELAY_US                   0xa0ULL /* 32 bits, RW */
#define VGPU_G_INJECT_DELAY_US_RESET             0x2710ULL
#define VGPU_G_SCHED_TIMESLICE_US                0xa4ULL /* 32 bits, RW */
#define VGPU_G_SCHED_TIMESLICE_US_RESET          0x7d0ULL
#define VGPU_G_ENGINE_DELAY                      0xa8ULL /* 64 bits, RW */
#define VGPU_G_ENGINE_DELAY_MIN_US               0xffffffffULL
#define VGPU_G_ENGINE_DELAY_MIN_US_SHIFT         0
#define VGPU_G_ENGINE_DELAY_JITTER_US            0xffffffff00000000ULL
#define VGPU_G_ENGINE_DELAY_JITTER_US_SHIFT      32
#define VGPU_G_CTX_SIZE                          0xb0ULL /* 32 bits, RO */
#define VGPU_G_CTX_CMD                           0xb4ULL /* 32 bits, WO */
#define VGPU_G_CTX_CMD_PARTITION                 0xffULL
#define VGPU_G_CTX_CMD_PARTITION_SHIFT           0
#define VGPU_G_CTX_CMD_OP                        0x300ULL
#define VGPU_G_CTX_CMD_OP_SHIFT                  8
#define VGPU_G_CTX_STATUS                        0xb8ULL /* 32 bits, RO */
#define VGPU_G_CTX_STATUS_RESULT                 0xffULL
#define VGPU_G_CTX_STATUS_RESULT_SHIFT           0
#define VGPU_G_CTX_POS                           0xbcULL /* 32 bits, RW */
#define VGPU_G_CTX_DATA                          0xc0ULL /* 32 bits, RW */
#define VGPU_G_DIRTY_SEL                         0xc4ULL /* 32 bits, RW */
#define VGPU_G_DIRTY_SEL_PARTITION               0xffULL
#define VGPU_G_DIRTY_SEL_PARTITION_SHIFT         0
#define VGPU_G_DIRTY_SEL_LOG                     0x100ULL
#define VGPU_G_DIRTY_SEL_LOG_SHIFT               8
#define VGPU_G_DIRTY_INDEX                       0xc8ULL /* 32 bits, RW */
#define VGPU_G_DIRTY_WORD                        0xccULL /* 32 bits, RO */
#define VGPU_G_DIRTY_COUNT                       0xd0ULL /* 32 bits, RO */
#define VGPU_G_DIRTY_OVERFLOW                    0xd8ULL /* 64 bits, RW1C */
#define VGPU_G_EDID_SEL                          0xe0ULL /* 32 bits, RW */
#define VGPU_G_EDID_SEL_PARTITION                0xffULL
#define VGPU_G_EDID_SEL_PARTITION_SHIFT          0
#define VGPU_G_EDID_DATA                         0xe4ULL /* 32 bits, RW */

/* Partition table: offsets in an entry (BAR0 + VGPU_PTABLE_BASE + p * VGPU_PTABLE_STRIDE) */
#define VGPU_PT_CTRL                             0x0ULL /* 32 bits, RW */
#define VGPU_PT_CTRL_ENABLE                      0x1ULL
#define VGPU_PT_CTRL_ENABLE_SHIFT                0
#define VGPU_PT_CTRL_XLATE                       0x2ULL
#define VGPU_PT_CTRL_XLATE_SHIFT                 1
#define VGPU_PT_CTRL_XLATE_REPLAY                0x4ULL
#define VGPU_PT_CTRL_XLATE_REPLAY_SHIFT          2
#define VGPU_PT_CTRL_STOP                        0x8ULL
#define VGPU_PT_CTRL_STOP_SHIFT                  3
#define VGPU_PT_CTRL_DIRTY_LOG                   0x10ULL
#define VGPU_PT_CTRL_DIRTY_LOG_SHIFT             4
#define VGPU_PT_STATE                            0x4ULL /* 32 bits, RO */
#define VGPU_PT_STATE_STATE                      0xfULL
#define VGPU_PT_STATE_STATE_SHIFT                0
#define VGPU_PT_STATE_INJECT                     0xf00ULL
#define VGPU_PT_STATE_INJECT_SHIFT               8
#define VGPU_PT_VRAM_BASE                        0x8ULL /* 64 bits, RW */
#define VGPU_PT_VRAM_SIZE                        0x10ULL /* 64 bits, RW */
#define VGPU_PT_XLATE_ROOT                       0x18ULL /* 64 bits, RW */
#define VGPU_PT_XLATE_DIR_ENTRIES                0x20ULL /* 32 bits, RW */
#define VGPU_PT_WEIGHT                           0x24ULL /* 32 bits, RW */
#define VGPU_PT_WEIGHT_RESET                     0x1ULL
#define VGPU_PT_RESET                            0x28ULL /* 32 bits, WO */
#define VGPU_PT_SCRUB                            0x2cULL /* 32 bits, WO */
#define VGPU_PT_XLATE_INVALIDATE                 0x30ULL /* 32 bits, WO */
#define VGPU_PT_MSIX_BASE                        0x34ULL /* 32 bits, RO */
#define VGPU_PT_INJECT                           0x38ULL /* 32 bits, RW */
#define VGPU_PT_INJECT_KIND                      0xfULL
#define VGPU_PT_INJECT_KIND_SHIFT                0
#define VGPU_PT_DISP_LINK                        0x3cULL /* 32 bits, RW */
#define VGPU_PT_DISP_LINK_CONNECTED              0x1ULL
#define VGPU_PT_DISP_LINK_CONNECTED_SHIFT        0

/* Partition window: offsets in a window (BAR0 + VGPU_WINDOW_BASE + p * VGPU_WINDOW_STRIDE) */
#define VGPU_W_ID                                0x0ULL /* 32 bits, RO */
#define VGPU_W_VERSION                           0x4ULL /* 32 bits, RO */
#define VGPU_W_VERSION_MINOR                     0xffffULL
#define VGPU_W_VERSION_MINOR_SHIFT               0
#define VGPU_W_VERSION_MAJOR                     0xffff0000ULL
#define VGPU_W_VERSION_MAJOR_SHIFT               16
#define VGPU_W_CAPS                              0x8ULL /* 32 bits, RO */
#define VGPU_W_CAPS_RINGS                        0xfULL
#define VGPU_W_CAPS_RINGS_SHIFT                  0
#define VGPU_W_CAPS_VECTORS                      0xf0ULL
#define VGPU_W_CAPS_VECTORS_SHIFT                4
#define VGPU_W_CAPS_XLATE                        0x100ULL
#define VGPU_W_CAPS_XLATE_SHIFT                  8
#define VGPU_W_CAPS_DISPLAY                      0x200ULL
#define VGPU_W_CAPS_DISPLAY_SHIFT                9
#define VGPU_W_OPCODES                           0xcULL /* 32 bits, RO */
#define VGPU_W_OPCODES_NOP                       0x1ULL
#define VGPU_W_OPCODES_NOP_SHIFT                 0
#define VGPU_W_OPCODES_COPY                      0x2ULL
#define VGPU_W_OPCODES_COPY_SHIFT                1
#define VGPU_W_OPCODES_FILL                      0x4ULL
#define VGPU_W_OPCODES_FILL_SHIFT                2
#define VGPU_W_OPCODES_FENCE                     0x8ULL
#define VGPU_W_OPCODES_FENCE_SHIFT               3
#define VGPU_W_OPCODES_SEM_WAIT                  0x10ULL
#define VGPU_W_OPCODES_SEM_WAIT_SHIFT            4
#define VGPU_W_OPCODES_TIMESTAMP                 0x20ULL
#define VGPU_W_OPCODES_TIMESTAMP_SHIFT           5
#define VGPU_W_OPCODES_CRC32                     0x40ULL
#define VGPU_W_OPCODES_CRC32_SHIFT               6
#define VGPU_W_OPCODES_FILL_RECT                 0x80ULL
#define VGPU_W_OPCODES_FILL_RECT_SHIFT           7
#define VGPU_W_OPCODES_BLIT                      0x100ULL
#define VGPU_W_OPCODES_BLIT_SHIFT                8
#define VGPU_W_VRAM_SIZE                         0x10ULL /* 64 bits, RO */
#define VGPU_W_STATUS                            0x18ULL /* 32 bits, RO */
#define VGPU_W_STATUS_STATE                      0xfULL
#define VGPU_W_STATUS_STATE_SHIFT                0
#define VGPU_W_INDEX                             0x1cULL /* 32 bits, RO */
#define VGPU_W_INTR_STATUS                       0x20ULL /* 32 bits, RW1C */
#define VGPU_W_INTR_STATUS_FENCE                 0x1ULL
#define VGPU_W_INTR_STATUS_FENCE_SHIFT           0
#define VGPU_W_INTR_STATUS_FAULT                 0x2ULL
#define VGPU_W_INTR_STATUS_FAULT_SHIFT           1
#define VGPU_W_INTR_STATUS_IDLE                  0x4ULL
#define VGPU_W_INTR_STATUS_IDLE_SHIFT            2
#define VGPU_W_INTR_STATUS_VBLANK                0x8ULL
#define VGPU_W_INTR_STATUS_VBLANK_SHIFT          3
#define VGPU_W_INTR_STATUS_FLIP_DONE             0x10ULL
#define VGPU_W_INTR_STATUS_FLIP_DONE_SHIFT       4
#define VGPU_W_INTR_STATUS_HOTPLUG               0x20ULL
#define VGPU_W_INTR_STATUS_HOTPLUG_SHIFT         5
#define VGPU_W_INTR_MASK                         0x24ULL /* 32 bits, RW */
#define VGPU_W_INTR_MASK_FENCE                   0x1ULL
#define VGPU_W_INTR_MASK_FENCE_SHIFT             0
#define VGPU_W_INTR_MASK_FAULT                   0x2ULL
#define VGPU_W_INTR_MASK_FAULT_SHIFT             1
#define VGPU_W_INTR_MASK_IDLE                    0x4ULL
#define VGPU_W_INTR_MASK_IDLE_SHIFT              2
#define VGPU_W_INTR_MASK_VBLANK                  0x8ULL
#define VGPU_W_INTR_MASK_VBLANK_SHIFT            3
#define VGPU_W_INTR_MASK_FLIP_DONE               0x10ULL
#define VGPU_W_INTR_MASK_FLIP_DONE_SHIFT         4
#define VGPU_W_INTR_MASK_HOTPLUG                 0x20ULL
#define VGPU_W_INTR_MASK_HOTPLUG_SHIFT           5
#define VGPU_W_FAULT_STATUS                      0x28ULL /* 32 bits, RO */
#define VGPU_W_FAULT_STATUS_CODE                 0xffULL
#define VGPU_W_FAULT_STATUS_CODE_SHIFT           0
#define VGPU_W_FAULT_STATUS_RING                 0xf00ULL
#define VGPU_W_FAULT_STATUS_RING_SHIFT           8
#define VGPU_W_FAULT_STATUS_WRITE                0x1000ULL
#define VGPU_W_FAULT_STATUS_WRITE_SHIFT          12
#define VGPU_W_FAULT_ADDR                        0x30ULL /* 64 bits, RO */
#define VGPU_W_FAULT_CMD                         0x38ULL /* 32 bits, RO */
#define VGPU_W_RESET                             0x3cULL /* 32 bits, WO */
#define VGPU_W_FENCE_VALUE                       0x40ULL /* 64 bits, RO */
#define VGPU_W_TIMESTAMP                         0x48ULL /* 64 bits, RO */
#define VGPU_W_STAT_COMMANDS                     0x50ULL /* 64 bits, RO */
#define VGPU_W_STAT_BYTES                        0x58ULL /* 64 bits, RO */
#define VGPU_W_STAT_BUSY_NS                      0x60ULL /* 64 bits, RO */
#define VGPU_W_STAT_FAULTS                       0x68ULL /* 32 bits, RO */
#define VGPU_W_ACCESS_ERRORS                     0x6cULL /* 32 bits, RO */
#define VGPU_W_SCRATCH                           0x70ULL /* 32 bits, RW */
#define VGPU_W_RING_BASE(n)                      (0x100ULL + (n) * 0x20ULL) /* 64 bits, RW */
#define VGPU_W_RING_SIZE(n)                      (0x108ULL + (n) * 0x20ULL) /* 32 bits, RW */
#define VGPU_W_RING_CTRL(n)                      (0x10cULL + (n) * 0x20ULL) /* 32 bits, RW */
#define VGPU_W_RING_CTRL_SYSMEM                  0x1ULL
#define VGPU_W_RING_CTRL_SYSMEM_SHIFT            0
#define VGPU_W_RING_HEAD(n)                      (0x110ULL + (n) * 0x20ULL) /* 32 bits, RO */
#define VGPU_W_RING_TAIL(n)                      (0x114ULL + (n) * 0x20ULL) /* 32 bits, RO */
#define VGPU_W_DISP_CTRL                         0x200ULL /* 32 bits, RW */
#define VGPU_W_DISP_CTRL_ENABLE                  0x1ULL
#define VGPU_W_DISP_CTRL_ENABLE_SHIFT            0
#define VGPU_W_DISP_FORMAT                       0x204ULL /* 32 bits, RW */
#define VGPU_W_DISP_MODE                         0x208ULL /* 32 bits, RW */
#define VGPU_W_DISP_MODE_WIDTH                   0xffffULL
#define VGPU_W_DISP_MODE_WIDTH_SHIFT             0
#define VGPU_W_DISP_MODE_HEIGHT                  0xffff0000ULL
#define VGPU_W_DISP_MODE_HEIGHT_SHIFT            16
#define VGPU_W_DISP_STRIDE                       0x20cULL /* 32 bits, RW */
#define VGPU_W_DISP_BASE                         0x210ULL /* 64 bits, RW */
#define VGPU_W_DISP_COMMIT                       0x218ULL /* 32 bits, WO */
#define VGPU_W_DISP_STATUS                       0x21cULL /* 32 bits, RO */
#define VGPU_W_DISP_STATUS_ACTIVE                0x1ULL
#define VGPU_W_DISP_STATUS_ACTIVE_SHIFT          0
#define VGPU_W_DISP_STATUS_FLIP_PENDING          0x2ULL
#define VGPU_W_DISP_STATUS_FLIP_PENDING_SHIFT    1
#define VGPU_W_DISP_STATUS_CONNECTED             0x4ULL
#define VGPU_W_DISP_STATUS_CONNECTED_SHIFT       2
#define VGPU_W_DISP_ACTIVE_BASE                  0x220ULL /* 64 bits, RO */
#define VGPU_W_DISP_ACTIVE_MODE                  0x228ULL /* 32 bits, RO */
#define VGPU_W_DISP_ACTIVE_MODE_WIDTH            0xffffULL
#define VGPU_W_DISP_ACTIVE_MODE_WIDTH_SHIFT      0
#define VGPU_W_DISP_ACTIVE_MODE_HEIGHT           0xffff0000ULL
#define VGPU_W_DISP_ACTIVE_MODE_HEIGHT_SHIFT     16
#define VGPU_W_DISP_ACTIVE_STRIDE                0x22cULL /* 32 bits, RO */
#define VGPU_W_DISP_ACTIVE_FORMAT                0x230ULL /* 32 bits, RO */
#define VGPU_W_DISP_VBLANK_COUNT                 0x238ULL /* 64 bits, RO */
#define VGPU_W_DISP_VBLANK_NS                    0x240ULL /* 32 bits, RO */
#define VGPU_W_DISP_MAX_MODE                     0x244ULL /* 32 bits, RO */
#define VGPU_W_DISP_MAX_MODE_WIDTH               0xffffULL
#define VGPU_W_DISP_MAX_MODE_WIDTH_SHIFT         0
#define VGPU_W_DISP_MAX_MODE_HEIGHT              0xffff0000ULL
#define VGPU_W_DISP_MAX_MODE_HEIGHT_SHIFT        16
#define VGPU_W_DISP_EDID(n)                      (0x300ULL + (n) * 0x4ULL) /* 32 bits, RO */
#define VGPU_W_DOORBELL(n)                       (0x1000ULL + (n) * 0x4ULL) /* 32 bits, WO */

/* Register access: ACCESS in the register lists below */
#define VGPU_REG_ACCESS_RO                       0x1
#define VGPU_REG_ACCESS_RW                       0x3
#define VGPU_REG_ACCESS_WO                       0x2
#define VGPU_REG_ACCESS_RW1C                     0x3
#define VGPU_REG_READABLE                        0x1
#define VGPU_REG_WRITABLE                        0x2

/* X(NAME, OFFSET, BYTES, ACCESS) for each global register, in offset order */
#define VGPU_GLOBAL_REGS(X) \
X(ID, 0x000ULL, 4, RO)\
X(VERSION, 0x004ULL, 4, RO)\
X(CAPS, 0x008ULL, 4, RO)\
X(PARTITION_STRIDE, 0x00cULL, 4, RO)\
X(VRAM_SIZE, 0x010ULL, 8, RO)\
X(PARTITION_BASE, 0x018ULL, 4, RO)\
X(SCRATCH, 0x01cULL, 4, RW)\
X(INTR_STATUS, 0x020ULL, 4, RW1C)\
X(INTR_MASK, 0x024ULL, 4, RW)\
X(FAULTED_PARTITIONS, 0x028ULL, 8, RO)\
X(DEVICE_RESET, 0x030ULL, 4, WO)\
X(TIMESTAMP, 0x038ULL, 8, RO)\
X(FAULT_LOG_COUNT, 0x040ULL, 4, RO)\
X(FAULT_LOG_POP, 0x044ULL, 4, WO)\
X(FAULT_LOG_INFO, 0x048ULL, 4, RO)\
X(FAULT_LOG_ADDR, 0x050ULL, 8, RO)\
X(FAULT_LOG_LOST, 0x058ULL, 4, RO)\
X(ACCESS_ERROR_COUNT, 0x060ULL, 4, RO)\
X(ACCESS_ERROR_INFO, 0x064ULL, 4, RO)\
X(ACCESS_ERROR_OFFSET, 0x068ULL, 8, RO)\
X(XLATE_FAULT_COUNT, 0x080ULL, 4, RO)\
X(XLATE_FAULT_POP, 0x084ULL, 4, WO)\
X(XLATE_FAULT_INFO, 0x088ULL, 4, RO)\
X(XLATE_FAULT_ADDR, 0x090ULL, 8, RO)\
X(XLATE_RESUME, 0x098ULL, 4, WO)\
X(INJECT_DELAY_US, 0x0a0ULL, 4, RW)\
X(SCHED_TIMESLICE_US, 0x0a4ULL, 4, RW)\
X(ENGINE_DELAY, 0x0a8ULL, 8, RW)\
X(CTX_SIZE, 0x0b0ULL, 4, RO)\
X(CTX_CMD, 0x0b4ULL, 4, WO)\
X(CTX_STATUS, 0x0b8ULL, 4, RO)\
X(CTX_POS, 0x0bcULL, 4, RW)\
X(CTX_DATA, 0x0c0ULL, 4, RW)\
X(DIRTY_SEL, 0x0c4ULL, 4, RW)\
X(DIRTY_INDEX, 0x0c8ULL, 4, RW)\
X(DIRTY_WORD, 0x0ccULL, 4, RO)\
X(DIRTY_COUNT, 0x0d0ULL, 4, RO)\
X(DIRTY_OVERFLOW, 0x0d8ULL, 8, RW1C)\
X(EDID_SEL, 0x0e0ULL, 4, RW)\
X(EDID_DATA, 0x0e4ULL, 4, RW)

/* X(NAME, OFFSET, BYTES, ACCESS) for each partition-table register, in offset order */
#define VGPU_PTABLE_REGS(X) \
X(CTRL, 0x000ULL, 4, RW)\
X(STATE, 0x004ULL, 4, RO)\
X(VRAM_BASE, 0x008ULL, 8, RW)\
X(VRAM_SIZE, 0x010ULL, 8, RW)\
X(XLATE_ROOT, 0x018ULL, 8, RW)\
X(XLATE_DIR_ENTRIES, 0x020ULL, 4, RW)\
X(WEIGHT, 0x024ULL, 4, RW)\
X(RESET, 0x028ULL, 4, WO)\
X(SCRUB, 0x02cULL, 4, WO)\
X(XLATE_INVALIDATE, 0x030ULL, 4, WO)\
X(MSIX_BASE, 0x034ULL, 4, RO)\
X(INJECT, 0x038ULL, 4, RW)\
X(DISP_LINK, 0x03cULL, 4, RW)

/* X(NAME, OFFSET, BYTES, ACCESS) for each window register, in offset order */
#define VGPU_WINDOW_REGS(X) \
X(ID, 0x000ULL, 4, RO)\
X(VERSION, 0x004ULL, 4, RO)\
X(CAPS, 0x008ULL, 4, RO)\
X(OPCODES, 0x00cULL, 4, RO)\
X(VRAM_SIZE, 0x010ULL, 8, RO)\
X(STATUS, 0x018ULL, 4, RO)\
X(INDEX, 0x01cULL, 4, RO)\
X(INTR_STATUS, 0x020ULL, 4, RW1C)\
X(INTR_MASK, 0x024ULL, 4, RW)\
X(FAULT_STATUS, 0x028ULL, 4, RO)\
X(FAULT_ADDR, 0x030ULL, 8, RO)\
X(FAULT_CMD, 0x038ULL, 4, RO)\
X(RESET, 0x03cULL, 4, WO)\
X(FENCE_VALUE, 0x040ULL, 8, RO)\
X(TIMESTAMP, 0x048ULL, 8, RO)\
X(STAT_COMMANDS, 0x050ULL, 8, RO)\
X(STAT_BYTES, 0x058ULL, 8, RO)\
X(STAT_BUSY_NS, 0x060ULL, 8, RO)\
X(STAT_FAULTS, 0x068ULL, 4, RO)\
X(ACCESS_ERRORS, 0x06cULL, 4, RO)\
X(SCRATCH, 0x070ULL, 4, RW)\
X(DISP_CTRL, 0x200ULL, 4, RW)\
X(DISP_FORMAT, 0x204ULL, 4, RW)\
X(DISP_MODE, 0x208ULL, 4, RW)\
X(DISP_STRIDE, 0x20cULL, 4, RW)\
X(DISP_BASE, 0x210ULL, 8, RW)\
X(DISP_COMMIT, 0x218ULL, 4, WO)\
X(DISP_STATUS, 0x21cULL, 4, RO)\
X(DISP_ACTIVE_BASE, 0x220ULL, 8, RO)\
X(DISP_ACTIVE_MODE, 0x228ULL, 4, RO)\
X(DISP_ACTIVE_STRIDE, 0x22cULL, 4, RO)\
X(DISP_ACTIVE_FORMAT, 0x230ULL, 4, RO)\
X(DISP_VBLANK_COUNT, 0x238ULL, 8, RO)\
X(DISP_VBLANK_NS, 0x240ULL, 4, RO)\
X(DISP_MAX_MODE, 0x244ULL, 4, RO)
/* X(NAME, OFFSET, BYTES, ACCESS, COUNT, STRIDE) for each window register array */
#define VGPU_WINDOW_ARRAY_REGS(X) \
X(RING_BASE, 0x100ULL, 8, RW, 2, 0x20ULL)\
X(RING_SIZE, 0x108ULL, 4, RW, 2, 0x20ULL)\
X(RING_CTRL, 0x10cULL, 4, RW, 2, 0x20ULL)\
X(RING_HEAD, 0x110ULL, 4, RO, 2, 0x20ULL)\
X(RING_TAIL, 0x114ULL, 4, RO, 2, 0x20ULL)\
X(DISP_EDID, 0x300ULL, 4, RO, 64, 0x4ULL)\
X(DOORBELL, 0x1000ULL, 4, WO, 2, 0x4ULL)

/* Enumerated field values */
#define VGPU_STATE_DISABLED                      0
#define VGPU_STATE_IDLE                          1
#define VGPU_STATE_BUSY                          2
#define VGPU_STATE_FAULTED                       3
#define VGPU_STATE_XLATE_WAIT                    4
#define VGPU_FAULT_NONE                          0
#define VGPU_FAULT_VRAM_OOB                      1
#define VGPU_FAULT_SYSMEM_UNMAPPED               2
#define VGPU_FAULT_SYSMEM_READ_ONLY              3
#define VGPU_FAULT_BAD_COMMAND                   4
#define VGPU_FAULT_DMA_ERROR                     5
#define VGPU_FAULT_ECC_ERROR                     6
#define VGPU_FAULT_XLATE_CANCELLED               7
#define VGPU_ACCESS_ERROR_NONE                   0
#define VGPU_ACCESS_ERROR_UNMAPPED               1
#define VGPU_ACCESS_ERROR_BAD_WIDTH              2
#define VGPU_ACCESS_ERROR_MISALIGNED             3
#define VGPU_ACCESS_ERROR_READ_ONLY              4
#define VGPU_ACCESS_ERROR_BAD_VALUE              5
#define VGPU_ACCESS_ERROR_DISABLED               6
#define VGPU_ACCESS_ERROR_BUSY                   7
#define VGPU_INJECT_NONE                         0
#define VGPU_INJECT_ENGINE_HANG                  1
#define VGPU_INJECT_DMA_ERROR                    2
#define VGPU_INJECT_ECC_ERROR                    3
#define VGPU_INJECT_DROP_IRQ                     4
#define VGPU_INJECT_LATE_IRQ                     5
#define VGPU_CTX_OP_NONE                         0
#define VGPU_CTX_OP_SAVE                         1
#define VGPU_CTX_OP_RESTORE                      2
#define VGPU_CTX_OK                              0
#define VGPU_CTX_NOT_STOPPED                     1
#define VGPU_CTX_BAD_FORMAT                      2
#define VGPU_CTX_BAD_VERSION                     3
#define VGPU_CTX_BAD_CHECKSUM                    4
#define VGPU_CTX_SLICE_MISMATCH                  5
#define VGPU_CTX_BAD_STATE                       6
#define VGPU_DIRTY_SYSMEM                        0
#define VGPU_DIRTY_VRAM                          1

/* X(VALUE, NAME) for each partition state */
#define VGPU_STATE_VALUES(X) \
X(0, DISABLED)\
X(1, IDLE)\
X(2, BUSY)\
X(3, FAULTED)\
X(4, XLATE_WAIT)

/* X(VALUE, NAME) for each fault code */
#define VGPU_FAULT_VALUES(X) \
X(0, NONE)\
X(1, VRAM_OOB)\
X(2, SYSMEM_UNMAPPED)\
X(3, SYSMEM_READ_ONLY)\
X(4, BAD_COMMAND)\
X(5, DMA_ERROR)\
X(6, ECC_ERROR)\
X(7, XLATE_CANCELLED)

/* X(VALUE, NAME) for each access-error reason */
#define VGPU_ACCESS_ERROR_VALUES(X) \
X(0, NONE)\
X(1, UNMAPPED)\
X(2, BAD_WIDTH)\
X(3, MISALIGNED)\
X(4, READ_ONLY)\
X(5, BAD_VALUE)\
X(6, DISABLED)\
X(7, BUSY)

/* X(VALUE, NAME) for each fault-injection kind */
#define VGPU_INJECT_VALUES(X) \
X(0, NONE)\
X(1, ENGINE_HANG)\
X(2, DMA_ERROR)\
X(3, ECC_ERROR)\
X(4, DROP_IRQ)\
X(5, LATE_IRQ)

/* X(VALUE, NAME) for each XLATE_RESUME action */
#define VGPU_XLATE_RESUME_VALUES(X) \
X(0, RETRY)\
X(1, CANCEL)

/* X(VALUE, NAME) for each CTX_CMD operation */
#define VGPU_CTX_OP_VALUES(X) \
X(0, NONE)\
X(1, SAVE)\
X(2, RESTORE)

/* X(VALUE, NAME) for each CTX_STATUS result */
#define VGPU_CTX_VALUES(X) \
X(0, OK)\
X(1, NOT_STOPPED)\
X(2, BAD_FORMAT)\
X(3, BAD_VERSION)\
X(4, BAD_CHECKSUM)\
X(5, SLICE_MISMATCH)\
X(6, BAD_STATE)

/* X(VALUE, NAME) for each dirty log (DIRTY_SEL.LOG) */
#define VGPU_DIRTY_VALUES(X) \
X(0, SYSMEM)\
X(1, VRAM)

/* Translation directory and page-table entries (64 bits, in host memory) */
#define VGPU_XLATE_PDE_VALID                     0x1ULL
#define VGPU_XLATE_PDE_VALID_SHIFT               0
#define VGPU_XLATE_PDE_PFN                       0xfffffffffffff000ULL
#define VGPU_XLATE_PDE_PFN_SHIFT                 12
#define VGPU_XLATE_PTE_VALID                     0x1ULL
#define VGPU_XLATE_PTE_VALID_SHIFT               0
#define VGPU_XLATE_PTE_WRITABLE                  0x2ULL
#define VGPU_XLATE_PTE_WRITABLE_SHIFT            1
#define VGPU_XLATE_PTE_PFN                       0xfffffffffffff000ULL
#define VGPU_XLATE_PTE_PFN_SHIFT                 12

/* Commands: 64 bytes, see SPEC.md section 6 */
#define VGPU_OP_NOP                              0
#define VGPU_OP_COPY                             1
#define VGPU_OP_FILL                             2
#define VGPU_OP_FENCE                            3
#define VGPU_OP_SEM_WAIT                         4
#define VGPU_OP_TIMESTAMP                        5
#define VGPU_OP_CRC32                            6
#define VGPU_OP_FILL_RECT                        7
#define VGPU_OP_BLIT                             8
#define VGPU_CMD_DST_SYSMEM                      0x1
#define VGPU_CMD_SRC_SYSMEM                      0x2
#define VGPU_CMD_INTR                            0x4
#define VGPU_CMD_FLAGS_DEFINED                   0x7

/* X(VALUE, NAME) for each opcode */
#define VGPU_OP_VALUES(X) \
X(0, NOP)\
X(1, COPY)\
X(2, FILL)\
X(3, FENCE)\
X(4, SEM_WAIT)\
X(5, TIMESTAMP)\
X(6, CRC32)\
X(7, FILL_RECT)\
X(8, BLIT)

/* Command layout: byte offset and size of each field, little endian */
#define VGPU_CMD_OPCODE_OFFSET                   0
#define VGPU_CMD_OPCODE_BYTES                    1
#define VGPU_CMD_FLAGS_OFFSET                    1
#define VGPU_CMD_FLAGS_BYTES                     1
#define VGPU_CMD_DST_OFFSET                      8
#define VGPU_CMD_DST_BYTES                       8
#define VGPU_CMD_SRC_OFFSET                      16
#define VGPU_CMD_SRC_BYTES                       8
#define VGPU_CMD_LEN_OFFSET                      24
#define VGPU_CMD_LEN_BYTES                       8
#define VGPU_CMD_VALUE_OFFSET                    32
#define VGPU_CMD_VALUE_BYTES                     8
#define VGPU_CMD_WIDTH_OFFSET                    40
#define VGPU_CMD_WIDTH_BYTES                     4
#define VGPU_CMD_HEIGHT_OFFSET                   44
#define VGPU_CMD_HEIGHT_BYTES                    4
#define VGPU_CMD_DST_PITCH_OFFSET                48
#define VGPU_CMD_DST_PITCH_BYTES                 4
#define VGPU_CMD_SRC_PITCH_OFFSET                52
#define VGPU_CMD_SRC_PITCH_BYTES                 4
/* X(NAME, OFFSET, BYTES) for each command field; every other byte is reserved (0) */
#define VGPU_CMD_FIELDS(X) \
X(OPCODE, 0, 1)\
X(FLAGS, 1, 1)\
X(DST, 8, 8)\
X(SRC, 16, 8)\
X(LEN, 24, 8)\
X(VALUE, 32, 8)\
X(WIDTH, 40, 4)\
X(HEIGHT, 44, 4)\
X(DST_PITCH, 48, 4)\
X(SRC_PITCH, 52, 4)

#endif /* VGPU_REGS_H */
