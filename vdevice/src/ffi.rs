//! The C ABI the QEMU shim links against. Thin: it converts types and
//! forwards to [`Device`]. include/vdevice.h is generated from this file and
//! pci.rs by cbindgen (vdevice/cbindgen.toml, which also holds the header's
//! contract on threads and locking); vdevice/tests/c_abi.rs checks it.

use crate::config::DeviceConfig;
use crate::pci::{PciInfo, VfPciInfo};
use crate::{Device, Dma, DmaError, Function, Irq, VfSliceNotify, VramWriteLog};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::Arc;

/// Configuration; vdevice_create() validates it (see SPEC.md "Configuration").
#[repr(C)]
pub struct VDeviceConfig {
    /// Power of two, 16 MiB .. 64 GiB.
    pub vram_size_bytes: u64,
    /// 1 .. 64.
    pub partitions: u32,
    /// 1 .. 8.
    pub engines: u32,
    /// ENGINE_DELAY's value at creation and after every device reset
    /// (SPEC 13): MIN_US and JITTER_US; 0 and 0 for engines at full speed.
    pub engine_delay_us: u32,
    pub engine_jitter_us: u32,
    /// SR-IOV mode: 0 (off) .. partitions. Partition n is VF n (SPEC.md
    /// "SR-IOV mode"); needs the *_fn callbacks.
    pub sriov_vfs: u32,
    /// Size of every VF's VRAM BAR: 0 (derived: vram_size_bytes /
    /// sriov_vfs rounded down to a power of two) or a power of two, 64 KiB
    /// .. vram_size_bytes. Only with sriov_vfs > 0.
    pub vf_vram_bar_size: u64,
}

/// VDeviceCallbacks function ids (the *_fn callbacks' `function`): the
/// PF, or VF n as VDEVICE_FUNCTION_VF0 + n.
pub const VDEVICE_FUNCTION_PF: u32 = 0;
pub const VDEVICE_FUNCTION_VF0: u32 = 1;

/// The shim's side: guest memory, MSI-X, thread registration and (SR-IOV
/// mode) the VFs' VRAM BAR mappings. Members that are not set must be NULL
/// (use designated initializers).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct VDeviceCallbacks {
    pub opaque: *mut c_void,
    /// PF DMA, used when dma_read_fn is NULL. Return 0 on success,
    /// non-zero on a failed bus transaction.
    pub dma_read: Option<unsafe extern "C" fn(*mut c_void, u64, *mut c_void, u64) -> c_int>,
    /// As dma_read, for writes; used when dma_write_fn is NULL.
    pub dma_write: Option<unsafe extern "C" fn(*mut c_void, u64, *const c_void, u64) -> c_int>,
    /// PF MSI-X, used when msix_notify_fn is NULL.
    pub msix_notify: Option<unsafe extern "C" fn(*mut c_void, u32)>,
    pub thread_start: Option<unsafe extern "C" fn(*mut c_void)>,
    pub thread_stop: Option<unsafe extern "C" fn(*mut c_void)>,
    /// DMA read issued by `function` (VDEVICE_FUNCTION_*): use that
    /// function's bus-master address space (a VF's requester ID, which
    /// the platform IOMMU translates). Return 0 on success, non-zero on a
    /// failed bus transaction (also: a VF that is not enabled). Required
    /// with sriov_vfs > 0; when set, dma_read is not used.
    pub dma_read_fn: Option<unsafe extern "C" fn(*mut c_void, u32, u64, *mut c_void, u64) -> c_int>,
    /// As dma_read_fn, for writes.
    pub dma_write_fn:
        Option<unsafe extern "C" fn(*mut c_void, u32, u64, *const c_void, u64) -> c_int>,
    /// Send vector `vector` of `function`'s MSI-X table (a VF has vectors
    /// 0 and 1). Required with sriov_vfs > 0; when set, msix_notify is not
    /// used.
    pub msix_notify_fn: Option<unsafe extern "C" fn(*mut c_void, u32, u32)>,
    /// SR-IOV mode: VF `vf`'s VRAM BAR started or stopped reaching its
    /// slice; read the new mapping with vdevice_vf_vram_slice() and apply
    /// it before returning (contract at the top of this header). NULL: the
    /// shim traps the whole VF VRAM BAR through vdevice_vf_bar_read/write.
    pub vf_vram_changed: Option<unsafe extern "C" fn(*mut c_void, u16)>,
    /// VRAM written by CPUs through the VRAM BAR (the PF's, or a VF's
    /// alias of it), for the VRAM dirty logs (SPEC 16):
    /// vram_cpu_dirty(opaque, offset, len, mark, ctx) calls mark(ctx, page)
    /// for each 4 KiB page of VRAM [offset, offset + len) written since it
    /// was last reported (page: its VRAM offset) and forgets it; it may
    /// report and forget pages around the range too. Contract at the top
    /// of this header. NULL: the logs hold the engine's writes only.
    pub vram_cpu_dirty: Option<
        unsafe extern "C" fn(
            *mut c_void,
            u64,
            u64,
            unsafe extern "C" fn(*mut c_void, u64),
            *mut c_void,
        ),
    >,
}

