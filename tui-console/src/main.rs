fn main() {
    println!("tui-console: not built yet");
}
