//! The `warpgrad` command line.
fn main() {
    println!("warpgrad: under construction");
}