/// The shim's callbacks; the header obliges them to be thread-safe.
struct Callbacks(VDeviceCallbacks);
// SAFETY: the C side promises the callbacks and opaque may be used from any thread.
unsafe impl Send for Callbacks {}
unsafe impl Sync for Callbacks {}

impl Dma for Callbacks {
    fn read(&self, func: Function, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let (ptr, len) = (buf.as_mut_ptr().cast(), buf.len() as u64);
        // SAFETY: buf is valid for len bytes for the duration of the call.
        let r = match (self.0.dma_read_fn, self.0.dma_read, func) {
            (Some(f), _, _) => unsafe { f(self.0.opaque, func.id(), addr, ptr, len) },
            (None, Some(f), Function::Pf) => unsafe { f(self.0.opaque, addr, ptr, len) },
            _ => return Err(DmaError),
        };
        (r == 0).then_some(()).ok_or(DmaError)
    }

    fn write(&self, func: Function, addr: u64, buf: &[u8]) -> Result<(), DmaError> {
        let (ptr, len) = (buf.as_ptr().cast(), buf.len() as u64);
        // SAFETY: as above.
        let r = match (self.0.dma_write_fn, self.0.dma_write, func) {
            (Some(f), _, _) => unsafe { f(self.0.opaque, func.id(), addr, ptr, len) },
            (None, Some(f), Function::Pf) => unsafe { f(self.0.opaque, addr, ptr, len) },
            _ => return Err(DmaError),
        };
        (r == 0).then_some(()).ok_or(DmaError)
    }

    fn thread_start(&self) {
        if let Some(f) = self.0.thread_start {
            // SAFETY: C callback with its own opaque.
            unsafe { f(self.0.opaque) }
        }
    }

    fn thread_stop(&self) {
        if let Some(f) = self.0.thread_stop {
            // SAFETY: C callback with its own opaque.
            unsafe { f(self.0.opaque) }
        }
    }
}

impl Irq for Callbacks {
    fn notify(&self, func: Function, vector: u32) {
        match (self.0.msix_notify_fn, self.0.msix_notify, func) {
            // SAFETY: C callbacks with their own opaque.
            (Some(f), _, _) => unsafe { f(self.0.opaque, func.id(), vector) },
            (None, Some(f), Function::Pf) => unsafe { f(self.0.opaque, vector) },
            // vdevice_create refused VFs without msix_notify_fn.
            _ => {}
        }
    }
}

impl VfSliceNotify for Callbacks {
    fn vf_vram_changed(&self, vf: u16) {
        if let Some(f) = self.0.vf_vram_changed {
            // SAFETY: C callback with its own opaque.
            unsafe { f(self.0.opaque, vf) }
        }
    }
}

impl VramWriteLog for Callbacks {
    fn take_cpu_dirty(&self, offset: u64, len: u64, mark: &mut dyn FnMut(u64)) {
        unsafe extern "C" fn one_page(ctx: *mut c_void, page: u64) {
            // SAFETY: ctx is the `&mut &mut dyn FnMut` below, alive for the call.
            let mark = unsafe { &mut *ctx.cast::<&mut dyn FnMut(u64)>() };
            mark(page);
        }
        if let Some(f) = self.0.vram_cpu_dirty {
            let mut mark = mark;
            let ctx = std::ptr::addr_of_mut!(mark).cast::<c_void>();
            // SAFETY: C callback with its own opaque; ctx outlives the call.
            unsafe { f(self.0.opaque, offset, len, one_page, ctx) }
        }
    }
}

fn write_err(err: *mut c_char, err_len: usize, msg: &str) {
    if err.is_null() || err_len == 0 {
        return;
    }
    let n = msg.len().min(err_len - 1);
    // SAFETY: caller gave err_len writable bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(msg.as_ptr(), err.cast::<u8>(), n);
        *err.add(n) = 0;
    }
}

