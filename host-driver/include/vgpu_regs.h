/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vgpu_regs.h - register map of vgpu-pci, GENERATED from vdevice/src/regs.rs.
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

/* First MSI-X vector of partition p. */
#define VGPU_PARTITION_VECTOR_BASE(p) (VGPU_HOST_VECTORS + VGPU_VECTORS_PER_PARTITION * (p))

/* Global registers: offsets in BAR0 */
#define VGPU_G_ID                                0x0ULL /* 32 bits, RO */
#define VGPU_G_VERSION                           0x4ULL /* 32 bits, RO */
#define VGPU_G_VERSION_MINOR                     0xffffULL
#define VGPU_G_VERSION_MAJOR                     0xffff0000ULL
#define VGPU_G_CAPS                              0x8ULL /* 32 bits, RO */
#define VGPU_G_CAPS_PARTITIONS                   0xffULL
#define VGPU_G_CAPS_ENGINES                      0xf00ULL
#define VGPU_G_CAPS_RINGS_PER_PARTITION          0xf000ULL
#define VGPU_G_CAPS_VECTORS_PER_PARTITION        0xf0000ULL
#define VGPU_G_CAPS_HOST_VECTORS                 0xf00000ULL
#define VGPU_G_CAPS_XLATE_REPLAY                 0x1000000ULL
#define VGPU_G_CAPS_FAULT_INJECT                 0x2000000ULL
#define VGPU_G_PARTITION_STRIDE                  0xcULL /* 32 bits, RO */
#define VGPU_G_VRAM_SIZE                         0x10ULL /* 64 bits, RO */
#define VGPU_G_PARTITION_BASE                    0x18ULL /* 32 bits, RO */
#define VGPU_G_SCRATCH                           0x1cULL /* 32 bits, RW */
#define VGPU_G_INTR_STATUS                       0x20ULL /* 32 bits, RW1C */
#define VGPU_G_INTR_STATUS_PARTITION_FAULT       0x1ULL
#define VGPU_G_INTR_STATUS_XLATE_FAULT           0x2ULL
#define VGPU_G_INTR_STATUS_ACCESS_ERROR          0x4ULL
#define VGPU_G_INTR_STATUS_FAULT_LOG_OVERFLOW    0x8ULL
#define VGPU_G_INTR_MASK                         0x24ULL /* 32 bits, RW */
#define VGPU_G_INTR_MASK_PARTITION_FAULT         0x1ULL
#define VGPU_G_INTR_MASK_XLATE_FAULT             0x2ULL
#define VGPU_G_INTR_MASK_ACCESS_ERROR            0x4ULL
#define VGPU_G_INTR_MASK_FAULT_LOG_OVERFLOW      0x8ULL
#define VGPU_G_FAULTED_PARTITIONS                0x28ULL /* 64 bits, RO */
#define VGPU_G_DEVICE_RESET                      0x30ULL /* 32 bits, WO */
#define VGPU_G_TIMESTAMP                         0x38ULL /* 64 bits, RO */
#define VGPU_G_FAULT_LOG_COUNT                   0x40ULL /* 32 bits, RO */
#define VGPU_G_FAULT_LOG_POP                     0x44ULL /* 32 bits, WO */
#define VGPU_G_FAULT_LOG_INFO                    0x48ULL /* 32 bits, RO */
#define VGPU_G_FAULT_LOG_INFO_PARTITION          0xffULL
#define VGPU_G_FAULT_LOG_INFO_CODE               0xff00ULL
#define VGPU_G_FAULT_LOG_INFO_RING               0xf0000ULL
#define VGPU_G_FAULT_LOG_INFO_WRITE              0x100000ULL
#define VGPU_G_FAULT_LOG_INFO_VALID              0x80000000ULL
#define VGPU_G_FAULT_LOG_ADDR                    0x50ULL /* 64 bits, RO */
#define VGPU_G_FAULT_LOG_LOST                    0x58ULL /* 32 bits, RO */
#define VGPU_G_ACCESS_ERROR_COUNT                0x60ULL /* 32 bits, RO */
#define VGPU_G_ACCESS_ERROR_INFO                 0x64ULL /* 32 bits, RO */
#define VGPU_G_ACCESS_ERROR_INFO_SIZE            0xfULL
#define VGPU_G_ACCESS_ERROR_INFO_WRITE           0x10ULL
#define VGPU_G_ACCESS_ERROR_INFO_REASON          0xf00ULL
#define VGPU_G_ACCESS_ERROR_INFO_BAR             0x7000ULL
#define VGPU_G_ACCESS_ERROR_OFFSET               0x68ULL /* 64 bits, RO */
#define VGPU_G_XLATE_FAULT_COUNT                 0x80ULL /* 32 bits, RO */
#define VGPU_G_XLATE_FAULT_POP                   0x84ULL /* 32 bits, WO */
#define VGPU_G_XLATE_FAULT_INFO                  0x88ULL /* 32 bits, RO */
#define VGPU_G_XLATE_FAULT_INFO_PARTITION        0xffULL
#define VGPU_G_XLATE_FAULT_INFO_WRITE            0x100ULL
#define VGPU_G_XLATE_FAULT_INFO_VALID            0x80000000ULL
#define VGPU_G_XLATE_FAULT_ADDR                  0x90ULL /* 64 bits, RO */
#define VGPU_G_XLATE_RESUME                      0x98ULL /* 32 bits, WO */
#define VGPU_G_XLATE_RESUME_PARTITION            0xffULL
#define VGPU_G_XLATE_RESUME_ACTION               0x300ULL
#define VGPU_G_INJECT_DELAY_US                   0xa0ULL /* 32 bits, RW */
#define VGPU_G_SCHED_TIMESLICE_US                0xa4ULL /* 32 bits, RW */

