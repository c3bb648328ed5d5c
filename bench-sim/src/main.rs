fn main() {
    println!("bench-sim: not built yet");
}