/// Create a device. Returns NULL on a bad configuration or a failed memfd,
/// with a NUL-terminated reason in err (if err_len > 0). cb is copied.
///
/// # Safety
/// `cfg` and `cb` must point to valid structs; `err` to `err_len` bytes or NULL.
#[no_mangle]
pub unsafe extern "C" fn vdevice_create(
    cfg: *const VDeviceConfig,
    cb: *const VDeviceCallbacks,
    err: *mut c_char,
    err_len: usize,
) -> *mut Device {
    if cfg.is_null() || cb.is_null() {
        write_err(err, err_len, "vdevice_create: NULL config or callbacks");
        return std::ptr::null_mut();
    }
    let (c, cb) = (&*cfg, *cb);
    let config = DeviceConfig {
        vram_size_bytes: c.vram_size_bytes,
        partitions: c.partitions as usize,
        engines: c.engines as usize,
        sriov_vfs: c.sriov_vfs as usize,
        vf_vram_bar_size: c.vf_vram_bar_size,
    };
    if c.sriov_vfs > 0
        && (cb.dma_read_fn.is_none() || cb.dma_write_fn.is_none() || cb.msix_notify_fn.is_none())
    {
        write_err(
            err,
            err_len,
            "sriov_vfs needs the dma_read_fn, dma_write_fn and msix_notify_fn callbacks (a VF's DMA and interrupts say which function they belong to)",
        );
        return std::ptr::null_mut();
    }
    let host = Arc::new(Callbacks(cb));
    let host_log = host.clone() as Arc<dyn VramWriteLog>;
    let notify = cb
        .vf_vram_changed
        .map(|_| host.clone() as Arc<dyn VfSliceNotify>);
    match Device::with_vf_slice_notify(config, host.clone(), host, notify) {
        Ok(d) => {
            if cb.vram_cpu_dirty.is_some() {
                d.set_vram_write_log(host_log);
            }
            d.set_engine_delay_reset(
                crate::regs::EngineDelay::new()
                    .with_min_us(c.engine_delay_us)
                    .with_jitter_us(c.engine_jitter_us),
            );
            Box::into_raw(Box::new(d))
        }
        Err(e) => {
            write_err(err, err_len, &e.to_string());
            std::ptr::null_mut()
        }
    }
}

/// Stop and join the model's threads, then free the device.
///
/// # Safety
/// `dev` must come from `vdevice_create` and not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn vdevice_destroy(dev: *mut Device) {
    if !dev.is_null() {
        drop(Box::from_raw(dev));
    }
}

/// PCI identity and BAR layout of the physical function.
///
/// # Safety
/// `dev` valid, `out` writable.
#[no_mangle]
pub unsafe extern "C" fn vdevice_pci_info(dev: *const Device, out: *mut PciInfo) {
    *out = (*dev).pci_info();
}

/// BAR accesses of 1, 2, 4 or 8 bytes. Accesses the register table does
/// not define (unknown offset, wrong width, misaligned) read as all ones,
/// are ignored on write and are logged in the ACCESS_ERROR registers; they
/// never fail. size must be 1, 2, 4 or 8.
///
/// # Safety
/// `dev` valid.
#[no_mangle]
pub unsafe extern "C" fn vdevice_bar_read(
    dev: *mut Device,
    bar: u32,
    offset: u64,
    size: u32,
) -> u64 {
    (*dev).read(bar.min(255) as u8, offset, size)
}

/// As vdevice_bar_read().
///
/// # Safety
/// `dev` valid.
#[no_mangle]
pub unsafe extern "C" fn vdevice_bar_write(
    dev: *mut Device,
    bar: u32,
    offset: u64,
    value: u64,
    size: u32,
) {
    (*dev).write(bar.min(255) as u8, offset, value, size)
}

/// SR-IOV mode: the VFs' identity and BAR layout for the PF's SR-IOV
/// capability and the VFs' config space. Returns 0, or -1 (out untouched)
/// when sriov_vfs is 0.
///
/// # Safety
/// `dev` valid, `out` writable.
#[no_mangle]
pub unsafe extern "C" fn vdevice_vf_info(dev: *const Device, out: *mut VfPciInfo) -> c_int {
    match (*dev).vf_info() {
        Some(info) => {
            *out = info;
            0
        }
        None => -1,
    }
}

/// An access of 1, 2, 4 or 8 bytes to BAR `bar` of VF `vf` (SR-IOV mode):
/// the register BAR is partition vf's window, the VRAM BAR its slice (SPEC
/// "SR-IOV mode"). As vdevice_bar_read, refused accesses read all ones and
/// are logged; a VF that does not exist is refused too. Same threading as
/// vdevice_bar_read; never calls vf_vram_changed.
///
/// # Safety
/// `dev` valid.
#[no_mangle]
pub unsafe extern "C" fn vdevice_vf_bar_read(
    dev: *mut Device,
    vf: u16,
    bar: u32,
    offset: u64,
    size: u32,
) -> u64 {
    (*dev).vf_read(vf, bar.min(255) as u8, offset, size)
}