/* Partition table: offsets in an entry (BAR0 + VGPU_PTABLE_BASE + p * VGPU_PTABLE_STRIDE) */
#define VGPU_PT_CTRL                             0x0ULL /* 32 bits, RW */
#define VGPU_PT_CTRL_ENABLE                      0x1ULL
#define VGPU_PT_CTRL_XLATE                       0x2ULL
#define VGPU_PT_CTRL_XLATE_REPLAY                0x4ULL
#define VGPU_PT_STATE                            0x4ULL /* 32 bits, RO */
#define VGPU_PT_STATE_STATE                      0xfULL
#define VGPU_PT_STATE_INJECT                     0xf00ULL
#define VGPU_PT_VRAM_BASE                        0x8ULL /* 64 bits, RW */
#define VGPU_PT_VRAM_SIZE                        0x10ULL /* 64 bits, RW */
#define VGPU_PT_XLATE_ROOT                       0x18ULL /* 64 bits, RW */
#define VGPU_PT_XLATE_DIR_ENTRIES                0x20ULL /* 32 bits, RW */
#define VGPU_PT_WEIGHT                           0x24ULL /* 32 bits, RW */
#define VGPU_PT_RESET                            0x28ULL /* 32 bits, WO */
#define VGPU_PT_SCRUB                            0x2cULL /* 32 bits, WO */
#define VGPU_PT_XLATE_INVALIDATE                 0x30ULL /* 32 bits, WO */
#define VGPU_PT_MSIX_BASE                        0x34ULL /* 32 bits, RO */
#define VGPU_PT_INJECT                           0x38ULL /* 32 bits, RW */
#define VGPU_PT_INJECT_KIND                      0xfULL

/* Partition window: offsets in a window (BAR0 + VGPU_WINDOW_BASE + p * VGPU_WINDOW_STRIDE) */
#define VGPU_W_ID                                0x0ULL /* 32 bits, RO */
#define VGPU_W_VERSION                           0x4ULL /* 32 bits, RO */
#define VGPU_W_VERSION_MINOR                     0xffffULL
#define VGPU_W_VERSION_MAJOR                     0xffff0000ULL
#define VGPU_W_CAPS                              0x8ULL /* 32 bits, RO */
#define VGPU_W_CAPS_RINGS                        0xfULL
#define VGPU_W_CAPS_VECTORS                      0xf0ULL
#define VGPU_W_CAPS_XLATE                        0x100ULL
#define VGPU_W_OPCODES                           0xcULL /* 32 bits, RO */
#define VGPU_W_OPCODES_NOP                       0x1ULL
#define VGPU_W_OPCODES_COPY                      0x2ULL
#define VGPU_W_OPCODES_FILL                      0x4ULL
#define VGPU_W_OPCODES_FENCE                     0x8ULL
#define VGPU_W_OPCODES_SEM_WAIT                  0x10ULL
#define VGPU_W_OPCODES_TIMESTAMP                 0x20ULL
#define VGPU_W_OPCODES_CRC32                     0x40ULL
#define VGPU_W_VRAM_SIZE                         0x10ULL /* 64 bits, RO */
#define VGPU_W_STATUS                            0x18ULL /* 32 bits, RO */
#define VGPU_W_STATUS_STATE                      0xfULL
#define VGPU_W_INDEX                             0x1cULL /* 32 bits, RO */
#define VGPU_W_INTR_STATUS                       0x20ULL /* 32 bits, RW1C */
#define VGPU_W_INTR_STATUS_FENCE                 0x1ULL
#define VGPU_W_INTR_STATUS_FAULT                 0x2ULL
#define VGPU_W_INTR_STATUS_IDLE                  0x4ULL
#define VGPU_W_INTR_MASK                         0x24ULL /* 32 bits, RW */
#define VGPU_W_INTR_MASK_FENCE                   0x1ULL
#define VGPU_W_INTR_MASK_FAULT                   0x2ULL
#define VGPU_W_INTR_MASK_IDLE                    0x4ULL
#define VGPU_W_FAULT_STATUS                      0x28ULL /* 32 bits, RO */
#define VGPU_W_FAULT_STATUS_CODE                 0xffULL
#define VGPU_W_FAULT_STATUS_RING                 0xf00ULL
#define VGPU_W_FAULT_STATUS_WRITE                0x1000ULL
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
#define VGPU_W_RING_HEAD(n)                      (0x110ULL + (n) * 0x20ULL) /* 32 bits, RO */
#define VGPU_W_RING_TAIL(n)                      (0x114ULL + (n) * 0x20ULL) /* 32 bits, RO */
#define VGPU_W_DOORBELL(n)                       (0x1000ULL + (n) * 0x4ULL) /* 32 bits, WO */

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

/* Commands: 64 bytes, see SPEC.md section 6 */
#define VGPU_OP_NOP                              0
#define VGPU_OP_COPY                             1
#define VGPU_OP_FILL                             2
#define VGPU_OP_FENCE                            3
#define VGPU_OP_SEM_WAIT                         4
#define VGPU_OP_TIMESTAMP                        5
#define VGPU_OP_CRC32                            6
#define VGPU_CMD_DST_SYSMEM                      0x1
#define VGPU_CMD_SRC_SYSMEM                      0x2
#define VGPU_CMD_INTR                            0x4

#endif /* VGPU_REGS_H */
