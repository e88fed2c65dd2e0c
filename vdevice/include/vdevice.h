/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vdevice.h - C ABI of the vGPU device model (Rust crate `vdevice`).
 * The QEMU shim (hw/misc/vgpu-pci.c) is the only intended user; the model
 * owns all device behaviour, the shim only wires BARs, DMA and MSI-X.
 *
 * Threading and locking contract
 * ------------------------------
 *  - vdevice_bar_read/vdevice_bar_write/vdevice_reset may be called from any
 *    thread (QEMU: vCPU threads with or without the BQL). The model locks
 *    internally; the caller needs no lock. They never wait for guest memory:
 *    the only waits are for an engine to finish its current chunk of work
 *    (bounded, microseconds) on reset paths.
 *  - dma_read/dma_write are called ONLY on the model's engine threads. They
 *    must not take a lock that a thread calling into vdevice may hold while
 *    it waits (QEMU: do not take the BQL; touch RAM only, fail MMIO targets
 *    with a non-zero return).
 *  - msix_notify may be called on engine threads, on the model's timer
 *    thread (late-interrupt injection) or inside vdevice_bar_write. It must
 *    not block and must not call back into vdevice (QEMU: set a pending bit
 *    and schedule a bottom half that calls msix_notify under the BQL).
 *  - thread_start/thread_stop are called on each model thread before its
 *    first and after its last callback (QEMU: rcu_register_thread and
 *    rcu_unregister_thread). Either may be NULL.
 *  - vdevice_destroy joins all model threads before returning; no callback
 *    runs after it returns.
 *  - Event callbacks (vdevice_subscribe_events) run synchronously on the
 *    thread that produced the event: inside vdevice_bar_read/_write or
 *    vdevice_reset (vCPU threads), on engine threads or on the timer
 *    thread. Like msix_notify they must be quick, must not block on a lock
 *    a vdevice caller may hold (QEMU: not the BQL) and must not call back
 *    into vdevice.
 *  - vram_cpu_dirty runs on the thread that reads DIRTY_COUNT or
 *    DIRTY_WORD of a VRAM log or writes a PT CTRL that starts the logs
 *    (inside vdevice_bar_read/_write of the PF's register BAR; QEMU: a
 *    vCPU holding the BQL), or inside vdevice_dump_state. The model holds
 *    its locks meanwhile: it must not call back into vdevice, and mark is
 *    valid only during the call. It may take a lock only if every caller
 *    of those entry points holds it (QEMU: the BQL).
 *
 * SR-IOV mode (sriov_vfs > 0; SPEC.md "SR-IOV mode")
 * --------------------------------------------------
 *  - dma_read_fn/dma_write_fn/msix_notify_fn replace dma_read/dma_write/
 *    msix_notify and carry the function (VDEVICE_FUNCTION_PF, or
 *    VDEVICE_FUNCTION_VF0 + n); the same thread rules apply. A VF's DMA
 *    must go through that VF's bus-master address space (its requester
 *    ID, the platform IOMMU's translation for it) and fail (non-zero) when
 *    the VF is not enabled or the IOMMU refuses the address: never fall
 *    back to the PF. A VF's MSI-X vectors (0 engine, 1 fault) are sent
 *    through the VF's own MSI-X table.
 *  - vdevice_vf_bar_read/_write/vdevice_vf_flr: any thread, as
 *    vdevice_bar_read/_write and vdevice_reset.
 *  - vf_vram_changed(opaque, vf) runs synchronously on the thread that
 *    enabled or disabled partition vf or reset the device: inside
 *    vdevice_bar_write of the PF's register BAR, or vdevice_reset. It runs
 *    after the change, while the model holds the lock that serialises
 *    slice changes (no other partition can be enabled meanwhile), and the
 *    caller's write completes only when it returns. It must read the new
 *    mapping with vdevice_vf_vram_slice() (the only vdevice call allowed
 *    inside it) and apply it before returning, so that once the host's
 *    write of CTRL completes the VF's BAR no longer reaches a slice
 *    another partition may now be given. It may take a lock (QEMU: the
 *    BQL) only if every call that can trigger it (the PF's register BAR
 *    writes, vdevice_reset) is made holding that lock: QEMU dispatches
 *    them under the BQL, so the callback updates the memory regions
 *    directly. Never called from vdevice_vf_bar_* or vdevice_vf_flr.
 */