/// As vdevice_vf_bar_read().
///
/// # Safety
/// `dev` valid.
#[no_mangle]
pub unsafe extern "C" fn vdevice_vf_bar_write(
    dev: *mut Device,
    vf: u16,
    bar: u32,
    offset: u64,
    value: u64,
    size: u32,
) {
    (*dev).vf_write(vf, bar.min(255) as u8, offset, value, size)
}

/// Function-level reset of VF `vf` (its FLR, and the reset QEMU does when
/// VFs are enabled or disabled): a partition reset of partition vf. The
/// PF, the partition table and other VFs are untouched; the slice stays
/// mapped (no vf_vram_changed). Waits, as vdevice_reset, only for an
/// engine's current chunk. Returns 0, or -1 if there is no VF vf.
///
/// # Safety
/// `dev` valid.
#[no_mangle]
pub unsafe extern "C" fn vdevice_vf_flr(dev: *mut Device, vf: u16) -> c_int {
    if (*dev).vf_flr(vf) {
        0
    } else {
        -1
    }
}

/// Where VF `vf`'s VRAM BAR leads now. Returns 1 with *vram_offset and
/// *size set when BAR bytes 0 .. *size are VRAM *vram_offset .. + *size
/// (an offset into vdevice_vram_fd(); *size <= the VF VRAM BAR size);
/// 0 when the BAR reaches no VRAM (the partition is disabled); -1 if
/// there is no VF vf. Callable from inside vf_vram_changed.
///
/// # Safety
/// `dev` valid; `vram_offset` and `size` writable.
#[no_mangle]
pub unsafe extern "C" fn vdevice_vf_vram_slice(
    dev: *const Device,
    vf: u16,
    vram_offset: *mut u64,
    size: *mut u64,
) -> c_int {
    let d = &*dev;
    if usize::from(vf) >= d.config().sriov_vfs {
        return -1;
    }
    match d.vf_vram_slice(vf) {
        Some(s) => {
            *vram_offset = s.base;
            *size = s.size_bytes;
            1
        }
        None => 0,
    }
}

/// Whole-device reset (PCI reset): quiesce engines, registers to reset
/// values, scrub VRAM.
///
/// # Safety
/// `dev` valid.
#[no_mangle]
pub unsafe extern "C" fn vdevice_reset(dev: *mut Device) {
    (*dev).reset()
}

/// VRAM backing: a memfd the shim maps MAP_SHARED as the VRAM BAR (zero-copy).
///
/// # Safety
/// `dev` valid.
#[no_mangle]
pub unsafe extern "C" fn vdevice_vram_fd(dev: *const Device) -> c_int {
    (*dev).vram().fd()
}

/// The model's own mapping of the VRAM memfd.
///
/// # Safety
/// `dev` valid.
#[no_mangle]
pub unsafe extern "C" fn vdevice_vram_ptr(dev: *const Device) -> *mut c_void {
    (*dev).vram().as_ptr().cast()
}

/// VRAM size in bytes.
///
/// # Safety
/// `dev` valid.
#[no_mangle]
pub unsafe extern "C" fn vdevice_vram_size(dev: *const Device) -> u64 {
    (*dev).vram().size()
}

/// Human-readable state dump (registers decoded by name, partitions,
/// engines). Writes at most len bytes including a NUL; returns the full
/// length without the NUL, so a caller can retry with a bigger buffer.
///
/// # Safety
/// `dev` valid; `buf` has `len` writable bytes or is NULL with len 0.
#[no_mangle]
pub unsafe extern "C" fn vdevice_dump_state(
    dev: *const Device,
    buf: *mut c_char,
    len: usize,
) -> usize {
    let s = (*dev).dump();
    write_err(buf, len, &s);
    s.len()
}

/// Version string of the model, e.g. "vdevice 0.1.0". Static storage.
#[no_mangle]
pub extern "C" fn vdevice_version() -> *const c_char {
    concat!("vdevice ", env!("CARGO_PKG_VERSION"), "\0")
        .as_ptr()
        .cast()
}

// ---------------------------------------------------------------------------
// Device events (vdevice::events): why an access was refused, commands
// taken, done and faulted, interrupts, partition states, translation faults
// ---------------------------------------------------------------------------

