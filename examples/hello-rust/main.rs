// The smallest Rust program for the static base: glibc, statically linked (crt-static).
fn main() {
    println!("Hello Distroless");
}
