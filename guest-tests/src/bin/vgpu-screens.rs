//! vgpu-screens: in L0, after a run, split the files L1 sent out on its
//! second serial port (run-l1.sh FILES_OUT=DIR) and turn every screendump
//! (PPM) among them into a PNG next to it.
//!
//! Usage: vgpu-screens unpack STREAM DIR
//! Prints one line a file: "screen DIR/NAME.png WxH" for a screen,
//! "file DIR/NAME" for anything else.

use std::path::Path;
use std::process::ExitCode;
use vgpu_guest_tests::screens::{unpack, Ppm};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [cmd, stream, dir] = args.as_slice() else {
        eprintln!("usage: vgpu-screens unpack STREAM DIR");
        return ExitCode::from(2);
    };
    if cmd != "unpack" {
        eprintln!("usage: vgpu-screens unpack STREAM DIR");
        return ExitCode::from(2);
    }
    let files = match unpack(Path::new(stream), Path::new(dir)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("vgpu-screens: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut status = ExitCode::SUCCESS;
    for f in files {
        if f.extension().is_some_and(|e| e == "ppm") {
            let png = f.with_extension("png");
            match Ppm::load(&f).and_then(|p| p.write_png(&png).map(|()| p)) {
                Ok(p) => println!("screen {} {}x{}", png.display(), p.width, p.height),
                Err(e) => {
                    eprintln!("vgpu-screens: {}: {e}", f.display());
                    status = ExitCode::FAILURE;
                }
            }
        } else {
            println!("file {}", f.display());
        }
    }
    status
}