#ifndef VDEVICE_H
#define VDEVICE_H

/* GENERATED from vdevice/src/ffi.rs and pci.rs by cbindgen (vdevice/cbindgen.toml).
 * Do not edit: run UPDATE_SPEC=1 cargo test -p vdevice --test c_abi */

#include <stddef.h>
#include <stdint.h>

/* The device; only pointers to it cross the ABI. */
typedef struct VDevice VDevice;

/**
 * VDeviceCallbacks function ids (the *_fn callbacks' `function`): the
 * PF, or VF n as VDEVICE_FUNCTION_VF0 + n.
 */
#define VDEVICE_FUNCTION_PF 0

#define VDEVICE_FUNCTION_VF0 1

/**
 * VDeviceEvent.kind: a register or BAR access was refused. function, bar,
 * addr (the offset), size, write, value: the access; code:
 * ACCESS_ERROR_INFO.REASON; why: the reason in words; partition: the
 * window's or table entry's (or the VF's).
 */
#define VDEVICE_EVENT_REJECTED 1

/**
 * An engine took command `index` of `ring` (opcode: its opcode).
 */
#define VDEVICE_EVENT_CMD_TAKEN 2

/**
 * The command completed (HEAD moved past it).
 */
#define VDEVICE_EVENT_CMD_DONE 3

/**
 * The command faulted the partition: code (FAULT_STATUS.CODE), addr,
 * write; opcode -1 when it was not decoded.
 */
#define VDEVICE_EVENT_CMD_FAULT 4

/**
 * A partition reset ended the command in flight.
 */
#define VDEVICE_EVENT_CMD_ABORTED 5

/**
 * An interrupt cause was set: value is the MSI-X vector, code the cause
 * (VDEVICE_IRQ_CAUSE_*; host causes: aux holds global INTR_STATUS bits),
 * size the fate (VDEVICE_IRQ_*); partition -1 for host vectors.
 */
#define VDEVICE_EVENT_IRQ 6

/**
 * A partition changed state: code the new STATUS.STATE, aux the old.
 */
#define VDEVICE_EVENT_STATE 7

/**
 * A partition reset.
 */
#define VDEVICE_EVENT_PARTITION_RESET 8

/**
 * A whole-device reset.
 */
#define VDEVICE_EVENT_DEVICE_RESET 9

/**
 * A replayable translation fault was queued: addr, write.
 */
#define VDEVICE_EVENT_XLATE_FAULT 10

/**
 * XLATE_RESUME resolved a translation wait: code is its ACTION.
 */
#define VDEVICE_EVENT_XLATE_RESOLVED 11

/**
 * VDEVICE_EVENT_IRQ causes (code).
 */
#define VDEVICE_IRQ_CAUSE_FENCE 0

#define VDEVICE_IRQ_CAUSE_IDLE 1

#define VDEVICE_IRQ_CAUSE_FAULT 2

#define VDEVICE_IRQ_CAUSE_HOST 3

/**
 * Display causes of a partition (aux: its INTR_STATUS bits).
 */
#define VDEVICE_IRQ_CAUSE_DISPLAY 4

/**
 * VDEVICE_EVENT_IRQ fates (size): sent, masked, dropped by DROP_IRQ,
 * held back by LATE_IRQ (an IRQ event with SENT follows when it is sent).
 */
#define VDEVICE_IRQ_SENT 0

#define VDEVICE_IRQ_MASKED 1

#define VDEVICE_IRQ_DROPPED 2

#define VDEVICE_IRQ_LATE 3

#define VENDOR_ID 4660