/// VDeviceEvent.kind: a register or BAR access was refused. function, bar,
/// addr (the offset), size, write, value: the access; code:
/// ACCESS_ERROR_INFO.REASON; why: the reason in words; partition: the
/// window's or table entry's (or the VF's).
pub const VDEVICE_EVENT_REJECTED: u32 = 1;
/// An engine took command `index` of `ring` (opcode: its opcode).
pub const VDEVICE_EVENT_CMD_TAKEN: u32 = 2;
/// The command completed (HEAD moved past it).
pub const VDEVICE_EVENT_CMD_DONE: u32 = 3;
/// The command faulted the partition: code (FAULT_STATUS.CODE), addr,
/// write; opcode -1 when it was not decoded.
pub const VDEVICE_EVENT_CMD_FAULT: u32 = 4;
/// A partition reset ended the command in flight.
pub const VDEVICE_EVENT_CMD_ABORTED: u32 = 5;
/// An interrupt cause was set: value is the MSI-X vector, code the cause
/// (VDEVICE_IRQ_CAUSE_*; host causes: aux holds global INTR_STATUS bits),
/// size the fate (VDEVICE_IRQ_*); partition -1 for host vectors.
pub const VDEVICE_EVENT_IRQ: u32 = 6;
/// A partition changed state: code the new STATUS.STATE, aux the old.
pub const VDEVICE_EVENT_STATE: u32 = 7;
/// A partition reset.
pub const VDEVICE_EVENT_PARTITION_RESET: u32 = 8;
/// A whole-device reset.
pub const VDEVICE_EVENT_DEVICE_RESET: u32 = 9;
/// A replayable translation fault was queued: addr, write.
pub const VDEVICE_EVENT_XLATE_FAULT: u32 = 10;
/// XLATE_RESUME resolved a translation wait: code is its ACTION.
pub const VDEVICE_EVENT_XLATE_RESOLVED: u32 = 11;

/// VDEVICE_EVENT_IRQ causes (code).
pub const VDEVICE_IRQ_CAUSE_FENCE: u32 = 0;
pub const VDEVICE_IRQ_CAUSE_IDLE: u32 = 1;
pub const VDEVICE_IRQ_CAUSE_FAULT: u32 = 2;
pub const VDEVICE_IRQ_CAUSE_HOST: u32 = 3;
/// Display causes of a partition (aux: its INTR_STATUS bits).
pub const VDEVICE_IRQ_CAUSE_DISPLAY: u32 = 4;
/// VDEVICE_EVENT_IRQ fates (size): sent, masked, dropped by DROP_IRQ,
/// held back by LATE_IRQ (an IRQ event with SENT follows when it is sent).
pub const VDEVICE_IRQ_SENT: u32 = 0;
pub const VDEVICE_IRQ_MASKED: u32 = 1;
pub const VDEVICE_IRQ_DROPPED: u32 = 2;
pub const VDEVICE_IRQ_LATE: u32 = 3;

/// One device event. Fields a kind does not use are 0 (-1 for partition,
/// ring and opcode). The strings are valid only during the callback.
#[repr(C)]
pub struct VDeviceEvent {
    /// VDEVICE_EVENT_*.
    pub kind: u32,
    /// Partition index, or -1.
    pub partition: i32,
    /// Ring index, or -1.
    pub ring: i32,
    /// Ring slot of the command (its HEAD index).
    pub index: u32,
    /// Command opcode, or -1.
    pub opcode: i32,
    /// Kind-specific code: access-error reason, fault code, IRQ cause,
    /// new partition state, XLATE_RESUME action.
    pub code: u32,
    /// Kind-specific: old partition state, host INTR_STATUS bits.
    pub aux: u32,
    /// BAR of a refused access.
    pub bar: u32,
    /// Access size in bytes (refused access); IRQ fate (VDEVICE_EVENT_IRQ).
    pub size: u32,
    /// 1 for a write (refused access, faulting access), else 0.
    pub write: u32,
    /// BAR offset of a refused access; fault or translation-fault address.
    pub addr: u64,
    /// Value written by a refused write; MSI-X vector of an IRQ.
    pub value: u64,
    /// Device clock in ns (as TIMESTAMP) when the event happened.
    pub time_ns: u64,
    /// Why the access was refused, in words ("" for other kinds).
    pub why: *const c_char,
    /// The whole event as one line of text, as the trace decoder prints it.
    pub text: *const c_char,
    /// Refused access: the function whose BAR it was (VDEVICE_FUNCTION_*).
    pub function: u32,
}

