//! The timing loop the micro-benchmark examples share: a tenth of the iterations to warm up,
//! then the mean of `iters` runs, printed beside `name`.
use std::time::Instant;

pub fn time<F: FnMut()>(name: &str, iters: u32, mut f: F) -> f64 {
    for _ in 0..iters / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    let ns = t.elapsed().as_nanos() as f64 / f64::from(iters);
    println!("{name:<48} {ns:>9.0} ns");
    ns
}