/**
 * The physical, partitionable GPU.
 */
#define DEVICE_ID 30352

/**
 * A vGPU (one partition) as the mdev frontend presents it to a guest, and
 * the VF device ID in SR-IOV mode: a VF is the same vGPU to its driver.
 */
#define VGPU_DEVICE_ID 30353

#define SUBSYSTEM_VENDOR_ID 4660

#define SUBSYSTEM_ID 1

/**
 * 3D controller (base class 0x03, sub class 0x02, prog-if 0).
 */
#define CLASS_CODE 197120

#define REVISION 1

/**
 * Configuration; vdevice_create() validates it (see SPEC.md "Configuration").
 */
typedef struct VDeviceConfig {
    /**
     * Power of two, 16 MiB .. 64 GiB.
     */
    uint64_t vram_size_bytes;
    /**
     * 1 .. 64.
     */
    uint32_t partitions;
    /**
     * 1 .. 8.
     */
    uint32_t engines;
    /**
     * ENGINE_DELAY's value at creation and after every device reset
     * (SPEC 13): MIN_US and JITTER_US; 0 and 0 for engines at full speed.
     */
    uint32_t engine_delay_us;
    uint32_t engine_jitter_us;
    /**
     * SR-IOV mode: 0 (off) .. partitions. Partition n is VF n (SPEC.md
     * "SR-IOV mode"); needs the *_fn callbacks.
     */
    uint32_t sriov_vfs;
    /**
     * Size of every VF's VRAM BAR: 0 (derived: vram_size_bytes /
     * sriov_vfs rounded down to a power of two) or a power of two, 64 KiB
     * .. vram_size_bytes. Only with sriov_vfs > 0.
     */
    uint64_t vf_vram_bar_size;
} VDeviceConfig;

/**
 * The shim's side: guest memory, MSI-X, thread registration and (SR-IOV
 * mode) the VFs' VRAM BAR mappings. Members that are not set must be NULL
 * (use designated initializers).
 */
typedef struct VDeviceCallbacks {
    void *opaque;
    /**
     * PF DMA, used when dma_read_fn is NULL. Return 0 on success,
     * non-zero on a failed bus transaction.
     */
    int (*dma_read)(void*, uint64_t, void*, uint64_t);
    /**
     * As dma_read, for writes; used when dma_write_fn is NULL.
     */
    int (*dma_write)(void*, uint64_t, const void*, uint64_t);
    /**
     * PF MSI-X, used when msix_notify_fn is NULL.
     */
    void (*msix_notify)(void*, uint32_t);
    void (*thread_start)(void*);
    void (*thread_stop)(void*);
    /**
     * DMA read issued by `function` (VDEVICE_FUNCTION_*): use that
     * function's bus-master address space (a VF's requester ID, which
     * the platform IOMMU translates). Return 0 on success, non-zero on a
     * failed bus transaction (also: a VF that is not enabled). Required
     * with sriov_vfs > 0; when set, dma_read is not used.
     */
    int (*dma_read_fn)(void*, uint32_t, uint64_t, void*, uint64_t);
    /**
     * As dma_read_fn, for writes.
     */
    int (*dma_write_fn)(void*, uint32_t, uint64_t, const void*, uint64_t);
    /**
     * Send vector `vector` of `function`'s MSI-X table (a VF has vectors
     * 0 and 1). Required with sriov_vfs > 0; when set, msix_notify is not
     * used.
     */
    void (*msix_notify_fn)(void*, uint32_t, uint32_t);
    /**
     * SR-IOV mode: VF `vf`'s VRAM BAR started or stopped reaching its
     * slice; read the new mapping with vdevice_vf_vram_slice() and apply
     * it before returning (contract at the top of this header). NULL: the
     * shim traps the whole VF VRAM BAR through vdevice_vf_bar_read/write.
     */
    void (*vf_vram_changed)(void*, uint16_t);
    /**
     * VRAM written by CPUs through the VRAM BAR (the PF's, or a VF's
     * alias of it), for the VRAM dirty logs (SPEC 16):
     * vram_cpu_dirty(opaque, offset, len, mark, ctx) calls mark(ctx, page)
     * for each 4 KiB page of VRAM [offset, offset + len) written since it
     * was last reported (page: its VRAM offset) and forgets it; it may
     * report and forget pages around the range too. Contract at the top
     * of this header. NULL: the logs hold the engine's writes only.
     */
    void (*vram_cpu_dirty)(void*,
                           uint64_t,
                           uint64_t,
                           void(*)(void*, uint64_t),
                           void*);
} VDeviceCallbacks;