fn event_to_c(e: &crate::events::Event, why: &CStr, text: &CStr) -> VDeviceEvent {
    use crate::events::{EventKind as K, IrqCause, IrqFate};
    let mut c = VDeviceEvent {
        kind: 0,
        partition: e.kind.partition().map_or(-1, |p| p as i32),
        ring: -1,
        index: 0,
        opcode: -1,
        code: 0,
        aux: 0,
        bar: 0,
        size: 0,
        write: 0,
        addr: 0,
        value: 0,
        time_ns: e.time_ns,
        why: why.as_ptr(),
        text: text.as_ptr(),
        function: 0,
    };
    let cmd =
        |c: &mut VDeviceEvent, ring: usize, index: u32, op: Option<crate::command::Opcode>| {
            c.ring = ring as i32;
            c.index = index;
            c.opcode = op.map_or(-1, |o| o as i32);
        };
    match e.kind {
        K::Rejected {
            function,
            bar,
            offset,
            size,
            write,
            value,
            code,
            ..
        } => {
            c.kind = VDEVICE_EVENT_REJECTED;
            c.function = function.id();
            c.bar = bar.into();
            c.addr = offset;
            c.size = size;
            c.write = write.into();
            c.value = value;
            c.code = code.into_bits().into();
        }
        K::CmdTaken {
            ring,
            index,
            opcode,
            ..
        } => {
            c.kind = VDEVICE_EVENT_CMD_TAKEN;
            cmd(&mut c, ring, index, Some(opcode));
        }
        K::CmdDone {
            ring,
            index,
            opcode,
            ..
        } => {
            c.kind = VDEVICE_EVENT_CMD_DONE;
            cmd(&mut c, ring, index, Some(opcode));
        }
        K::CmdFault {
            ring,
            index,
            opcode,
            code,
            addr,
            write,
            ..
        } => {
            c.kind = VDEVICE_EVENT_CMD_FAULT;
            cmd(&mut c, ring, index, opcode);
            c.code = code.into_bits().into();
            c.addr = addr;
            c.write = write.into();
        }
        K::CmdAborted {
            ring,
            index,
            opcode,
            ..
        } => {
            c.kind = VDEVICE_EVENT_CMD_ABORTED;
            cmd(&mut c, ring, index, opcode);
        }
        K::Irq {
            vector,
            cause,
            fate,
            ..
        } => {
            c.kind = VDEVICE_EVENT_IRQ;
            c.value = vector.into();
            (c.code, c.aux) = match cause {
                IrqCause::Fence => (VDEVICE_IRQ_CAUSE_FENCE, 0),
                IrqCause::Idle => (VDEVICE_IRQ_CAUSE_IDLE, 0),
                IrqCause::Fault => (VDEVICE_IRQ_CAUSE_FAULT, 0),
                IrqCause::Host(bits) => (VDEVICE_IRQ_CAUSE_HOST, bits),
                IrqCause::Display(bits) => (VDEVICE_IRQ_CAUSE_DISPLAY, bits),
            };
            c.size = match fate {
                IrqFate::Sent => VDEVICE_IRQ_SENT,
                IrqFate::Masked => VDEVICE_IRQ_MASKED,
                IrqFate::Dropped => VDEVICE_IRQ_DROPPED,
                IrqFate::Late => VDEVICE_IRQ_LATE,
            };
        }
        K::State { from, to, .. } => {
            c.kind = VDEVICE_EVENT_STATE;
            c.code = to.into_bits().into();
            c.aux = from.into_bits().into();
        }
        K::PartitionReset { .. } => c.kind = VDEVICE_EVENT_PARTITION_RESET,
        K::DeviceReset => c.kind = VDEVICE_EVENT_DEVICE_RESET,
        K::XlateFault { addr, write, .. } => {
            c.kind = VDEVICE_EVENT_XLATE_FAULT;
            c.addr = addr;
            c.write = write.into();
        }
        K::XlateResolved { action, .. } => {
            c.kind = VDEVICE_EVENT_XLATE_RESOLVED;
            c.code = action.into_bits().into();
        }
    }
    c
}

