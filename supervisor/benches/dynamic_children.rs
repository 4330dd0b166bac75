//! Placeholder: replaced by the 10,000-children benchmark in the next commit.
fn main() {}