/**
 * PCI identity and BAR layout of the physical function; the C ABI hands
 * this very struct to the shim (VDevicePciInfo).
 */
typedef struct VDevicePciInfo {
    uint16_t vendor_id;
    uint16_t device_id;
    uint16_t subsystem_vendor_id;
    uint16_t subsystem_id;
    /**
     * 24 bits: base class, sub class, prog-if.
     */
    uint32_t class_code;
    uint8_t revision;
    /**
     * 32-bit non-prefetchable MMIO, trapped.
     */
    uint8_t reg_bar;
    /**
     * 64-bit prefetchable, backed by vdevice_vram_fd().
     */
    uint8_t vram_bar;
    /**
     * 32-bit MMIO, MSI-X table and PBA only.
     */
    uint8_t msix_bar;
    uint64_t reg_bar_size;
    uint64_t vram_bar_size;
    uint64_t msix_bar_size;
    uint32_t msix_vectors;
    uint32_t msix_table_offset;
    uint32_t msix_pba_offset;
} VDevicePciInfo;

/**
 * SR-IOV mode: what the shim puts in the PF's SR-IOV capability and in
 * each VF's config space (SPEC 15). Every VF has the same BAR layout (the
 * capability has one size per BAR for all VFs). The VF routing (First VF
 * Offset, VF Stride), InitialVFs and ARI are the shim's business. The C
 * ABI hands this very struct to the shim (VDeviceVfInfo).
 */
typedef struct VDeviceVfInfo {
    /**
     * TotalVFs: VF n is partition n, n < total_vfs.
     */
    uint16_t total_vfs;
    /**
     * VF Device ID of the SR-IOV capability (the vendor is the PF's).
     */
    uint16_t vf_device_id;
    uint16_t subsystem_vendor_id;
    uint16_t subsystem_id;
    /**
     * 24 bits: base class, sub class, prog-if.
     */
    uint32_t class_code;
    uint8_t revision;
    /**
     * 32-bit non-prefetchable MMIO: the partition window, trapped
     * (vdevice_vf_bar_read/write) except that its doorbell page may be.
     */
    uint8_t reg_bar;
    /**
     * 64-bit prefetchable: the partition's VRAM slice at offset 0.
     */
    uint8_t vram_bar;
    /**
     * 32-bit MMIO, MSI-X table and PBA only.
     */
    uint8_t msix_bar;
    uint64_t reg_bar_size;
    uint64_t vram_bar_size;
    uint64_t msix_bar_size;
    /**
     * MSI-X vectors of each VF: 0 engine, 1 fault.
     */
    uint32_t msix_vectors;
    uint32_t msix_table_offset;
    uint32_t msix_pba_offset;
} VDeviceVfInfo;

/**
 * One device event. Fields a kind does not use are 0 (-1 for partition,
 * ring and opcode). The strings are valid only during the callback.
 */
