fn main() {
    for crd in alertops::resources::crd::all() {
        print!("{}", alertops::resources::crd::to_yaml(&crd));
    }
}