/// The event a C [`VDeviceEvent`] describes: the inverse of what a
/// subscriber receives, for a consumer on the far side of the C ABI (the
/// trace plugin gets events from the QEMU shim this way). None when the
/// kind or a field is not one the model produces.
///
/// # Safety
/// `c.why` must be NULL or a valid NUL-terminated string.
pub unsafe fn event_from_c(c: &VDeviceEvent) -> Option<crate::events::Event> {
    use crate::command::Opcode;
    use crate::events::{Event, EventKind as K, IrqCause, IrqFate};
    use crate::regs::{AccessError, FaultCode, PartitionState, ResumeAction};
    let partition = usize::try_from(c.partition).ok();
    let ring = usize::try_from(c.ring).ok();
    let opcode = u8::try_from(c.opcode).ok().and_then(Opcode::from_bits);
    let code = u8::try_from(c.code).ok();
    let aux = u8::try_from(c.aux).ok();
    let write = c.write != 0;
    let kind = match c.kind {
        VDEVICE_EVENT_REJECTED => K::Rejected {
            function: crate::Function::from_id(c.function)?,
            bar: u8::try_from(c.bar).ok()?,
            offset: c.addr,
            size: c.size,
            write,
            value: c.value,
            code: AccessError::from_bits(code?),
            why: if c.why.is_null() {
                String::new()
            } else {
                CStr::from_ptr(c.why).to_string_lossy().into_owned()
            },
        },
        VDEVICE_EVENT_CMD_TAKEN => K::CmdTaken {
            partition: partition?,
            ring: ring?,
            index: c.index,
            opcode: opcode?,
        },
        VDEVICE_EVENT_CMD_DONE => K::CmdDone {
            partition: partition?,
            ring: ring?,
            index: c.index,
            opcode: opcode?,
        },
        VDEVICE_EVENT_CMD_FAULT => K::CmdFault {
            partition: partition?,
            ring: ring?,
            index: c.index,
            opcode,
            code: FaultCode::from_bits(code?),
            addr: c.addr,
            write,
        },
        VDEVICE_EVENT_CMD_ABORTED => K::CmdAborted {
            partition: partition?,
            ring: ring?,
            index: c.index,
            opcode,
        },
        VDEVICE_EVENT_IRQ => K::Irq {
            vector: u32::try_from(c.value).ok()?,
            partition,
            cause: match c.code {
                VDEVICE_IRQ_CAUSE_FENCE => IrqCause::Fence,
                VDEVICE_IRQ_CAUSE_IDLE => IrqCause::Idle,
                VDEVICE_IRQ_CAUSE_FAULT => IrqCause::Fault,
                VDEVICE_IRQ_CAUSE_HOST => IrqCause::Host(c.aux),
                VDEVICE_IRQ_CAUSE_DISPLAY => IrqCause::Display(c.aux),
                _ => return None,
            },
            fate: match c.size {
                VDEVICE_IRQ_SENT => IrqFate::Sent,
                VDEVICE_IRQ_MASKED => IrqFate::Masked,
                VDEVICE_IRQ_DROPPED => IrqFate::Dropped,
                VDEVICE_IRQ_LATE => IrqFate::Late,
                _ => return None,
            },
        },
        VDEVICE_EVENT_STATE => K::State {
            partition: partition?,
            from: PartitionState::from_bits(aux?),
            to: PartitionState::from_bits(code?),
        },
        VDEVICE_EVENT_PARTITION_RESET => K::PartitionReset {
            partition: partition?,
        },
        VDEVICE_EVENT_DEVICE_RESET => K::DeviceReset,
        VDEVICE_EVENT_XLATE_FAULT => K::XlateFault {
            partition: partition?,
            addr: c.addr,
            write,
        },
        VDEVICE_EVENT_XLATE_RESOLVED => K::XlateResolved {
            partition: partition?,
            action: ResumeAction::from_bits(code?),
        },
        _ => return None,
    };
    Some(Event {
        time_ns: c.time_ns,
        kind,
    })
}

/// A C subscriber: its callback and opaque pointer.
struct EventSink {
    cb: unsafe extern "C" fn(*mut c_void, *const VDeviceEvent),
    opaque: *mut c_void,
}
// SAFETY: the header obliges the callback to be callable from any thread.
unsafe impl Send for EventSink {}
unsafe impl Sync for EventSink {}

impl EventSink {
    fn call(&self, e: &crate::events::Event) {
        let why = match &e.kind {
            crate::events::EventKind::Rejected { why, .. } => why.clone(),
            _ => String::new(),
        };
        let why = CString::new(why).unwrap_or_default();
        let text = CString::new(e.kind.to_string()).unwrap_or_default();
        let c = event_to_c(e, &why, &text);
        // SAFETY: C callback with its own opaque; `c` and its strings live
        // until it returns.
        unsafe { (self.cb)(self.opaque, &c) }
    }
}

/// Subscribe to device events: `cb(opaque, event)` runs for each event,
/// synchronously on the thread that produced it (a thread inside
/// vdevice_bar_read/vdevice_bar_write/vdevice_reset, an engine thread, the
/// timer thread). It must be quick and thread-safe, and must not call into
/// vdevice (QEMU: no BQL; format, log or copy into a buffer). The event
/// and its strings are valid only during the call. Returns a non-zero id
/// for vdevice_unsubscribe_events(), or 0 if cb is NULL. With no
/// subscriber, events cost nothing.
///
/// # Safety
/// `dev` valid; `cb` callable from any thread with `opaque` until
/// vdevice_unsubscribe_events() or vdevice_destroy() returns.
#[no_mangle]
pub unsafe extern "C" fn vdevice_subscribe_events(
    dev: *mut Device,
    cb: Option<unsafe extern "C" fn(*mut c_void, *const VDeviceEvent)>,
    opaque: *mut c_void,
) -> u64 {
    let Some(cb) = cb else { return 0 };
    let sink = EventSink { cb, opaque };
    (*dev)
        .event_bus()
        .subscribe(Arc::new(move |e: &crate::events::Event| sink.call(e)))
}