typedef struct VDeviceEvent {
    /**
     * VDEVICE_EVENT_*.
     */
    uint32_t kind;
    /**
     * Partition index, or -1.
     */
    int32_t partition;
    /**
     * Ring index, or -1.
     */
    int32_t ring;
    /**
     * Ring slot of the command (its HEAD index).
     */
    uint32_t index;
    /**
     * Command opcode, or -1.
     */
    int32_t opcode;
    /**
     * Kind-specific code: access-error reason, fault code, IRQ cause,
     * new partition state, XLATE_RESUME action.
     */
    uint32_t code;
    /**
     * Kind-specific: old partition state, host INTR_STATUS bits.
     */
    uint32_t aux;
    /**
     * BAR of a refused access.
     */
    uint32_t bar;
    /**
     * Access size in bytes (refused access); IRQ fate (VDEVICE_EVENT_IRQ).
     */
    uint32_t size;
    /**
     * 1 for a write (refused access, faulting access), else 0.
     */
    uint32_t write;
    /**
     * BAR offset of a refused access; fault or translation-fault address.
     */
    uint64_t addr;
    /**
     * Value written by a refused write; MSI-X vector of an IRQ.
     */
    uint64_t value;
    /**
     * Device clock in ns (as TIMESTAMP) when the event happened.
     */
    uint64_t time_ns;
    /**
     * Why the access was refused, in words ("" for other kinds).
     */
    const char *why;
    /**
     * The whole event as one line of text, as the trace decoder prints it.
     */
    const char *text;
    /**
     * Refused access: the function whose BAR it was (VDEVICE_FUNCTION_*).
     */
    uint32_t function;
} VDeviceEvent;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * Create a device. Returns NULL on a bad configuration or a failed memfd,
 * with a NUL-terminated reason in err (if err_len > 0). cb is copied.
 *
 * # Safety
 * `cfg` and `cb` must point to valid structs; `err` to `err_len` bytes or NULL.
 */
VDevice *vdevice_create(const struct VDeviceConfig *cfg,
                        const struct VDeviceCallbacks *cb,
                        char *err,
                        size_t err_len);

/**
 * Stop and join the model's threads, then free the device.
 *
 * # Safety
 * `dev` must come from `vdevice_create` and not be used afterwards.
 */
void vdevice_destroy(VDevice *dev);

/**
 * PCI identity and BAR layout of the physical function.
 *
 * # Safety
 * `dev` valid, `out` writable.
 */
void vdevice_pci_info(const VDevice *dev, struct VDevicePciInfo *out);

/**
 * BAR accesses of 1, 2, 4 or 8 bytes. Accesses the register table does
 * not define (unknown offset, wrong width, misaligned) read as all ones,
 * are ignored on write and are logged in the ACCESS_ERROR registers; they
 * never fail. size must be 1, 2, 4 or 8.
 *
 * # Safety
 * `dev` valid.
 */
uint64_t vdevice_bar_read(VDevice *dev,
                          uint32_t bar,
                          uint64_t offset,
                          uint32_t size);

/**
 * As vdevice_bar_read().
 *
 * # Safety
 * `dev` valid.
 */
void vdevice_bar_write(VDevice *dev,
                       uint32_t bar,
                       uint64_t offset,
                       uint64_t value,
                       uint32_t size);

/**
 * SR-IOV mode: the VFs' identity and BAR layout for the PF's SR-IOV
 * capability and the VFs' config space. Returns 0, or -1 (out untouched)
 * when sriov_vfs is 0.
 *
 * # Safety
 * `dev` valid, `out` writable.
 */
int vdevice_vf_info(const VDevice *dev, struct VDeviceVfInfo *out);

/**
 * An access of 1, 2, 4 or 8 bytes to BAR `bar` of VF `vf` (SR-IOV mode):
 * the register BAR is partition vf's window, the VRAM BAR its slice (SPEC
 * "SR-IOV mode"). As vdevice_bar_read, refused accesses read all ones and
 * are logged; a VF that does not exist is refused too. Same threading as
 * vdevice_bar_read; never calls vf_vram_changed.
 *
 * # Safety
 * `dev` valid.
 */
uint64_t vdevice_vf_bar_read(VDevice *dev,
                             uint16_t vf,
                             uint32_t bar,
                             uint64_t offset,
                             uint32_t size);

/**
 * As vdevice_vf_bar_read().
 *
 * # Safety
 * `dev` valid.
 */
