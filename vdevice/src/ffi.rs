//! The C ABI the QEMU shim links against. Thin: it converts types and
//! forwards to [`Device`]. include/vdevice.h is generated from this file and
//! pci.rs by cbindgen (vdevice/cbindgen.toml, which also holds the header's
//! contract on threads and locking); vdevice/tests/c_abi.rs checks it.

use crate::config::DeviceConfig;
use crate::pci::PciInfo;
use crate::{Device, Dma, DmaError, Irq};
use std::ffi::{c_char, c_int, c_void};
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
}

/// The shim's side: guest memory, MSI-X and thread registration.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct VDeviceCallbacks {
    pub opaque: *mut c_void,
    /// Return 0 on success, non-zero on a failed bus transaction.
    pub dma_read: Option<unsafe extern "C" fn(*mut c_void, u64, *mut c_void, u64) -> c_int>,
    /// Return 0 on success, non-zero on a failed bus transaction.
    pub dma_write: Option<unsafe extern "C" fn(*mut c_void, u64, *const c_void, u64) -> c_int>,
    pub msix_notify: Option<unsafe extern "C" fn(*mut c_void, u32)>,
    pub thread_start: Option<unsafe extern "C" fn(*mut c_void)>,
    pub thread_stop: Option<unsafe extern "C" fn(*mut c_void)>,
}

/// The shim's callbacks; the header obliges them to be thread-safe.
struct Callbacks(VDeviceCallbacks);
// SAFETY: the C side promises the callbacks and opaque may be used from any thread.
unsafe impl Send for Callbacks {}
unsafe impl Sync for Callbacks {}

impl Dma for Callbacks {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let f = self.0.dma_read.ok_or(DmaError)?;
        // SAFETY: buf is valid for len bytes for the duration of the call.
        match unsafe {
            f(
                self.0.opaque,
                addr,
                buf.as_mut_ptr().cast(),
                buf.len() as u64,
            )
        } {
            0 => Ok(()),
            _ => Err(DmaError),
        }
    }

    fn write(&self, addr: u64, buf: &[u8]) -> Result<(), DmaError> {
        let f = self.0.dma_write.ok_or(DmaError)?;
        // SAFETY: as above.
        match unsafe { f(self.0.opaque, addr, buf.as_ptr().cast(), buf.len() as u64) } {
            0 => Ok(()),
            _ => Err(DmaError),
        }
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
    fn notify(&self, vector: u32) {
        if let Some(f) = self.0.msix_notify {
            // SAFETY: C callback with its own opaque.
            unsafe { f(self.0.opaque, vector) }
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
    };
    let host = Arc::new(Callbacks(cb));
    match Device::new(config, host.clone(), host) {
        Ok(d) => Box::into_raw(Box::new(d)),
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