/// End a subscription. When it returns, the callback is not running and
/// will not run again. Must not be called from inside the callback.
/// Returns 0, or -1 if `id` is not subscribed.
///
/// # Safety
/// `dev` valid.
#[no_mangle]
pub unsafe extern "C" fn vdevice_unsubscribe_events(dev: *mut Device, id: u64) -> c_int {
    if (*dev).event_bus().unsubscribe(id) {
        0
    } else {
        -1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Opcode;
    use crate::events::{Event, EventKind as K, IrqCause, IrqFate};
    use crate::regs::{AccessError, FaultCode, PartitionState, ResumeAction};

    /// Every kind of event crosses the C ABI and comes back the same, so a
    /// consumer beyond the shim (the trace plugin) sees what the model saw.
    #[test]
    fn events_survive_the_c_abi_both_ways() {
        let cmd = |p, r, i| (p, r, i);
        let (partition, ring, index) = cmd(3, 1, 17);
        let kinds = [
            K::Rejected {
                function: crate::Function::Pf,
                bar: 0,
                offset: 0x11000,
                size: 4,
                write: true,
                value: 1,
                code: AccessError::BadValue,
                why: "ring 0 off: RING_SIZE is 0".into(),
            },
            K::Rejected {
                function: crate::Function::Vf(3),
                bar: 2,
                offset: 0x4000,
                size: 8,
                write: false,
                value: 0,
                code: AccessError::Disabled,
                why: "VF3's partition is disabled".into(),
            },
            K::CmdTaken {
                partition,
                ring,
                index,
                opcode: Opcode::Copy,
            },
            K::CmdDone {
                partition,
                ring,
                index,
                opcode: Opcode::Fence,
            },
            K::CmdFault {
                partition,
                ring,
                index,
                opcode: None,
                code: FaultCode::BadCommand,
                addr: 0x40,
                write: false,
            },
            K::CmdFault {
                partition,
                ring,
                index,
                opcode: Some(Opcode::Fill),
                code: FaultCode::VramOutOfBounds,
                addr: 1 << 30,
                write: true,
            },
            K::CmdAborted {
                partition,
                ring,
                index,
                opcode: Some(Opcode::Crc32),
            },
            K::Irq {
                vector: 5,
                partition: Some(partition),
                cause: IrqCause::Fault,
                fate: IrqFate::Late,
            },
            K::Irq {
                vector: 0,
                partition: None,
                cause: IrqCause::Host(0b1010),
                fate: IrqFate::Sent,
            },
            K::State {
                partition,
                from: PartitionState::Busy,
                to: PartitionState::Faulted,
            },
            K::PartitionReset { partition },
            K::DeviceReset,
            K::XlateFault {
                partition,
                addr: 0xdead_0000,
                write: true,
            },
            K::XlateResolved {
                partition,
                action: ResumeAction::Cancel,
            },
        ];
        for (t, kind) in kinds.into_iter().enumerate() {
            let e = Event {
                time_ns: t as u64 * 1000 + 7,
                kind,
            };
            let why = CString::new(match &e.kind {
                K::Rejected { why, .. } => why.clone(),
                _ => String::new(),
            })
            .unwrap();
            let text = CString::new(e.kind.to_string()).unwrap();
            let c = event_to_c(&e, &why, &text);
            // SAFETY: why points at a live CString.
            let back = unsafe { event_from_c(&c) };
            assert_eq!(back.as_ref(), Some(&e), "{}", e.kind.name());
        }
    }

    #[test]
    fn events_the_model_never_makes_are_none() {
        let e = Event {
            time_ns: 0,
            kind: K::DeviceReset,
        };
        let empty = CString::default();
        let mut c = event_to_c(&e, &empty, &empty);
        c.kind = 0;
        // SAFETY: why points at a live CString.
        assert!(unsafe { event_from_c(&c) }.is_none());
        c.kind = VDEVICE_EVENT_CMD_DONE; // no partition, ring or opcode
        assert!(unsafe { event_from_c(&c) }.is_none());
        c.kind = VDEVICE_EVENT_IRQ;
        c.code = 99;
        assert!(unsafe { event_from_c(&c) }.is_none());
    }
}