void vdevice_vf_bar_write(VDevice *dev,
                          uint16_t vf,
                          uint32_t bar,
                          uint64_t offset,
                          uint64_t value,
                          uint32_t size);

/**
 * Function-level reset of VF `vf` (its FLR, and the reset QEMU does when
 * VFs are enabled or disabled): a partition reset of partition vf. The
 * PF, the partition table and other VFs are untouched; the slice stays
 * mapped (no vf_vram_changed). Waits, as vdevice_reset, only for an
 * engine's current chunk. Returns 0, or -1 if there is no VF vf.
 *
 * # Safety
 * `dev` valid.
 */
int vdevice_vf_flr(VDevice *dev, uint16_t vf);

/**
 * Where VF `vf`'s VRAM BAR leads now. Returns 1 with *vram_offset and
 * *size set when BAR bytes 0 .. *size are VRAM *vram_offset .. + *size
 * (an offset into vdevice_vram_fd(); *size <= the VF VRAM BAR size);
 * 0 when the BAR reaches no VRAM (the partition is disabled); -1 if
 * there is no VF vf. Callable from inside vf_vram_changed.
 *
 * # Safety
 * `dev` valid; `vram_offset` and `size` writable.
 */
int vdevice_vf_vram_slice(const VDevice *dev,
                          uint16_t vf,
                          uint64_t *vram_offset,
                          uint64_t *size);

/**
 * Whole-device reset (PCI reset): quiesce engines, registers to reset
 * values, scrub VRAM.
 *
 * # Safety
 * `dev` valid.
 */
void vdevice_reset(VDevice *dev);

/**
 * VRAM backing: a memfd the shim maps MAP_SHARED as the VRAM BAR (zero-copy).
 *
 * # Safety
 * `dev` valid.
 */
int vdevice_vram_fd(const VDevice *dev);

/**
 * The model's own mapping of the VRAM memfd.
 *
 * # Safety
 * `dev` valid.
 */
void *vdevice_vram_ptr(const VDevice *dev);

/**
 * VRAM size in bytes.
 *
 * # Safety
 * `dev` valid.
 */
uint64_t vdevice_vram_size(const VDevice *dev);

/**
 * Human-readable state dump (registers decoded by name, partitions,
 * engines). Writes at most len bytes including a NUL; returns the full
 * length without the NUL, so a caller can retry with a bigger buffer.
 *
 * # Safety
 * `dev` valid; `buf` has `len` writable bytes or is NULL with len 0.
 */
size_t vdevice_dump_state(const VDevice *dev, char *buf, size_t len);

/**
 * Version string of the model, e.g. "vdevice 0.1.0". Static storage.
 */
const char *vdevice_version(void);

/**
 * Subscribe to device events: `cb(opaque, event)` runs for each event,
 * synchronously on the thread that produced it (a thread inside
 * vdevice_bar_read/vdevice_bar_write/vdevice_reset, an engine thread, the
 * timer thread). It must be quick and thread-safe, and must not call into
 * vdevice (QEMU: no BQL; format, log or copy into a buffer). The event
 * and its strings are valid only during the call. Returns a non-zero id
 * for vdevice_unsubscribe_events(), or 0 if cb is NULL. With no
 * subscriber, events cost nothing.
 *
 * # Safety
 * `dev` valid; `cb` callable from any thread with `opaque` until
 * vdevice_unsubscribe_events() or vdevice_destroy() returns.
 */
uint64_t vdevice_subscribe_events(VDevice *dev,
                                  void (*cb)(void*, const struct VDeviceEvent*),
                                  void *opaque);

/**
 * End a subscription. When it returns, the callback is not running and
 * will not run again. Must not be called from inside the callback.
 * Returns 0, or -1 if `id` is not subscribed.
 *
 * # Safety
 * `dev` valid.
 */
int vdevice_unsubscribe_events(VDevice *dev, uint64_t id);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* VDEVICE_H */
